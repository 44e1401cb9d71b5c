// Finding 1 of issue 17: MariaDB commits each DDL statement on its own, so a crash during first-start
// migrations used to leave a half-built schema that no later start could get past
// (`Table 'admin_audit' already exists`, `Duplicate column name 'raw_encoding'`).
// Here each kill point is "the process dies right after the Nth DDL statement committed": a query hook
// counts DDL statements and aborts the run after the Nth, the connection is dropped (the open migration
// transaction is lost, as after a SIGKILL), and a fresh DataSource runs the migrations again.
import { DataSource, QueryRunner } from 'typeorm';
import { migrations } from '../src/migrations';
import { createMysqlDatabase, useMysql } from './helpers/mysql';

const DDL = /^\s*(CREATE|ALTER|DROP)\s+(TABLE|INDEX|UNIQUE\s+INDEX)\b/i;

function dataSourceFor(url: string): DataSource {
  return new DataSource({ type: 'mysql', url, migrations, migrationsTransactionMode: 'each', synchronize: false, logging: false });
}

/** Runs the migrations, aborting right after the `killAfter`th DDL statement (of our tables) succeeded. */
async function runUntilKilled(url: string, killAfter: number): Promise<number> {
  const dataSource = dataSourceFor(url);
  await dataSource.initialize();
  let ddl = 0;
  const create = dataSource.createQueryRunner.bind(dataSource);
  dataSource.createQueryRunner = (...args: Parameters<DataSource['createQueryRunner']>): QueryRunner => {
    const runner = create(...args);
    const query = runner.query.bind(runner);
    runner.query = (async (sql: string, ...rest: unknown[]) => {
      const result = await (query as (...a: unknown[]) => Promise<unknown>)(sql, ...rest);
      if (DDL.test(sql) && !/`migrations`/.test(sql)) {
        ddl++;
        if (ddl === killAfter) throw new Error(`simulated kill after DDL #${ddl}`);
      }
      return result;
    }) as QueryRunner['query'];
    return runner;
  };
  try {
    await dataSource.runMigrations({ transaction: 'each' });
  } catch (error) {
    if (!String(error).includes('simulated kill')) throw error;
  } finally {
    await dataSource.destroy();
  }
  return ddl;
}

async function schemaOf(url: string): Promise<unknown> {
  const dataSource = dataSourceFor(url);
  await dataSource.initialize();
  try {
    const columns = await dataSource.query(
      `SELECT table_name t, column_name c, column_type ty, is_nullable n, column_default d, extra e
       FROM information_schema.columns WHERE table_schema = DATABASE() ORDER BY t, c`,
    );
    const indexes = await dataSource.query(
      `SELECT table_name t, index_name i, column_name c, seq_in_index s, non_unique u
       FROM information_schema.statistics WHERE table_schema = DATABASE() ORDER BY t, i, s`,
    );
    const applied = await dataSource.query('SELECT name FROM migrations ORDER BY id');
    return { columns, indexes, applied };
  } finally {
    await dataSource.destroy();
  }
}

async function migrateCleanly(url: string): Promise<void> {
  const dataSource = dataSourceFor(url);
  await dataSource.initialize();
  try {
    await dataSource.runMigrations({ transaction: 'each' });
  } finally {
    await dataSource.destroy();
  }
}

(useMysql() ? describe : describe.skip)('crash during first-start migrations (MariaDB)', () => {
  jest.setTimeout(300_000);

  it('a kill after any DDL statement of any migration no longer bricks the database: the restart completes the full schema', async () => {
    const clean = await createMysqlDatabase();
    let reference: unknown;
    let total: number;
    try {
      total = await runUntilKilled(clean.url!, Number.MAX_SAFE_INTEGER);
      reference = await schemaOf(clean.url!);
    } finally {
      await clean.drop();
    }
    expect(total).toBeGreaterThanOrEqual(migrations.length);
    for (let n = 1; n <= total; n++) {
      const database = await createMysqlDatabase();
      try {
        expect(await runUntilKilled(database.url!, n)).toBe(n);
        await migrateCleanly(database.url!); // the restart; threw "already exists" before
        expect({ killAfter: n, schema: await schemaOf(database.url!) }).toEqual({ killAfter: n, schema: reference });
      } finally {
        await database.drop();
      }
    }
  });
});
