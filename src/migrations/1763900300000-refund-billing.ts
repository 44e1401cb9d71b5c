import { MigrationInterface, QueryRunner, Table, TableIndex } from 'typeorm';
import { autoIdColumn, dateColumn, moneyColumn, stringColumn, textColumn } from '../database/columns';
import { ensureIndex, ensureIndices, ensureTable } from '../database/idempotent-ddl';

export class RefundBilling1763900300000 implements MigrationInterface {
  name = 'RefundBilling1763900300000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await ensureTable(
      queryRunner,
      new Table({
        name: 'refunds',
        columns: [
          autoIdColumn(queryRunner),
          stringColumn('out_refund_no', 64, { unique: true }),
          stringColumn('out_trade_no', 32),
          moneyColumn('amount'),
          stringColumn('reason', 80, { nullable: true }),
          // PROCESSING, SUCCESS, CLOSED, ABNORMAL, FAILED (WeChat refused the request)
          stringColumn('status', 16),
          stringColumn('request_hash', 64),
          stringColumn('refund_id', 64, { nullable: true }),
          stringColumn('wechat_code', 64, { nullable: true }),
          stringColumn('wechat_message', 255, { nullable: true }),
          stringColumn('source', 16),
          dateColumn(queryRunner, 'success_at', { nullable: true }),
          dateColumn(queryRunner, 'last_queried_at', { nullable: true }),
          dateColumn(queryRunner, 'created_at'),
          dateColumn(queryRunner, 'updated_at'),
        ],
      }),
    );
    await ensureIndices(queryRunner, 'refunds', [
      new TableIndex({ name: 'idx_refunds_order', columnNames: ['out_trade_no'] }),
      new TableIndex({ name: 'idx_refunds_status_created', columnNames: ['status', 'created_at'] }),
      new TableIndex({ name: 'idx_refunds_success', columnNames: ['success_at'] }),
    ]);
    await ensureTable(
      queryRunner,
      new Table({
        name: 'reconciliations',
        columns: [
          stringColumn('bill_date', 10, { primary: true }),
          stringColumn('status', 16),
          textColumn(queryRunner, 'summary'),
          // every difference, as JSON; MEDIUMTEXT holds 16 MB on MySQL
          textColumn(queryRunner, 'differences'),
          dateColumn(queryRunner, 'created_at'),
          dateColumn(queryRunner, 'updated_at'),
        ],
      }),
    );
    await ensureIndex(queryRunner, 'orders', new TableIndex({ name: 'idx_orders_paid_at', columnNames: ['paid_at'] }));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropIndex('orders', 'idx_orders_paid_at');
    await queryRunner.dropTable('reconciliations');
    await queryRunner.dropTable('refunds');
  }
}
