import { MigrationInterface, QueryRunner, Table, TableColumn, TableIndex } from 'typeorm';
import { autoIdColumn, dateColumn, stringColumn } from '../database/columns';
import { ensureColumns, ensureIndex, ensureTable } from '../database/idempotent-ddl';

/**
 * Service-provider mode (issue 15): the sub-merchants a provider takes payments for
 * (`sub_merchants`: sub_mchid, name, optional sub_appid with its secret encrypted at rest, enabled),
 * the sub-merchant each product belongs to and each order was placed with (products.sub_mchid,
 * orders.sub_mchid; NULL in direct mode). Safe to re-run after a partial run.
 */
export class SubMerchants1764400000000 implements MigrationInterface {
  name = 'SubMerchants1764400000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await ensureTable(
      queryRunner,
      new Table({
        name: 'sub_merchants',
        columns: [
          autoIdColumn(queryRunner),
          stringColumn('sub_mchid', 32),
          stringColumn('name', 128),
          stringColumn('sub_appid', 32, { nullable: true }),
          stringColumn('sub_appsecret_enc', 255, { nullable: true }),
          { name: 'enabled', type: 'int', isNullable: false, default: 1 },
          dateColumn(queryRunner, 'created_at'),
          dateColumn(queryRunner, 'updated_at'),
        ],
        uniques: [{ name: 'uq_sub_merchants_sub_mchid', columnNames: ['sub_mchid'] }],
      }),
    );
    await ensureColumns(queryRunner, 'products', [new TableColumn(stringColumn('sub_mchid', 32, { nullable: true }))]);
    await ensureColumns(queryRunner, 'orders', [new TableColumn(stringColumn('sub_mchid', 32, { nullable: true }))]);
    await ensureIndex(queryRunner, 'orders', new TableIndex({ name: 'idx_orders_sub_mchid', columnNames: ['sub_mchid', 'created_at'] }));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const orders = await queryRunner.getTable('orders');
    if (orders?.indices.some((i) => i.name === 'idx_orders_sub_mchid')) await queryRunner.dropIndex('orders', 'idx_orders_sub_mchid');
    if (await queryRunner.hasColumn('orders', 'sub_mchid')) await queryRunner.dropColumn('orders', 'sub_mchid');
    if (await queryRunner.hasColumn('products', 'sub_mchid')) await queryRunner.dropColumn('products', 'sub_mchid');
    if (await queryRunner.hasTable('sub_merchants')) await queryRunner.dropTable('sub_merchants');
  }
}
