import { QueryRunner, TableColumnOptions } from 'typeorm';

/**
 * Column builders for migrations that must create the same schema on MySQL/MariaDB and SQLite
 * through TypeORM's schema builder. Conventions: money is integer fen (`int`), instants are UTC
 * `datetime` with millisecond precision, identifiers are explicit varchars.
 */
export function isMysql(queryRunner: QueryRunner): boolean {
  const type = queryRunner.connection.options.type;
  return type === 'mysql' || type === 'mariadb';
}

export function autoIdColumn(queryRunner: QueryRunner, name = 'id'): TableColumnOptions {
  return {
    name,
    // SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
    type: isMysql(queryRunner) ? 'bigint' : 'integer',
    isPrimary: true,
    isGenerated: true,
    generationStrategy: 'increment',
    unsigned: isMysql(queryRunner) ? true : undefined,
  };
}

export function dateColumn(
  queryRunner: QueryRunner,
  name: string,
  options: { nullable?: boolean; defaultNow?: boolean } = {},
): TableColumnOptions {
  const mysql = isMysql(queryRunner);
  return {
    name,
    type: 'datetime',
    precision: mysql ? 3 : undefined,
    isNullable: options.nullable ?? false,
    default: options.defaultNow ? (mysql ? 'CURRENT_TIMESTAMP(3)' : "(strftime('%Y-%m-%d %H:%M:%f', 'now'))") : undefined,
  };
}

export function moneyColumn(name: string, options: { nullable?: boolean; default?: number } = {}): TableColumnOptions {
  return { name, type: 'int', isNullable: options.nullable ?? false, default: options.default };
}

export function stringColumn(
  name: string,
  length: number,
  options: { nullable?: boolean; default?: string; unique?: boolean; primary?: boolean } = {},
): TableColumnOptions {
  return {
    name,
    type: 'varchar',
    length: String(length),
    isNullable: options.nullable ?? false,
    default: options.default !== undefined ? `'${options.default.replace(/'/g, "''")}'` : undefined,
    isUnique: options.unique,
    isPrimary: options.primary,
  };
}

/** Large text (raw notification bodies, JSON snapshots): MEDIUMTEXT on MySQL, TEXT on SQLite. */
export function textColumn(queryRunner: QueryRunner, name: string, options: { nullable?: boolean } = {}): TableColumnOptions {
  return { name, type: isMysql(queryRunner) ? 'mediumtext' : 'text', isNullable: options.nullable ?? false };
}

export function intColumn(name: string, options: { nullable?: boolean; default?: number } = {}): TableColumnOptions {
  return { name, type: 'int', isNullable: options.nullable ?? false, default: options.default };
}
