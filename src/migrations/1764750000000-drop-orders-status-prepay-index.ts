import { MigrationInterface, QueryRunner, TableIndex } from 'typeorm';
import { ensureIndex } from '../database/idempotent-ddl';

/**
 * Drops idx_orders_status_prepay (orders.status, orders.prepay_at): no query reads orders by
 * prepay_at any more, since prepays are recorded on payment_attempts (1764300000000, which has its
 * own idx_payment_attempts_status_prepay) and pay no longer writes orders.prepay_id / prepay_at.
 * Queries by status alone still have idx_orders_status_created. The index only cost every order
 * insert and status change a write. Safe to re-run (MariaDB/MySQL and SQLite: DROP INDEX when it is there).
 */
export class DropOrdersStatusPrepayIndex1764750000000 implements MigrationInterface {
  name = 'DropOrdersStatusPrepayIndex1764750000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const orders = await queryRunner.getTable('orders');
    if (orders?.indices.some((i) => i.name === 'idx_orders_status_prepay')) await queryRunner.dropIndex('orders', 'idx_orders_status_prepay');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await ensureIndex(queryRunner, 'orders', new TableIndex({ name: 'idx_orders_status_prepay', columnNames: ['status', 'prepay_at'] }));
  }
}
