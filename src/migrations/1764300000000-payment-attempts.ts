import { MigrationInterface, QueryRunner, Table, TableColumn, TableIndex } from 'typeorm';
import { autoIdColumn, dateColumn, intColumn, stringColumn } from '../database/columns';
import { ensureColumns, ensureIndices, ensureTable } from '../database/idempotent-ddl';

/**
 * Payment attempts (issue 13): an order is paid through 1..N attempts, each its own out_trade_no at
 * WeChat. Every existing order gets its first attempt (number = the order's, channel jsapi — the only
 * one there was — with its prepay); refunds learn which attempt they go to. Safe to re-run after a
 * partial run (idempotent DDL; the backfill skips orders that have an attempt).
 */
export class PaymentAttempts1764300000000 implements MigrationInterface {
  name = 'PaymentAttempts1764300000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await ensureTable(
      queryRunner,
      new Table({
        name: 'payment_attempts',
        columns: [
          autoIdColumn(queryRunner),
          { name: 'order_id', type: 'bigint', isNullable: false },
          stringColumn('out_trade_no', 32, { unique: true }),
          intColumn('seq'),
          // jsapi, h5, native, miniprogram
          stringColumn('channel', 16),
          // NOTPAY, PAID, CLOSED, REFUNDED
          stringColumn('status', 16),
          stringColumn('appid', 32, { nullable: true }),
          stringColumn('openid', 128, { nullable: true }),
          stringColumn('prepay_id', 64, { nullable: true }),
          stringColumn('prepay_url', 512, { nullable: true }),
          dateColumn(queryRunner, 'prepay_at', { nullable: true }),
          // the time_expire the prepay was sent with (RFC 3339)
          stringColumn('time_expire', 32, { nullable: true }),
          stringColumn('transaction_id', 32, { nullable: true }),
          dateColumn(queryRunner, 'last_queried_at', { nullable: true }),
          dateColumn(queryRunner, 'created_at'),
          dateColumn(queryRunner, 'updated_at'),
        ],
        uniques: [{ name: 'uq_payment_attempts_order_seq', columnNames: ['order_id', 'seq'] }],
      }),
    );
    await ensureIndices(queryRunner, 'payment_attempts', [
      new TableIndex({ name: 'idx_payment_attempts_status_prepay', columnNames: ['status', 'prepay_at'] }),
      new TableIndex({ name: 'idx_payment_attempts_transaction', columnNames: ['transaction_id'] }),
    ]);
    // The attempt a refund goes to (null on rows from before: the order's own number).
    await ensureColumns(queryRunner, 'refunds', [new TableColumn(stringColumn('payment_out_trade_no', 32, { nullable: true }))]);
    await queryRunner.query(
      `INSERT INTO payment_attempts (order_id, out_trade_no, seq, channel, status, appid, openid, prepay_id, prepay_url, prepay_at, transaction_id, last_queried_at, created_at, updated_at)
       SELECT o.id, o.out_trade_no, 1, 'jsapi',
              CASE
                WHEN o.status = 'NOTPAY' THEN 'NOTPAY'
                WHEN o.status = 'CLOSED' THEN 'CLOSED'
                WHEN o.status = 'REFUNDED' THEN 'REFUNDED'
                WHEN o.status = 'ANOMALY' AND o.transaction_id IS NULL THEN 'NOTPAY'
                ELSE 'PAID'
              END,
              o.appid, o.openid, o.prepay_id, NULL, o.prepay_at, o.transaction_id, o.last_queried_at, o.created_at, o.updated_at
       FROM orders o
       WHERE NOT EXISTS (SELECT 1 FROM payment_attempts a WHERE a.order_id = o.id)`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (await queryRunner.hasColumn('refunds', 'payment_out_trade_no')) await queryRunner.dropColumn('refunds', 'payment_out_trade_no');
    if (await queryRunner.hasTable('payment_attempts')) await queryRunner.dropTable('payment_attempts');
  }
}
