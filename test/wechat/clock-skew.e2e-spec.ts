import { Shop } from '../helpers/shop';

/**
 * Issue 17 item 4: WeChat's clock off from ours. The sandbox's wechatSkewMs moves only simulated
 * WeChat's own clock (its signatures, Date, the check of our timestamps, time_expire); the app's
 * clock stays real. The app must see the offset before payments stop and keep working where it can.
 */
describe("clock skew: WeChat's clock off from ours", () => {
  let shop: Shop;
  let productId: number;

  beforeAll(async () => {
    // A short close window: with WeChat 60 s ahead, an unshifted time_expire is already past for WeChat.
    shop = await Shop.start({ captureLogs: true, env: { ORDER_CLOSE_AFTER: '30s' } });
    productId = (await shop.product('对时测试商品', 100)).id;
  });
  afterAll(async () => {
    await shop?.sandbox.setWechatSkew(0);
    await shop?.close();
  });

  const lines = (pattern: RegExp) => shop.t.logs.filter((l) => typeof l.msg === 'string' && pattern.test(l.msg));
  const skewWarnings = () => lines(/^Clock skew: /);
  const health = async () => (await shop.http().get('/health').expect(200)).body;

  it('WeChat 60 s ahead (inside the signature tolerance): prepay still succeeds with time_expire shifted by the measured skew, and the order is paid', async () => {
    await shop.sandbox.setWechatSkew(60_000);
    expect((await shop.sandbox.clock()).wechatSkewMs).toBe(60_000);
    const alice = await shop.login('o_clock_skew_alice');

    // The first answer of this run reveals WeChat's clock: a prepay refused as expired is sent once
    // more with time_expire shifted; later prepays are shifted from the start.
    await shop.sandbox.resetCalls();
    for (const round of [1, 2]) {
      const no = await shop.placeOrder(alice, [{ productId, quantity: 1 }]);
      const order = (await shop.http().get(`/orders/${no}`).set(alice.headers).expect(200)).body;
      const pay = await shop.http().post(`/orders/${no}/pay`).set(alice.headers);
      expect({ round, status: pay.status, body: pay.status === 200 ? 'ok' : pay.body }).toEqual({ round, status: 200, body: 'ok' });

      const atWechat = await shop.sandbox.transaction(no);
      expect(atWechat.trade_state).toBe('NOTPAY');
      const shift = Date.parse(String(atWechat.time_expire)) - Date.parse(order.expiresAt);
      expect(shift).toBeGreaterThanOrEqual(59_000);
      expect(shift).toBeLessThanOrEqual(61_000);
      // at least the close window ahead of WeChat's clock
      expect(Date.parse(String(atWechat.time_expire)) - (Date.now() + 60_000)).toBeGreaterThan(25_000);

      const timeline = (await shop.admin().get(`/admin/orders/${no}`).expect(200)).body.timeline;
      expect(timeline.find((e: { type: string }) => e.type === 'prepay').detail.timeExpire).toBe(atWechat.time_expire);

      if (round === 2) {
        // WeChat signs its notification by its own clock (60 s ahead): still accepted, the order is paid.
        const prepayId = String(pay.body.package).replace('prepay_id=', '');
        expect((await shop.sandbox.pay(prepayId)).result).toBe('ok');
        await shop.sandbox.waitForNotification({ outTradeNo: no });
        await shop.waitForStatus(no, 'PAID');
      }
    }
    // round 1: refused once, then shifted; round 2: shifted at once
    expect(await shop.sandbox.callsTo('v3/pay/transactions/jsapi')).toBe(3);
  });

  it('past WECHATPAY_CLOCK_SKEW_MAX (30 s): /health is "degraded" naming the offset, and one warning names it however many answers arrive', async () => {
    const body = await health();
    expect(body.status).toBe('degraded');
    expect(body.details.database.status).toBe('up');
    expect(body.details.wechatClock).toMatchObject({ status: 'degraded', maxMs: 30_000, source: 'Wechatpay-Timestamp' });
    expect(Math.abs(body.details.wechatClock.offsetMs - 60_000)).toBeLessThanOrEqual(1500);

    // more answers: still the one warning
    const bob = await shop.login('o_clock_skew_bob');
    for (let i = 0; i < 3; i++) await shop.prepay(bob, await shop.placeOrder(bob, [{ productId, quantity: 1 }]));
    const warnings = skewWarnings();
    expect(warnings).toHaveLength(1);
    expect(warnings[0].msg).toMatch(/WeChat's clock is \+(59|60|61)\.\d s ahead of this server's/);
    expect(warnings[0].msg).toContain('WECHATPAY_CLOCK_SKEW_MAX');
  });

  it("WeChat 6 minutes ahead: the 401 SIGN_ERROR is logged with WeChat's detail (the offset) and the measured skew, and /health is degraded at ~360 s", async () => {
    await shop.sandbox.setWechatSkew(6 * 60_000);
    const carol = await shop.login('o_clock_skew_carol');
    const no = await shop.placeOrder(carol, [{ productId, quantity: 1 }]);
    const pay = await shop.http().post(`/orders/${no}/pay`).set(carol.headers);
    expect(pay.status).toBe(502);

    // the WeChat client's own line for the error (the request's 502 line comes on top)
    const signErrors = lines(/^POST \/v3\/pay\/transactions\/jsapi: WeChat Pay answered 401 SIGN_ERROR: 错误的签名，验签失败/);
    expect(signErrors.length).toBeGreaterThanOrEqual(1);
    const line = signErrors[signErrors.length - 1].msg as string;
    // WeChat's own detail: the offset it saw between our timestamp and its clock
    expect(line).toMatch(/detail=.*偏差 (359|360|361) 秒/);
    // and what we measured from its answer
    expect(line).toMatch(/WeChat's clock is \+(359|360|361)\.\d s from ours/);

    const body = await health();
    expect(body.status).toBe('degraded');
    expect(Math.abs(body.details.wechatClock.offsetMs - 360_000)).toBeLessThanOrEqual(1500);
    expect(body.details.wechatClock.message).toMatch(/36\d s off/);
    // still the same excursion: no second warning
    expect(skewWarnings()).toHaveLength(1);
  });

  it('WeChat back on time: /health is ok again, and a later excursion is warned about again', async () => {
    await shop.sandbox.setWechatSkew(0);
    const dave = await shop.login('o_clock_skew_dave');
    await shop.prepay(dave, await shop.placeOrder(dave, [{ productId, quantity: 1 }]));
    const body = await health();
    expect(body.status).toBe('ok');
    expect(body.details.wechatClock.status).toBe('up');
    expect(Math.abs(body.details.wechatClock.offsetMs)).toBeLessThanOrEqual(1500);
    expect(lines(/^Clock skew back within WECHATPAY_CLOCK_SKEW_MAX/)).toHaveLength(1);

    await shop.sandbox.setWechatSkew(-45_000);
    await shop.prepay(dave, await shop.placeOrder(dave, [{ productId, quantity: 1 }]));
    const warnings = skewWarnings();
    expect(warnings).toHaveLength(2);
    expect(warnings[1].msg).toMatch(/WeChat's clock is -(44|45|46)\.\d s behind this server's/);
  });
});
