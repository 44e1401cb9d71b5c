import { MigrationInterface, QueryRunner, Table } from 'typeorm';
import { ensureTable } from '../database/idempotent-ddl';

/**
 * Issue 16: a shopper's order creates take turns on the shopper's `users` row, locked by the same
 * statement that reads their unpaid holdings (src/payment/shopper-holdings.ts), so the per-shopper
 * lock rows of shopper_order_locks (ShopperLimits1764100000000) are no longer written or read. Safe to
 * re-run; down() brings the (empty) table back for the code before this change.
 */
export class DropShopperOrderLocks1764700000000 implements MigrationInterface {
  name = 'DropShopperOrderLocks1764700000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (await queryRunner.hasTable('shopper_order_locks')) await queryRunner.dropTable('shopper_order_locks');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
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
  }
}
