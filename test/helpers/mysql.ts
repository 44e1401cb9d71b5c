import { randomBytes } from 'node:crypto';
import { createConnection } from 'mysql2/promise';

/** Server URL for MySQL-backed tests: DATABASE_URL (as given to `npm run test:mysql`), else local root. */
export function mysqlServerUrl(): URL {
  return new URL(process.env.DATABASE_URL || 'mysql://root@127.0.0.1:3306/whp_test');
}

export function useMysql(): boolean {
  return process.env.TEST_DB === 'mysql';
}

export interface TestDatabase {
  /** DATABASE_URL for the app (MySQL) or undefined (SQLite inside the app's DATA_DIR). */
  url?: string;
  /** SQLite file path when not MySQL. */
  sqlitePath?: string;
  drop(): Promise<void>;
}

/** A fresh, empty MySQL database named after the configured one (`<name>_<random>`). */
export async function createMysqlDatabase(): Promise<TestDatabase> {
  const server = mysqlServerUrl();
  const base = decodeURIComponent(server.pathname.replace(/^\//, '')) || 'whp_test';
  const name = `${base}_${process.pid}_${randomBytes(4).toString('hex')}`.slice(0, 64);
  const connection = await createConnection({
    host: server.hostname,
    port: server.port ? Number(server.port) : 3306,
    user: decodeURIComponent(server.username),
    password: decodeURIComponent(server.password),
  });
  await connection.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  await connection.end();
  const url = new URL(server.toString());
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = await createConnection({
        host: server.hostname,
        port: server.port ? Number(server.port) : 3306,
        user: decodeURIComponent(server.username),
        password: decodeURIComponent(server.password),
      });
      await c.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await c.end();
    },
  };
}
