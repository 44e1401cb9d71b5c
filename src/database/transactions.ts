import { DataSource, EntityManager, QueryRunner } from 'typeorm';

const sqliteLocks = new WeakMap<DataSource, Promise<unknown>>();

export function isSqlite(dataSource: DataSource): boolean {
  return dataSource.options.type === 'better-sqlite3' || dataSource.options.type === 'sqlite';
}

/**
 * Runs fn in a transaction. On SQLite every query runner shares one synchronous connection, so two
 * transactions whose statements interleave across awaits would nest ("cannot start a transaction
 * within a transaction"): there, transactions take turns (SQLite has a single writer anyway). On
 * MySQL/MariaDB each transaction has its own pooled connection and they run side by side.
 */
export async function inTransaction<T>(dataSource: DataSource, fn: (runner: QueryRunner, manager: EntityManager) => Promise<T>): Promise<T> {
  if (!isSqlite(dataSource)) return run(dataSource, fn);
  const previous = sqliteLocks.get(dataSource) ?? Promise.resolve();
  const current = previous.catch(() => undefined).then(() => run(dataSource, fn));
  sqliteLocks.set(dataSource, current);
  return current;
}

/**
 * Runs fn's statements outside any transaction, each its own autocommit (for a write that is one
 * statement: atomic by itself, one commit, no BEGIN/COMMIT round trips). On SQLite it waits for its
 * turn like inTransaction: on the one shared connection a statement sent while another's transaction
 * is open would become part of it (and be undone by that one's rollback).
 */
export async function autocommitted<T>(dataSource: DataSource, fn: (runner: QueryRunner) => Promise<T>): Promise<T> {
  const go = async () => {
    const runner = dataSource.createQueryRunner();
    try {
      return await fn(runner);
    } finally {
      await runner.release();
    }
  };
  if (!isSqlite(dataSource)) return go();
  const previous = sqliteLocks.get(dataSource) ?? Promise.resolve();
  const current = previous.catch(() => undefined).then(go);
  sqliteLocks.set(dataSource, current);
  return current;
}

async function run<T>(dataSource: DataSource, fn: (runner: QueryRunner, manager: EntityManager) => Promise<T>): Promise<T> {
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  await runner.startTransaction();
  try {
    const result = await fn(runner, runner.manager);
    await runner.commitTransaction();
    return result;
  } catch (error) {
    if (runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
    throw error;
  } finally {
    await runner.release();
  }
}

/** A Date as a raw-query parameter: mysql2 takes Date objects (timezone 'Z'); SQLite stores UTC text. */
export function dbDate(dataSource: DataSource, date: Date): Date | string {
  if (!isSqlite(dataSource)) return date;
  return date.toISOString().replace('T', ' ').replace('Z', '');
}

/** A datetime from a raw query (Date from MySQL, text from SQLite) as a Date. */
export function fromDbDate(value: Date | string | null | undefined): Date | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value;
  return new Date(value.includes('T') ? value : `${value.replace(' ', 'T')}Z`);
}

/** Affected rows of a raw UPDATE/DELETE, whichever driver ran it. */
export function affectedRows(result: unknown): number {
  if (Array.isArray(result) && typeof result[1] === 'number') return result[1];
  const r = result as { affectedRows?: number; affected?: number; changes?: number } | undefined;
  return r?.affectedRows ?? r?.affected ?? r?.changes ?? 0;
}
