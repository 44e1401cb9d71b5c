/**
 * Issue 12 item 12: a prepay that fails for a passing reason must not strand the shopper. WeChat's
 * SYSTEM_ERROR (and other 5xx, 429, network errors) is retried with the same out_trade_no and the same
 * body; when it keeps failing the shopper gets a Chinese 503 and paying the same order again works —
 * never a second unpaid order.
 */
import { DataSource } from 'typeorm';
import { PAYMENT_GATEWAY, PaymentGateway } from '../../src/wechat/pay/payment-gateway';
import { Shop } from '../helpers/shop';

// Once per API version (issue 14): v2's unifiedorder fails with err_code SYSTEMERROR, the same retries apply.
describe.each(['v3', 'v2'] as const)('prepay retries (WeChat SYSTEM_ERROR, timeouts) and retry on the same order (WECHATPAY_API_VERSION=%s)', (version) => {
  let shop: Shop;
  /** The sandbox's name of the prepay call. */
  const PREPAY = version === 'v3' ? 'v3/pay/transactions/jsapi' : 'pay/unifiedorder';

  beforeAll(async () => {
    shop = await Shop.start({ env: { PAYMENT_PREPAY_RETRIES: '2', PAYMENT_PREPAY_RETRY_BACKOFF: '20ms', WECHAT_HTTP_TIMEOUT: '400ms', WECHATPAY_API_VERSION: version } });
  });
  afterAll(() => shop?.close());

  beforeEach(() => shop.sandbox.resetCalls());

  async function ordersOf(login: { headers: { Authorization: string } }) {
    return (await shop.http().get('/orders').set(login.headers).expect(200)).body.items as Array<{ outTradeNo: string; status: string }>;
  }

  it('one SYSTEM_ERROR from WeChat, then success: the shopper gets the cashier parameters and pays one order', async () => {
    const mug = await shop.product('马克杯', 3900, 10);
    const bob = await shop.login(`o_prepay_retry_once_${version}`);
    const no = await shop.placeOrder(bob, [{ productId: mug.id, quantity: 1 }]);
    await shop.sandbox.failNext(PREPAY, '500', 1);

    const pay = await shop.http().post(`/orders/${no}/pay`).set(bob.headers).expect(200);
    expect(pay.body.package).toMatch(/^prepay_id=wx/);
    expect(await shop.sandbox.callsTo(PREPAY)).toBe(2);

    // The same out_trade_no both times: WeChat holds one transaction with one prepay.
    const atWechat = await shop.sandbox.transaction(no);
    expect(atWechat.prepay_ids).toEqual([String(pay.body.package).replace('prepay_id=', '')]);
    expect((await shop.sandbox.pay(atWechat.prepay_ids[0])).result).toBe('ok');
    await shop.waitForStatus(no, 'PAID');
    expect(await ordersOf(bob)).toEqual([expect.objectContaining({ outTradeNo: no, status: 'PAID' })]);
    expect((await shop.admin().get('/admin/products').expect(200)).body.find((p: { id: number }) => p.id === mug.id).stock).toBe(9);
  });

  it('a prepay that times out once is sent again with the same body (WeChat answers the same prepay)', async () => {
    const tee = await shop.product('T 恤', 8800);
    const carol = await shop.login(`o_prepay_retry_timeout_${version}`);
    const no = await shop.placeOrder(carol, [{ productId: tee.id, quantity: 1 }]);
    await shop.sandbox.failNext(PREPAY, 'timeout', 1);

    const pay = await shop.http().post(`/orders/${no}/pay`).set(carol.headers).expect(200);
    expect(await shop.sandbox.callsTo(PREPAY)).toBe(2);
    expect((await shop.sandbox.transaction(no)).prepay_ids).toEqual([String(pay.body.package).replace('prepay_id=', '')]);
  });

  it('WeChat failing every retry: a Chinese 503 naming the order, the order stays payable, and the retry pays the same order', async () => {
    const badge = await shop.product('徽章', 990, 5);
    const dave = await shop.login(`o_prepay_retry_persistent_${version}`);
    const no = await shop.placeOrder(dave, [{ productId: badge.id, quantity: 2 }]);
    await shop.sandbox.failNext(PREPAY, '500', 3); // the first call and both retries

    const failed = await shop.http().post(`/orders/${no}/pay`).set(dave.headers).expect(503);
    expect(failed.body).toMatchObject({
      statusCode: 503,
      code: 'PREPAY_UNAVAILABLE',
      message: expect.stringMatching(/微信支付暂时无法下单，请稍后重试/),
      details: { outTradeNo: no, retryable: true, attempts: 3, wechatStatus: 500, wechatCode: 'SYSTEM_ERROR' },
    });
    expect(failed.body.message).not.toMatch(/[A-Za-z]{4,}/); // no "WeChat Pay answered 500 SYSTEM_ERROR" for the shopper
    expect(await shop.sandbox.callsTo(PREPAY)).toBe(3); // bounded: 1 + PAYMENT_PREPAY_RETRIES

    // Nothing changed: still unpaid, stock still reserved, no prepay recorded; the operator sees why.
    const detail = (await shop.admin().get(`/admin/orders/${no}`).expect(200)).body;
    expect(detail).toMatchObject({ status: 'NOTPAY', prepayId: null });
    expect(detail.timeline.map((e: { type: string }) => e.type)).toEqual(['created', 'prepay_failed']);
    expect(detail.timeline[1].detail).toMatchObject({ attempts: 3, wechatStatus: 500, wechatCode: 'SYSTEM_ERROR' });

    // The shopper retries the same order: it works, and no second order appears.
    const retry = await shop.http().post(`/orders/${no}/pay`).set(dave.headers).expect(200);
    const prepayId = String(retry.body.package).replace('prepay_id=', '');
    expect((await shop.sandbox.pay(prepayId)).result).toBe('ok');
    await shop.waitForStatus(no, 'PAID');
    expect(await ordersOf(dave)).toEqual([expect.objectContaining({ outTradeNo: no, status: 'PAID' })]);
    expect((await shop.admin().get('/admin/products').expect(200)).body.find((p: { id: number }) => p.id === badge.id).stock).toBe(3);
  });

  it('a refusal that is not passing (WeChat 4xx) is not retried', async () => {
    const cup = await shop.product('杯垫', 500);
    const erin = await shop.login(`o_prepay_retry_refused_${version}`);
    const no = await shop.placeOrder(erin, [{ productId: cup.id, quantity: 1 }]);
    // Close it at WeChat behind our back: the prepay is refused with 400 ORDER_CLOSED.
    await shop.http().post(`/orders/${no}/pay`).set(erin.headers).expect(200);
    await shop.sandbox.resetCalls();
    await shop.t.app.get<PaymentGateway>(PAYMENT_GATEWAY).close(no);
    // …and forget our prepay, so that the next pay asks WeChat again.
    await shop.t.app.get(DataSource).query('UPDATE orders SET prepay_id = NULL, prepay_at = NULL WHERE out_trade_no = ?', [no]);
    await shop.t.app.get(DataSource).query('UPDATE payment_attempts SET prepay_id = NULL, prepay_at = NULL WHERE out_trade_no = ?', [no]);

    const refused = await shop.http().post(`/orders/${no}/pay`).set(erin.headers).expect(502);
    expect(refused.body.code).toBe('WECHATPAY_ERROR');
    expect(await shop.sandbox.callsTo(PREPAY)).toBe(1);
  });
});
