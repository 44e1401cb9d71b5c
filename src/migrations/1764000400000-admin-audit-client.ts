import { MigrationInterface, QueryRunner, TableColumn } from 'typeorm';
import { stringColumn } from '../database/columns';
import { ensureColumns } from '../database/idempotent-ddl';

/**
 * admin_audit records the client of every admin request: its IP (as Express resolves it under
 * TRUST_PROXY) and its User-Agent (cut to 255 characters). Rows written by jobs have neither.
 * Safe to re-run after a partial run: each column is added only when missing.
 */
export class AdminAuditClient1764000400000 implements MigrationInterface {
  name = 'AdminAuditClient1764000400000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await ensureColumns(queryRunner, 'admin_audit', [
      new TableColumn(stringColumn('ip', 64, { nullable: true })),
      new TableColumn(stringColumn('user_agent', 255, { nullable: true })),
    ]);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (await queryRunner.hasColumn('admin_audit', 'user_agent')) await queryRunner.dropColumn('admin_audit', 'user_agent');
    if (await queryRunner.hasColumn('admin_audit', 'ip')) await queryRunner.dropColumn('admin_audit', 'ip');
  }
}
