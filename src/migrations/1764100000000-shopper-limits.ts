import { MigrationInterface, QueryRunner, Table, TableIndex } from 'typeorm';
import { ensureIndex, ensureTable } from '../database/idempotent-ddl';

/**
 * Per-shopper limits (ORDER_MAX_OPEN_PER_USER, ORDER_MAX_RESERVED_PER_PRODUCT): one row per shopper
 * whose row lock makes that shopper's order creates take turns, and an index for counting a
 * shopper's unpaid orders. Safe to re-run after a partial run.
 *
 * shopper_order_locks is no longer written or read: creates now take the shopper's users row lock
 * (shopper-holdings.ts). The table stays for now so that instances of the previous release keep
 * creating orders during a rolling upgrade; a later release drops it.
 */
export class ShopperLimits1764100000000 implements MigrationInterface {
  name = 'ShopperLimits1764100000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await ensureTable(
      queryRunner,
      new Table({
        name: 'shopper_order_locks',
        columns: [
          { name: 'user_id', type: 'bigint', isPrimary: true },
          { name: 'creates', type: 'int', isNullable: false, default: 0 },
        ],
      }),
    );
    await ensureIndex(queryRunner, 'orders', new TableIndex({ name: 'idx_orders_user_status', columnNames: ['user_id', 'status'] }));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const orders = await queryRunner.getTable('orders');
    if (orders?.indices.some((i) => i.name === 'idx_orders_user_status')) await queryRunner.dropIndex('orders', 'idx_orders_user_status');
    if (await queryRunner.hasTable('shopper_order_locks')) await queryRunner.dropTable('shopper_order_locks');
  }
}
