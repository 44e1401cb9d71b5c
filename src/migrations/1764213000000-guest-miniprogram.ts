import { MigrationInterface, QueryRunner, Table, TableColumn, TableIndex } from 'typeorm';
import { autoIdColumn, dateColumn, stringColumn } from '../database/columns';
import { ensureColumns, ensureIndex, ensureNullable, ensureTable } from '../database/idempotent-ddl';

/**
 * Guest sessions and mini-program login (issue 13):
 * - orders.appid/openid and users.appid/openid become nullable (a guest has no openid; a shopper
 *   known only through the mini-program has no official-account openid);
 * - sessions record how they were made (kind wechat | miniprogram | guest) and the appid/openid of
 *   that app;
 * - user_identities: every (appid, openid) a user is known by, with WeChat's unionid when it gave one
 *   (official account and mini-program identities with the same unionid are one user). Existing
 *   users are copied in.
 * Safe to re-run after a partial run.
 */
export class GuestMiniprogram1764213000000 implements MigrationInterface {
  name = 'GuestMiniprogram1764213000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await ensureNullable(queryRunner, 'orders', ['appid', 'openid']);
    await ensureNullable(queryRunner, 'users', ['appid', 'openid']);
    await ensureColumns(queryRunner, 'sessions', [
      new TableColumn(stringColumn('kind', 16, { default: 'wechat' })),
      new TableColumn(stringColumn('appid', 32, { nullable: true })),
      new TableColumn(stringColumn('openid', 128, { nullable: true })),
    ]);
    await ensureTable(
      queryRunner,
      new Table({
        name: 'user_identities',
        columns: [
          autoIdColumn(queryRunner),
          { name: 'user_id', type: 'bigint', isNullable: false },
          stringColumn('appid', 32),
          stringColumn('openid', 128),
          stringColumn('unionid', 128, { nullable: true }),
          dateColumn(queryRunner, 'created_at'),
        ],
        uniques: [{ name: 'uq_user_identities_appid_openid', columnNames: ['appid', 'openid'] }],
      }),
    );
    await ensureIndex(queryRunner, 'user_identities', new TableIndex({ name: 'idx_user_identities_unionid', columnNames: ['unionid'] }));
    await ensureIndex(queryRunner, 'user_identities', new TableIndex({ name: 'idx_user_identities_user', columnNames: ['user_id'] }));
    await queryRunner.query(
      `INSERT INTO user_identities (user_id, appid, openid, unionid, created_at)
       SELECT u.id, u.appid, u.openid, u.unionid, u.created_at FROM users u
       WHERE u.appid IS NOT NULL AND u.openid IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM user_identities i WHERE i.appid = u.appid AND i.openid = u.openid)`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (await queryRunner.hasTable('user_identities')) await queryRunner.dropTable('user_identities');
    for (const column of ['openid', 'appid', 'kind']) {
      if (await queryRunner.hasColumn('sessions', column)) await queryRunner.dropColumn('sessions', column);
    }
    // Back to NOT NULL: guests' and mini-program-only rows get '' (they cannot be told apart afterwards).
    for (const tableName of ['users', 'orders']) {
      await queryRunner.query(`UPDATE ${tableName} SET appid = '' WHERE appid IS NULL`);
      await queryRunner.query(`UPDATE ${tableName} SET openid = '' WHERE openid IS NULL`);
      const table = await queryRunner.getTable(tableName);
      if (!table) continue;
      const changes = ['appid', 'openid'].flatMap((name) => {
        const oldColumn = table.findColumnByName(name);
        if (!oldColumn || !oldColumn.isNullable) return [];
        const newColumn = oldColumn.clone();
        newColumn.isNullable = false;
        return [{ oldColumn, newColumn }];
      });
      if (changes.length) await queryRunner.changeColumns(table, changes);
    }
  }
}
