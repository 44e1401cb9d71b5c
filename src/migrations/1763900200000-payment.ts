import { MigrationInterface, QueryRunner, Table, TableIndex } from 'typeorm';
import { autoIdColumn, dateColumn, intColumn, moneyColumn, stringColumn, textColumn } from '../database/columns';
import { ensureIndex, ensureIndices, ensureTable } from '../database/idempotent-ddl';

export class Payment1763900200000 implements MigrationInterface {
  name = 'Payment1763900200000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await ensureTable(
      queryRunner,
      new Table({
        name: 'products',
        columns: [
          autoIdColumn(queryRunner),
          stringColumn('name', 128),
          stringColumn('description', 512, { nullable: true }),
          stringColumn('image_url', 512, { nullable: true }),
          moneyColumn('price'),
          // null = unlimited
          intColumn('stock', { nullable: true }),
          intColumn('active', { default: 1 }),
          dateColumn(queryRunner, 'created_at'),
          dateColumn(queryRunner, 'updated_at'),
        ],
      }),
    );
    await ensureTable(
      queryRunner,
      new Table({
        name: 'orders',
        columns: [
          autoIdColumn(queryRunner),
          stringColumn('out_trade_no', 32, { unique: true }),
          { name: 'user_id', type: 'bigint', isNullable: false },
          stringColumn('appid', 32),
          stringColumn('openid', 128),
          stringColumn('status', 20),
          moneyColumn('total'),
          stringColumn('currency', 8),
          stringColumn('description', 127),
          stringColumn('idempotency_key', 64, { nullable: true }),
          stringColumn('request_hash', 64, { nullable: true }),
          stringColumn('prepay_id', 64, { nullable: true }),
          dateColumn(queryRunner, 'prepay_at', { nullable: true }),
          dateColumn(queryRunner, 'expires_at'),
          stringColumn('transaction_id', 32, { nullable: true }),
          stringColumn('payer_openid', 128, { nullable: true }),
          moneyColumn('paid_total', { nullable: true }),
          dateColumn(queryRunner, 'paid_at', { nullable: true }),
          // which apply batch moved the order to PAID (tells a fresh transition from a duplicate)
          stringColumn('paid_batch', 32, { nullable: true }),
          dateColumn(queryRunner, 'closed_at', { nullable: true }),
          moneyColumn('refunded_total', { default: 0 }),
          stringColumn('anomaly_reason', 255, { nullable: true }),
          dateColumn(queryRunner, 'last_queried_at', { nullable: true }),
          dateColumn(queryRunner, 'created_at'),
          dateColumn(queryRunner, 'updated_at'),
        ],
        uniques: [{ name: 'uq_orders_user_idempotency', columnNames: ['user_id', 'idempotency_key'] }],
      }),
    );
    await ensureIndices(queryRunner, 'orders', [
      new TableIndex({ name: 'idx_orders_status_created', columnNames: ['status', 'created_at'] }),
      new TableIndex({ name: 'idx_orders_status_prepay', columnNames: ['status', 'prepay_at'] }),
      new TableIndex({ name: 'idx_orders_user_created', columnNames: ['user_id', 'created_at'] }),
      new TableIndex({ name: 'idx_orders_transaction', columnNames: ['transaction_id'] }),
    ]);
    await ensureTable(
      queryRunner,
      new Table({
        name: 'order_items',
        columns: [
          autoIdColumn(queryRunner),
          { name: 'order_id', type: 'bigint', isNullable: false },
          { name: 'product_id', type: 'bigint', isNullable: false },
          stringColumn('name', 128),
          moneyColumn('unit_price'),
          intColumn('quantity'),
          moneyColumn('subtotal'),
        ],
      }),
    );
    await ensureIndex(queryRunner, 'order_items', new TableIndex({ name: 'idx_order_items_order', columnNames: ['order_id'] }));
    await ensureTable(
      queryRunner,
      new Table({
        name: 'order_events',
        columns: [
          autoIdColumn(queryRunner),
          stringColumn('out_trade_no', 32),
          stringColumn('type', 32),
          textColumn(queryRunner, 'detail', { nullable: true }),
          dateColumn(queryRunner, 'created_at'),
        ],
      }),
    );
    await ensureIndex(queryRunner, 'order_events', new TableIndex({ name: 'idx_order_events_order', columnNames: ['out_trade_no', 'id'] }));
    await ensureTable(
      queryRunner,
      new Table({
        name: 'payment_events',
        columns: [
          autoIdColumn(queryRunner),
          stringColumn('kind', 16),
          stringColumn('notification_id', 64, { nullable: true }),
          stringColumn('event_type', 32, { nullable: true }),
          stringColumn('out_trade_no', 32, { nullable: true }),
          stringColumn('out_refund_no', 64, { nullable: true }),
          intColumn('verified'),
          stringColumn('outcome', 32),
          stringColumn('serial', 64, { nullable: true }),
          textColumn(queryRunner, 'raw_body'),
          dateColumn(queryRunner, 'received_at'),
        ],
      }),
    );
    await ensureIndices(queryRunner, 'payment_events', [
      new TableIndex({ name: 'idx_payment_events_received', columnNames: ['received_at'] }),
      new TableIndex({ name: 'idx_payment_events_order', columnNames: ['out_trade_no'] }),
    ]);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    for (const table of ['payment_events', 'order_events', 'order_items', 'orders', 'products']) await queryRunner.dropTable(table);
  }
}
