import { MigrationInterface, QueryRunner, TableColumn } from 'typeorm';
import { intColumn, stringColumn } from '../database/columns';
import { ensureColumns } from '../database/idempotent-ddl';

/**
 * payment_events keep the raw notification bytes faithfully: `raw_encoding` says how `raw_body`
 * holds them (utf8: the bytes are that text exactly; base64: they were not valid UTF-8; omitted:
 * too large to keep, `raw_body` is a marker), with their length and SHA-256 beside. orders record
 * which way a payment after close was settled (refund | reinstate), decided once by a guarded UPDATE.
 */
export class PaymentDurability1763900400000 implements MigrationInterface {
  name = 'PaymentDurability1763900400000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await ensureColumns(queryRunner, 'payment_events', [
      new TableColumn(stringColumn('raw_encoding', 8, { default: 'utf8' })),
      new TableColumn(intColumn('raw_size', { nullable: true })),
      new TableColumn(stringColumn('raw_sha256', 64, { nullable: true })),
    ]);
    await ensureColumns(queryRunner, 'orders', [new TableColumn(stringColumn('after_close_action', 16, { nullable: true }))]);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropColumn('orders', 'after_close_action');
    await queryRunner.dropColumns('payment_events', ['raw_sha256', 'raw_size', 'raw_encoding']);
  }
}
