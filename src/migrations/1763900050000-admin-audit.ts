import { MigrationInterface, QueryRunner, Table, TableIndex } from 'typeorm';
import { autoIdColumn, dateColumn, stringColumn, textColumn } from '../database/columns';
import { ensureIndex, ensureTable } from '../database/idempotent-ddl';

export class AdminAudit1763900050000 implements MigrationInterface {
  name = 'AdminAudit1763900050000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await ensureTable(
      queryRunner,
      new Table({
        name: 'admin_audit',
        columns: [
          autoIdColumn(queryRunner),
          stringColumn('token_fingerprint', 16),
          stringColumn('action', 64),
          stringColumn('target', 128, { nullable: true }),
          stringColumn('outcome', 64),
          textColumn(queryRunner, 'detail', { nullable: true }),
          dateColumn(queryRunner, 'created_at'),
        ],
      }),
    );
    await ensureIndex(queryRunner, 'admin_audit', new TableIndex({ name: 'idx_admin_audit_created', columnNames: ['created_at'] }));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('admin_audit');
  }
}
