import { loadOrCreateSandboxKeystore } from '../../src/sandbox/keystore';
import { ApiVersion, acknowledged, craftPayment, postNotification } from '../helpers/craft-notification';
import { useMysql } from '../helpers/mysql';
import { Shop } from '../helpers/shop';
import { StatementCount, StatementCounter } from '../helpers/statement-counter';

/**
 * Issue 14: an APIv2 payment notification is applied by the same code as an APIv3 one, so it costs
 * exactly the statements and commits of one (statement-budget.e2e-spec.ts holds the v3 count to its
 * budget). Counted at TypeORM's query runner, the second of two notifications (the first warms up).
 */
describe(`statements per payment notification, APIv2 as APIv3 (${useMysql() ? 'MariaDB' : 'SQLite'})`, () => {
  async function measure(version: ApiVersion): Promise<StatementCount> {
    const shop = await Shop.start({ env: { SANDBOX_INSTANCE_LOCK: 'false', CATALOG_CACHE_TTL: '60s', WECHATPAY_API_VERSION: version } });
    try {
      const keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
      const mug = await shop.product('马克杯', 3900, 1000);
      const alice = await shop.login(`o_v2_statements_${version}`);
      const counter = StatementCounter.attach(shop.t.app);
      let last: StatementCount | undefined;
      for (let round = 0; round < 2; round++) {
        const no = await shop.placeOrder(alice, [{ productId: mug.id, quantity: 1 }]);
        await shop.http().post(`/orders/${no}/pay`).set(alice.headers).expect(200);
        const notification = craftPayment(version, keystore, no, 3900);
        const m = await counter.measure(() => postNotification(shop.baseUrl, notification));
        expect(await acknowledged(version, m.result)).toBe(true);
        expect(await shop.status(no)).toBe('PAID');
        last = { statements: m.statements, commits: m.commits, sql: m.sql };
      }
      return last!;
    } finally {
      await shop.close();
    }
  }

  it('sends the same statements, in the same order, with one commit', async () => {
    const v3 = await measure('v3');
    const v2 = await measure('v2');
    expect(v2.commits).toBe(1);
    expect({ statements: v2.statements, commits: v2.commits, sql: v2.sql }).toEqual({ statements: v3.statements, commits: v3.commits, sql: v3.sql });
  });
});
