import { MigrationInterface, QueryRunner, Table, TableIndex } from 'typeorm';
import { autoIdColumn, dateColumn, stringColumn, textColumn } from '../database/columns';
import { ensureIndex, ensureTable } from '../database/idempotent-ddl';

export class Auth1763900100000 implements MigrationInterface {
  name = 'Auth1763900100000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await ensureTable(
      queryRunner,
      new Table({
        name: 'users',
        columns: [
          autoIdColumn(queryRunner),
          stringColumn('appid', 32),
          stringColumn('openid', 128),
          stringColumn('unionid', 128, { nullable: true }),
          stringColumn('nickname', 128, { nullable: true }),
          stringColumn('avatar_url', 512, { nullable: true }),
          stringColumn('scope', 32),
          // OAuth tokens, AES-256-GCM encrypted with a key derived from SESSION_SECRET
          textColumn(queryRunner, 'access_token_enc', { nullable: true }),
          textColumn(queryRunner, 'refresh_token_enc', { nullable: true }),
          dateColumn(queryRunner, 'access_expires_at', { nullable: true }),
          dateColumn(queryRunner, 'refresh_expires_at', { nullable: true }),
          dateColumn(queryRunner, 'created_at'),
          dateColumn(queryRunner, 'updated_at'),
        ],
        uniques: [{ name: 'uq_users_appid_openid', columnNames: ['appid', 'openid'] }],
      }),
    );
    await ensureTable(
      queryRunner,
      new Table({
        name: 'sessions',
        columns: [
          stringColumn('id', 43, { primary: true }),
          { name: 'user_id', type: 'bigint', isNullable: false },
          dateColumn(queryRunner, 'created_at'),
          dateColumn(queryRunner, 'expires_at'),
          dateColumn(queryRunner, 'revoked_at', { nullable: true }),
        ],
      }),
    );
    await ensureIndex(queryRunner, 'sessions', new TableIndex({ name: 'idx_sessions_user', columnNames: ['user_id'] }));
    await ensureTable(
      queryRunner,
      new Table({
        name: 'oauth_states',
        columns: [
          stringColumn('id', 32, { primary: true }),
          stringColumn('redirect', 512),
          stringColumn('scope', 32),
          dateColumn(queryRunner, 'created_at'),
          dateColumn(queryRunner, 'expires_at'),
          dateColumn(queryRunner, 'used_at', { nullable: true }),
        ],
      }),
    );
    await ensureIndex(queryRunner, 'oauth_states', new TableIndex({ name: 'idx_oauth_states_expires', columnNames: ['expires_at'] }));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('oauth_states');
    await queryRunner.dropTable('sessions');
    await queryRunner.dropTable('users');
  }
}
