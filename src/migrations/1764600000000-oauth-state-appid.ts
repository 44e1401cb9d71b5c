import { MigrationInterface, QueryRunner, TableColumn } from 'typeorm';
import { stringColumn } from '../database/columns';
import { ensureColumns } from '../database/idempotent-ddl';

/**
 * Service-provider mode (issue 15): a login through a sub-merchant's own official account
 * (`GET /auth/wechat/authorize?subMchid=…`) records that account's appid on its OAuth state, so the
 * callback exchanges the code with it (NULL: the default account, as before). Safe to re-run.
 */
export class OAuthStateAppid1764600000000 implements MigrationInterface {
  name = 'OAuthStateAppid1764600000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await ensureColumns(queryRunner, 'oauth_states', [new TableColumn(stringColumn('appid', 32, { nullable: true }))]);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (await queryRunner.hasColumn('oauth_states', 'appid')) await queryRunner.dropColumn('oauth_states', 'appid');
  }
}
