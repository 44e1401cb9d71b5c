import { PaymentJobs } from '../../src/payment/payment.jobs';
import { Login } from '../helpers/login';
import { Shop } from '../helpers/shop';

/**
 * Issue 12 item 13: a notify_url WeChat cannot reach (https, proxy, firewall) does not turn anything
 * red — the jobs find the payments by querying — so the console's notification health must say so.
 */
describe.each(['v3', 'v2'] as const)('notification health with WECHATPAY_API_VERSION=%s: payments found only by query', (version) => {
  let shop: Shop;
  let shopper: Login;
  let productId: number;
  /** The notify_url WeChat was given: the version's own route. */
  const notifyPath = version === 'v3' ? '/notify/wechatpay/transaction' : '/notify/wechatpay/v2/transaction';

  beforeAll(async () => {
    shop = await Shop.start({ env: { PAYMENT_RECONCILE_AFTER: '0s', WECHATPAY_API_VERSION: version } });
    shopper = await shop.login(`o_health_shopper_${version}`);
    productId = (await shop.product('通知健康', 100)).id;
  });
  afterAll(() => shop?.close());

  const health = async () => (await shop.admin().get('/admin/notifications').expect(200)).body;

  it('warns with the count and what to check when payments were applied by query and no notification arrived, and stops once one does', async () => {
    expect((await health()).warnings).toEqual([]);

    // WeChat cannot reach notify_url: two payments, found by the reconcile job's queries.
    await shop.sandbox.dropNotifications(true);
    const paid: string[] = [];
    for (let i = 0; i < 2; i++) {
      const no = await shop.placeOrder(shopper, [{ productId, quantity: 1 }]);
      await shop.sandbox.pay(await shop.prepay(shopper, no));
      paid.push(no);
    }
    await shop.t.app.get(PaymentJobs).reconcile();
    for (const no of paid) expect(await shop.status(no)).toBe('PAID');

    const broken = await health();
    expect(broken).toMatchObject({ paymentNotificationsLast24h: 0, appliedByQueryLast24h: 2, paymentsAppliedLast24h: { reconcile: 2 } });
    expect(broken.warnings).toEqual([
      expect.objectContaining({
        code: 'NOTIFICATIONS_NOT_ARRIVING',
        appliedByQuery: 2,
        notifyUrl: `${shop.baseUrl}${notifyPath}`,
        message: expect.stringContaining('2 笔支付是查单才发现的'),
      }),
    ]);
    const check = broken.warnings[0].check.join('\n');
    expect(check).toMatch(/https/);
    expect(check).toContain(`反向代理（nginx 等）把 POST ${notifyPath} 原样转发`);
    expect((await shop.sandbox.transaction(paid[0])).notify_url).toBe(broken.warnings[0].notifyUrl);
    expect(check).toMatch(/防火墙/);

    // notify_url works again: the next payment's notification arrives and the warning goes.
    await shop.sandbox.dropNotifications(false);
    await shop.paidOrder(shopper, [{ productId, quantity: 1 }]);
    const fixed = await health();
    expect(fixed).toMatchObject({ paymentNotificationsLast24h: 1, appliedByQueryLast24h: 2, paymentsAppliedLast24h: { reconcile: 2, notification: 1 } });
    expect(fixed.warnings).toEqual([]);
  });
});
