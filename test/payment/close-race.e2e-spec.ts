import { OrderLifecycle } from '../../src/payment/order-lifecycle.service';
import { OrderService } from '../../src/payment/order.service';
import { PaymentJobs } from '../../src/payment/payment.jobs';
import { loadOrCreateSandboxKeystore, sandboxApiV2Key } from '../../src/sandbox/keystore';
import { PAYMENT_GATEWAY, PaymentGateway } from '../../src/wechat/pay/payment-gateway';
import { ApiVersion, v2Sign, v2Xml } from '../helpers/craft-notification';
import { Login } from '../helpers/login';
import { Shop } from '../helpers/shop';
import { ProxiedCall, WechatProxy } from './wechat-proxy';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether an APIv2 request's XML is about exactly the order `no` (not its later attempts `<no>_2`). */
const namesOrder = (xml: string, no: string) => new RegExp(`<out_trade_no>(<!\\[CDATA\\[)?${no}(\\]\\]>)?</out_trade_no>`).test(xml);

/**
 * WeChat's query and close of one order as the proxy saw them, in either version's words: v3 GET
 * …/out-trade-no/<no> and POST …/<no>/close; v2 POST pay/orderquery and pay/closeorder naming it in
 * the XML. [what, code]: code = WeChat's error code (v2 err_code), 'ok' when it did it.
 */
function callsOf(version: ApiVersion, calls: ProxiedCall[], no: string): Array<[string, string]> {
  const mine =
    version === 'v3'
      ? calls.filter((c) => c.path.includes(`/out-trade-no/${no}?`) || c.path.includes(`/out-trade-no/${no}/`))
      : calls.filter((c) => /\/pay\/(orderquery|closeorder)$/.test(c.path) && namesOrder(c.body ?? '', no));
  return mine.map((c) => [c.path.includes('close') ? 'close' : 'query', c.code ?? (c.status < 300 ? 'ok' : String(c.status))]);
}

/** A WeChat refusal for the proxy to answer: v3 JSON with its status; v2 a signed XML result_code FAIL with err_code (HTTP 200). */
async function refusal(version: ApiVersion, shop: Shop, v3: { status: number; code: string; message: string }, v2Code = v3.code) {
  if (version === 'v3') return v3;
  const keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
  const fields = { return_code: 'SUCCESS', return_msg: 'OK', appid: keystore.appid, mch_id: keystore.mchid, nonce_str: 'proxy0nce', result_code: 'FAIL', err_code: v2Code, err_code_des: v3.message };
  return { status: 200, code: v2Code, xml: v2Xml({ ...fields, sign: v2Sign(fields, sandboxApiV2Key(keystore), 'HMAC-SHA256') }) };
}

/** Whether a proxied request is the close of exactly `no`, in the version's words. */
const closeOf = (version: ApiVersion, no: string) => (method: string, path: string, body: string) =>
  version === 'v3' ? method === 'POST' && path.includes(`/out-trade-no/${no}/close`) : path.endsWith('/pay/closeorder') && namesOrder(body, no);

/**
 * The app talks to its sandbox's WeChat Pay API through a proxy run here (WECHATPAY_API_BASE), which
 * measures concurrency, can pay an order at the sandbox just before a close goes on (the race between
 * the close job's query and its close), and can answer a close with whatever error another WeChat
 * implementation might give.
 */
describe.each(['v3', 'v2'] as const)('closing orders against a WeChat that refuses, races and is slow (WECHATPAY_API_VERSION=%s)', (version) => {
  let shop: Shop;
  let proxy: WechatProxy;
  let orders: OrderService;
  let lifecycle: OrderLifecycle;
  let jobs: PaymentJobs;
  let shopper: Login;

  beforeAll(async () => {
    proxy = await new WechatProxy().start();
    shop = await Shop.start({
      env: {
        WECHATPAY_API_BASE: `${proxy.baseUrl}/sandbox`,
        ORDER_CLOSE_AFTER: '2s',
        PAYMENT_RECONCILE_AFTER: '0s',
        PAYMENT_QUERY_ON_READ_AFTER: '0s',
        PAYMENT_WECHAT_CONCURRENCY: '2',
        WECHATPAY_API_VERSION: version,
      },
    });
    proxy.target = shop.baseUrl;
    orders = shop.t.app.get(OrderService);
    lifecycle = shop.t.app.get(OrderLifecycle);
    jobs = shop.t.app.get(PaymentJobs);
    shopper = await shop.login(`o_close_race_${version}`);
  });
  afterAll(async () => {
    await shop?.close();
    await proxy?.close();
  });
  beforeEach(async () => {
    jobs.resetBackoff();
    proxy.delayMs = 0;
    proxy.resetStats();
    await shop.sandbox.dropNotifications(false);
  });

  const isClose = (no: string) => closeOf(version, no);
  const calls = (no: string) => callsOf(version, proxy.calls, no);
  const ORDER_PAID = version === 'v3' ? 'ORDER_PAID' : 'ORDERPAID';
  const stockOf = async (productId: number) =>
    (await shop.admin().get('/admin/products').expect(200)).body.find((p: { id: number }) => p.id === productId).stock as number;
  const timeline = async (no: string): Promise<string[]> =>
    (await shop.admin().get(`/admin/orders/${no}`).expect(200)).body.timeline.map((e: { type: string }) => e.type);

  async function prepaid(productId: number): Promise<{ no: string; prepayId: string }> {
    // Orders expire on a whole second (time_expire has no fraction): 2-3 s after creation here. The
    // races below pay at the sandbox some 2.1 s after creation, which WeChat accepts only before
    // time_expire; created early in a second, the order has at least 0.7 s to spare.
    while (Date.now() % 1000 > 150) await sleep(10);
    const no = await shop.placeOrder(shopper, [{ productId, quantity: 1 }]);
    return { no, prepayId: await shop.prepay(shopper, no) };
  }

  it('GET /orders/:no asks WeChat when the notification is late (PAYMENT_QUERY_ON_READ_AFTER=0s)', async () => {
    const product = await shop.product('查询即读', 100);
    await shop.sandbox.dropNotifications(true);
    const { no, prepayId } = await prepaid(product.id);
    expect((await shop.sandbox.pay(prepayId)).result).toBe('ok');
    expect(await shop.status(no)).toBe('NOTPAY'); // the admin view does not query
    proxy.resetStats();
    const res = await shop.http().get(`/orders/${no}`).set(shopper.headers).expect(200);
    expect(res.body).toMatchObject({ status: 'PAID', transactionId: expect.stringMatching(/^42/), paidAt: expect.any(String) });
    expect(calls(no)).toEqual([['query', 'ok']]);
    expect(await timeline(no)).toEqual(expect.arrayContaining(['query:applied']));
    // no notification reached us: it was the query
    expect((await shop.sandbox.notifications({ outTradeNo: no })).filter((a) => a.ok)).toHaveLength(0);
  });

  it('a payment between the close job\'s query and its close (WeChat: 400 ORDER_PAID) ends PAID, never CLOSED', async () => {
    const product = await shop.product('关单竞态', 200, 5);
    await shop.sandbox.dropNotifications(true);
    const { no, prepayId } = await prepaid(product.id);
    await sleep(2100);
    // The job queries (NOTPAY), then the shopper pays, then the job's close reaches WeChat.
    proxy.on(isClose(no), { before: async () => void (await shop.sandbox.pay(prepayId)) });
    const result = await jobs.closeExpired();
    expect(result).toMatchObject({ ran: true, closed: 0, paid: 1 });
    expect(calls(no)).toEqual([
      ['query', 'ok'], // the job's query: NOTPAY
      ['close', ORDER_PAID], // the sandbox refuses to close a paid order (v3 400 ORDER_PAID, v2 err_code ORDERPAID)
      ['query', 'ok'], // asked again: SUCCESS
    ]);
    expect(await shop.status(no)).toBe('PAID');
    expect((await shop.sandbox.transaction(no)).trade_state).toBe('SUCCESS');
    expect(await stockOf(product.id)).toBe(4); // not released
    expect(await timeline(no)).toEqual(expect.arrayContaining(['close-check:NOTPAY', 'close-check:close_refused', 'close-check:applied']));
    expect(await timeline(no)).not.toContain('closed');
  });

  it('acts on the query, not the code, when WeChat refuses the close of a paid order with another 4xx (403 TRADE_ERROR)', async () => {
    const product = await shop.product('其他错误码', 300, 5);
    await shop.sandbox.dropNotifications(true);
    const { no, prepayId } = await prepaid(product.id);
    await sleep(2100);
    proxy.on(isClose(no), {
      before: async () => void (await shop.sandbox.pay(prepayId)),
      answer: await refusal(version, shop, { status: 403, code: 'TRADE_ERROR', message: '交易错误' }),
    });
    const result = await jobs.closeExpired();
    expect(result).toMatchObject({ ran: true, closed: 0, paid: 1 });
    expect(await shop.status(no)).toBe('PAID');
    expect(await stockOf(product.id)).toBe(4);
  });

  it('applies the payment when the close path runs with a stale local view of a paid order', async () => {
    const product = await shop.product('过期视图', 400, 5);
    await shop.sandbox.dropNotifications(true);
    const { no, prepayId } = await prepaid(product.id);
    const stale = (await orders.findByOutTradeNo(no))!;
    await shop.sandbox.pay(prepayId);
    expect(await lifecycle.closeOrder(stale, 'expired', 'close-check')).toBe('paid');
    expect(await shop.status(no)).toBe('PAID');
    // and again with INVALID_REQUEST, the code a stand-in might use: still paid, nothing closed
    proxy.on(isClose(no), { answer: await refusal(version, shop, { status: 400, code: 'INVALID_REQUEST', message: '订单状态不允许关闭' }) });
    expect(await lifecycle.closeOrder(stale, 'cancelled', 'cancel-check')).toBe('paid');
    expect(await shop.status(no)).toBe('PAID');
    expect(await stockOf(product.id)).toBe(4);
  });

  it('closes here when WeChat refuses the close (400 INVALID_REQUEST) of an order it has already closed', async () => {
    const product = await shop.product('已在微信关闭', 500, 5);
    const { no } = await prepaid(product.id);
    await shop.t.app.get<PaymentGateway>(PAYMENT_GATEWAY).close(no); // closed at WeChat only
    expect((await shop.sandbox.transaction(no)).trade_state).toBe('CLOSED');
    proxy.on(isClose(no), { answer: await refusal(version, shop, { status: 400, code: 'INVALID_REQUEST', message: '订单已关闭' }) });
    const order = (await orders.findByOutTradeNo(no))!;
    expect(await lifecycle.closeOrder(order, 'expired', 'close-check')).toBe('closed');
    expect(await shop.status(no)).toBe('CLOSED');
    expect(await stockOf(product.id)).toBe(5);
    expect(await timeline(no)).toEqual(expect.arrayContaining(['close-check:close_refused', 'close-check:CLOSED', 'closed']));
  });

  it('retries a close that WeChat fails with 500', async () => {
    const product = await shop.product('关单重试', 700, 5);
    const { no } = await prepaid(product.id);
    await shop.sandbox.failNext(version === 'v3' ? 'v3/pay/transactions/close' : 'pay/closeorder', '500', 1);
    await shop.http().post(`/orders/${no}/cancel`).set(shopper.headers).expect(200);
    expect(calls(no).filter(([what]) => what === 'close')).toEqual([
      ['close', version === 'v3' ? 'SYSTEM_ERROR' : 'SYSTEMERROR'],
      ['close', 'ok'],
    ]);
    expect(await shop.status(no)).toBe('CLOSED');
  });

  it('never has more WeChat calls in flight than PAYMENT_WECHAT_CONCURRENCY (2), even with two sweeps at once', async () => {
    const product = await shop.product('并发上限', 100);
    const nos: string[] = [];
    for (let i = 0; i < 10; i++) nos.push((await prepaid(product.id)).no);
    await sleep(2100);
    proxy.resetStats();
    proxy.delayMs = 40; // every WeChat call takes a while, so that calls overlap when they can
    const [reconciled, closed] = await Promise.all([jobs.reconcile(), jobs.closeExpired()]);
    expect(reconciled.ran && closed.ran).toBe(true);
    expect(closed.closed).toBe(10);
    for (const no of nos) expect(await shop.status(no)).toBe('CLOSED');
    const mine = nos.flatMap((no) => calls(no));
    expect(mine.filter(([what]) => what === 'close')).toHaveLength(10);
    expect(mine.length).toBeGreaterThanOrEqual(20); // each order: the close job's query and close, maybe the reconcile query
    expect(proxy.maxInFlight).toBe(2);
  });
});

describe.each(['v3', 'v2'] as const)('cancelling an order WeChat refuses to close (WECHATPAY_API_VERSION=%s)', (version) => {
  let shop: Shop;
  let proxy: WechatProxy;

  beforeAll(async () => {
    proxy = await new WechatProxy().start();
    // ORDER_CLOSE_AFTER at its default (5 minutes): the order is certainly not past its time_expire.
    shop = await Shop.start({ env: { WECHATPAY_API_BASE: `${proxy.baseUrl}/sandbox`, WECHATPAY_API_VERSION: version } });
    proxy.target = shop.baseUrl;
  });
  afterAll(async () => {
    await shop?.close();
    await proxy?.close();
  });

  it('keeps an unpaid, unexpired order open when WeChat refuses to close it, and says so (502)', async () => {
    const shopper = await shop.login(`o_cancel_refused_${version}`);
    const product = await shop.product('拒绝取消', 600, 5);
    const no = await shop.placeOrder(shopper, [{ productId: product.id, quantity: 1 }]);
    await shop.prepay(shopper, no);
    const stockOf = async () => (await shop.admin().get('/admin/products').expect(200)).body.find((p: { id: number }) => p.id === product.id).stock as number;
    proxy.on(closeOf(version, no), { answer: await refusal(version, shop, { status: 403, code: 'RULE_LIMIT', message: '业务规则限制' }) });
    const res = await shop.http().post(`/orders/${no}/cancel`).set(shopper.headers).expect(502);
    // v2's err_code has no HTTP status: an unknown one is taken as a 400 refusal
    expect(res.body).toMatchObject({ code: 'WECHATPAY_ERROR', details: { wechatCode: 'RULE_LIMIT', wechatStatus: version === 'v3' ? 403 : 400 } });
    // WeChat was asked what the order is (NOTPAY, time_expire ahead): it stays open, stock reserved
    expect(callsOf(version, proxy.calls, no)).toEqual([
      ['close', 'RULE_LIMIT'],
      ['query', 'ok'],
    ]);
    expect(await shop.status(no)).toBe('NOTPAY');
    expect(await stockOf()).toBe(4);
    // WeChat closes it the next time: closed, stock back
    await shop.http().post(`/orders/${no}/cancel`).set(shopper.headers).expect(200);
    expect(await shop.status(no)).toBe('CLOSED');
    expect(await stockOf()).toBe(5);
  });
});
