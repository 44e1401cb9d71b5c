import type { INestApplication } from '@nestjs/common';
import { DataSource, Logger as TypeOrmLogger, QueryRunner } from 'typeorm';

/** One SQL statement the app sent, as TypeORM's query runner logged it (every statement passes there). */
export interface Statement {
  sql: string;
  /** Sent inside an explicit transaction (between BEGIN/START TRANSACTION and COMMIT/ROLLBACK). */
  inTransaction: boolean;
}

export interface StatementCount {
  /** Every statement, BEGIN and COMMIT included. */
  statements: number;
  /**
   * Durable commits: explicit COMMITs plus writes sent outside a transaction (each an autocommit,
   * i.e. its own fsync on InnoDB / its own WAL commit on SQLite).
   */
  commits: number;
  sql: string[];
}

const WRITE = /^\s*(INSERT|UPDATE|DELETE|REPLACE)\b/i;
const COMMIT = /^\s*COMMIT\b/i;

/**
 * Counts the SQL statements and durable commits an in-process app sends, by replacing its TypeORM
 * DataSource's logger: both drivers (better-sqlite3 and mysql2) call `logger.logQuery` for every
 * statement they send, including transaction control and the re-selects TypeORM adds after inserts.
 * The app's own logging of queries is off (`logging: false`), so nothing is lost.
 */
export class StatementCounter implements TypeOrmLogger {
  private entries: Statement[] = [];

  static attach(app: INestApplication): StatementCounter {
    const counter = new StatementCounter();
    const dataSource = app.get(DataSource);
    (dataSource as unknown as { logger: TypeOrmLogger }).logger = counter;
    return counter;
  }

  logQuery(query: string, _parameters?: unknown[], queryRunner?: QueryRunner): void {
    // Both query runners set isTransactionActive before sending BEGIN and clear it after COMMIT.
    this.entries.push({ sql: query, inTransaction: queryRunner?.isTransactionActive ?? false });
  }

  logQueryError(): void {}
  logQuerySlow(): void {}
  logSchemaBuild(): void {}
  logMigration(): void {}
  log(): void {}

  reset(): void {
    this.entries = [];
  }

  /** What was sent since the last reset/take, then starts afresh. */
  take(): StatementCount {
    const taken = this.entries;
    this.entries = [];
    return {
      statements: taken.length,
      commits: taken.filter((s) => COMMIT.test(s.sql) || (!s.inTransaction && WRITE.test(s.sql))).length,
      sql: taken.map((s) => `${s.inTransaction ? '  [tx] ' : '       '}${s.sql.replace(/\s+/g, ' ').slice(0, 160)}`),
    };
  }

  /** Counts the statements `fn` causes (nothing else may run against the app meanwhile). */
  async measure<T>(fn: () => Promise<T>): Promise<{ result: T } & StatementCount> {
    this.reset();
    const result = await fn();
    // Statements of the request's last await may be logged after the answer was sent (none today; cheap to wait).
    await new Promise((r) => setImmediate(r));
    return { result, ...this.take() };
  }
}
