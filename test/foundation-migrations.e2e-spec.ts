// The migration CLI path (`npm run migration:run|revert` = `typeorm migration:* -d dist/ormconfig.js`):
// building takes a while, so this loads the DataSource that ormconfig.ts exports, from the same
// environment variables the CLI would see, and runs its migrations on a fresh database of each kind.
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { migrations } from '../src/migrations';
import { TestDatabase, createMysqlDatabase, useMysql } from './helpers/mysql';
import { tempDir } from './helpers/test-app';

/** Tables that the migrations in src/migrations/index.ts create (at least these; later ones add more). */
const TABLES = [
  'job_leases',
  'admin_audit',
  'users',
  'sessions',
  'oauth_states',
  'products',
  'orders',
  'order_items',
  'order_events',
  'payment_events',
  'refunds',
  'reconciliations',
];

/**
 * Loads ormconfig.ts afresh (it reads process.env, and .env when present, at import time) with `vars`
 * set, then puts process.env back as it was.
 */
function loadOrmconfig(vars: Record<string, string>): DataSource {
  const saved = { ...process.env };
  Object.assign(process.env, vars);
  try {
    let dataSource: DataSource | undefined;
    jest.isolateModules(() => {
      dataSource = (require('../ormconfig') as { default: DataSource }).default;
    });
    return dataSource!;
  } finally {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  }
}

/** Tables of this database only (TypeORM's getTables() without names lists every schema on MySQL). */
async function tableNames(dataSource: DataSource): Promise<string[]> {
  const rows: Array<{ name: string }> =
    dataSource.options.type === 'mysql'
      ? await dataSource.query('SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE()')
      : await dataSource.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'");
  return rows.map((row) => row.name).sort();
}

async function appliedNames(dataSource: DataSource): Promise<string[]> {
  const rows: Array<{ name: string }> = await dataSource.query('SELECT name FROM migrations ORDER BY id');
  return rows.map((row) => row.name);
}

const expectedNames = migrations.map((m) => m.name);

async function exerciseMigrations(dataSource: DataSource): Promise<void> {
  expect(dataSource.options.synchronize).toBe(false);
  expect((dataSource.options.migrations as unknown[]).length).toBe(migrations.length);
  await dataSource.initialize();
  expect(await tableNames(dataSource)).toEqual([]);
  expect(await dataSource.showMigrations()).toBe(true); // pending

  // migration:run
  const ran = await dataSource.runMigrations({ transaction: 'each' });
  expect(ran.map((m) => m.name)).toEqual(expectedNames);
  expect(await appliedNames(dataSource)).toEqual(expectedNames);
  expect(await dataSource.showMigrations()).toBe(false);
  const tables = await tableNames(dataSource);
  expect(tables).toEqual(expect.arrayContaining([...TABLES, 'migrations']));

  // Running again is a no-op.
  expect(await dataSource.runMigrations()).toEqual([]);

  // migration:revert, all the way down: every down() undoes its up().
  for (let i = migrations.length - 1; i >= 0; i--) {
    await dataSource.undoLastMigration();
    expect(await appliedNames(dataSource)).toEqual(expectedNames.slice(0, i));
  }
  expect(await tableNames(dataSource)).toEqual(['migrations']);

  // ... and up again.
  expect((await dataSource.runMigrations()).map((m) => m.name)).toEqual(expectedNames);
  expect(await tableNames(dataSource)).toEqual(tables);
}

describe('migrations through ormconfig.ts (the CLI DataSource)', () => {
  it('run, revert and run again on a fresh SQLite file under DATA_DIR', async () => {
    const dataDir = tempDir('whp-ormconfig-');
    // DATABASE_URL is set (empty = SQLite) so that a developer's .env cannot point this at a real database.
    const dataSource = loadOrmconfig({ NODE_ENV: 'test', DATA_DIR: dataDir, DATABASE_URL: '', WECHAT_MODE: 'sandbox' });
    try {
      expect(dataSource.options).toMatchObject({ type: 'better-sqlite3', database: join(dataDir, 'wechat-h5-pay.sqlite') });
      await exerciseMigrations(dataSource);
      expect(existsSync(join(dataDir, 'wechat-h5-pay.sqlite'))).toBe(true);
    } finally {
      if (dataSource.isInitialized) await dataSource.destroy();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  (useMysql() ? it : it.skip)('run, revert and run again on a fresh MySQL/MariaDB database from DATABASE_URL', async () => {
    const database: TestDatabase = await createMysqlDatabase();
    const dataSource = loadOrmconfig({ NODE_ENV: 'test', DATABASE_URL: database.url!, WECHAT_MODE: 'sandbox' });
    try {
      expect(dataSource.options).toMatchObject({ type: 'mysql', database: new URL(database.url!).pathname.slice(1) });
      await exerciseMigrations(dataSource);
    } finally {
      if (dataSource.isInitialized) await dataSource.destroy();
      await database.drop();
    }
  });

  it('leaves process.env as it found it', () => {
    const before = { ...process.env };
    loadOrmconfig({ NODE_ENV: 'test', DATA_DIR: '/nonexistent-whp-probe', DATABASE_URL: 'mysql://u:p@127.0.0.1:1/db' });
    expect(process.env).toEqual(before);
  });
});
