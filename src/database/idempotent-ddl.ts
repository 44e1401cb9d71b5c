import { QueryRunner, Table, TableColumn, TableForeignKey, TableIndex } from 'typeorm';

/**
 * Re-runnable DDL for migrations. MariaDB/MySQL commit every DDL statement on its own, so a
 * migration killed half-way leaves some of its tables, columns or indexes behind and a plain
 * re-run fails (`Table ... already exists`, `Duplicate column name ...`). Each helper issues
 * exactly the statement TypeORM would, but only when its object is missing, so a fresh database
 * gets the same schema as before and a partly migrated one is completed.
 */
export async function ensureTable(queryRunner: QueryRunner, table: Table): Promise<void> {
  if (await queryRunner.hasTable(table.name)) return;
  await queryRunner.createTable(table);
}

export async function ensureColumns(queryRunner: QueryRunner, tableName: string, columns: TableColumn[]): Promise<void> {
  for (const column of columns) {
    if (await queryRunner.hasColumn(tableName, column.name)) continue;
    await queryRunner.addColumn(tableName, column);
  }
}

export async function ensureIndices(queryRunner: QueryRunner, tableName: string, indices: TableIndex[]): Promise<void> {
  for (const index of indices) {
    const table = await queryRunner.getTable(tableName);
    if (table?.indices.some((existing) => existing.name === index.name)) continue;
    await queryRunner.createIndex(tableName, index);
  }
}

export async function ensureIndex(queryRunner: QueryRunner, tableName: string, index: TableIndex): Promise<void> {
  await ensureIndices(queryRunner, tableName, [index]);
}

export async function ensureForeignKey(queryRunner: QueryRunner, tableName: string, foreignKey: TableForeignKey): Promise<void> {
  const table = await queryRunner.getTable(tableName);
  if (table?.foreignKeys.some((existing) => existing.name === foreignKey.name)) return;
  await queryRunner.createForeignKey(tableName, foreignKey);
}

/**
 * Makes the named columns nullable, leaving their type, length and default alone (MySQL/MariaDB:
 * one `ALTER TABLE … CHANGE` per column; SQLite: the table is rebuilt once). Columns already
 * nullable are skipped, so a re-run after a partial run only finishes the job.
 */
export async function ensureNullable(queryRunner: QueryRunner, tableName: string, columnNames: string[]): Promise<void> {
  const table = await queryRunner.getTable(tableName);
  if (!table) throw new Error(`ensureNullable: table ${tableName} does not exist`);
  const changes = columnNames.flatMap((name) => {
    const oldColumn = table.findColumnByName(name);
    if (!oldColumn) throw new Error(`ensureNullable: column ${tableName}.${name} does not exist`);
    if (oldColumn.isNullable) return [];
    const newColumn = oldColumn.clone();
    newColumn.isNullable = true;
    return [{ oldColumn, newColumn }];
  });
  if (changes.length) await queryRunner.changeColumns(table, changes);
}

/**
 * Makes `columnNames` (in that order) the table's primary key, when it is not already. MySQL/MariaDB:
 * one `ALTER TABLE … DROP PRIMARY KEY, ADD PRIMARY KEY (…)` — a single statement, so a crash cannot
 * leave the table without a key; SQLite (whose TypeORM updatePrimaryKeys does nothing): the table is
 * rebuilt once with the new key, inside the migration's transaction.
 */
export async function ensurePrimaryKey(queryRunner: QueryRunner, tableName: string, columnNames: string[]): Promise<void> {
  const table = await queryRunner.getTable(tableName);
  if (!table) throw new Error(`ensurePrimaryKey: table ${tableName} does not exist`);
  const current = table.primaryColumns.map((c) => c.name);
  if (current.length === columnNames.length && columnNames.every((name) => current.includes(name))) return;
  for (const name of columnNames) if (!table.findColumnByName(name)) throw new Error(`ensurePrimaryKey: column ${tableName}.${name} does not exist`);
  const type = queryRunner.connection.options.type;
  if (type === 'mysql' || type === 'mariadb') {
    const keys = columnNames.map((name) => `\`${name}\``).join(', ');
    await queryRunner.query(`ALTER TABLE \`${tableName}\` ${current.length ? 'DROP PRIMARY KEY, ' : ''}ADD PRIMARY KEY (${keys})`);
    return;
  }
  const changes = table.columns
    .filter((column) => column.isPrimary !== columnNames.includes(column.name))
    .map((oldColumn) => {
      const newColumn = oldColumn.clone();
      newColumn.isPrimary = columnNames.includes(oldColumn.name);
      return { oldColumn, newColumn };
    });
  await queryRunner.changeColumns(table, changes);
}
