import type { AppConfig } from './app-config';

/** Database errors that no retry can fix: wrong credentials, a missing database, no rights on it. */
const PERMANENT_DB_CODES = new Set(['ER_ACCESS_DENIED_ERROR', 'ER_BAD_DB_ERROR', 'ER_DBACCESS_DENIED_ERROR', 'ER_NOT_SUPPORTED_AUTH_MODE', 'SQLITE_CANTOPEN']);

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Whether the start-up's database connection is worth retrying (a server still starting, a network blip). */
export function retryableDatabaseError(error: unknown): boolean {
  return !PERMANENT_DB_CODES.has(codeOf(error) ?? '');
}

function databaseWhere(config: AppConfig): string {
  const db = config.database;
  if (db.type !== 'mysql') return `the SQLite file ${db.path}`;
  return `${db.username || '(no user)'}@${db.host}:${db.port}, database "${db.database}"`;
}

/**
 * One plain sentence for the errors an operator meets at start-up (a taken port, the database refusing
 * the credentials, a missing database, no database server), or undefined for anything else.
 * Never includes the password.
 */
export function describeStartupError(error: unknown, config: AppConfig): string | undefined {
  const code = codeOf(error);
  const where = databaseWhere(config);
  switch (code) {
    case 'EADDRINUSE':
      return `port ${config.port} is already in use (PORT): stop the other process listening on it, or start with another PORT.`;
    case 'EACCES':
      return `not allowed to listen on port ${config.port} (PORT): ports below 1024 need extra rights; use a port such as 3000.`;
    case 'ER_ACCESS_DENIED_ERROR':
    case 'ER_NOT_SUPPORTED_AUTH_MODE':
      return `the database refused the user and password in DATABASE_URL (${where}): access denied. Check the credentials.`;
    case 'ER_DBACCESS_DENIED_ERROR':
      return `the database user in DATABASE_URL has no rights on that database (${where}): GRANT ALL ON <database>.* TO the user, or fix DATABASE_URL.`;
    case 'ER_BAD_DB_ERROR':
      return `the database in DATABASE_URL does not exist (${where}): create it (CREATE DATABASE <name> CHARACTER SET utf8mb4) or fix DATABASE_URL.`;
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'ETIMEDOUT':
      return `cannot reach the database server in DATABASE_URL (${where}): ${code}. Is MySQL/MariaDB running there?`;
    case 'SANDBOX_ALREADY_RUNNING':
      // SandboxAlreadyRunningError: its message says what runs there and what to do.
      return (error as Error).message;
    case 'SQLITE_CANTOPEN':
      return `cannot open ${where}: check that DATA_DIR exists and is writable.`;
    default:
      return undefined;
  }
}
