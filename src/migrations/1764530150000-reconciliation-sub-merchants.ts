import { MigrationInterface, QueryRunner, TableColumn } from 'typeorm';
import { stringColumn } from '../database/columns';
import { ensureColumns, ensurePrimaryKey } from '../database/idempotent-ddl';

/**
 * Reconciliation per sub-merchant (issue 15, service-provider mode): `reconciliations.sub_mchid`
 * (NOT NULL, '' in direct mode — not NULL, so that the key stays unique on MariaDB, where a unique key
 * lets any number of NULLs through) and the primary key (bill_date, sub_mchid): one stored result per
 * day and sub-merchant. Existing rows are direct mode's (''). Safe to re-run after a partial run.
 */
export class ReconciliationSubMerchants1764530150000 implements MigrationInterface {
  name = 'ReconciliationSubMerchants1764530150000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await ensureColumns(queryRunner, 'reconciliations', [new TableColumn(stringColumn('sub_mchid', 32, { default: '' }))]);
    await ensurePrimaryKey(queryRunner, 'reconciliations', ['bill_date', 'sub_mchid']);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (!(await queryRunner.hasColumn('reconciliations', 'sub_mchid'))) return;
    // Only direct mode's rows fit the old key.
    await queryRunner.query(`DELETE FROM reconciliations WHERE sub_mchid <> ''`);
    await ensurePrimaryKey(queryRunner, 'reconciliations', ['bill_date']);
    await queryRunner.dropColumn('reconciliations', 'sub_mchid');
  }
}
