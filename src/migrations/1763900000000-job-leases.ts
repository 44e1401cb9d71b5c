import { MigrationInterface, QueryRunner, Table } from 'typeorm';
import { dateColumn, stringColumn } from '../database/columns';
import { ensureTable } from '../database/idempotent-ddl';

export class JobLeases1763900000000 implements MigrationInterface {
  name = 'JobLeases1763900000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await ensureTable(
      queryRunner,
      new Table({
        name: 'job_leases',
        columns: [
          stringColumn('name', 64, { primary: true }),
          stringColumn('owner', 64),
          dateColumn(queryRunner, 'expires_at'),
          dateColumn(queryRunner, 'updated_at'),
        ],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('job_leases');
  }
}
