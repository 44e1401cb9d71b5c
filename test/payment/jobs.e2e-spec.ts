import { getDataSourceToken } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { loadOrCreateSandboxKeystore } from '../../src/sandbox/keystore';
import { PaymentJobs } from '../../src/payment/payment.jobs';
import { craftPayment, postNotification } from '../helpers/craft-notification';
import { Shop } from '../helpers/shop';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The sandbox's names of the calls these jobs make, per API version. */
const CALLS = {
  v3: { prepay: 'v3/pay/transactions/jsapi', query: 'v3/pay/transactions/out-trade-no', close: 'v3/pay/transactions/close' },
  v2: { prepay: 'pay/unifiedorder', query: 'pay/orderquery', close: 'pay/closeorder' },
} as const;

/* Once per API version (issue 14): the same jobs through the payment port, against the sandbox's v3 or v2 front. */
describe.each(['v3', 'v2'] as const)('payment jobs and WeChat failures with WECHATPAY_API_VERSION=%s', (version) => {
  let shop: Shop;
  let jobs: PaymentJobs;
  const calls = CALLS[version];
  const who = (name: string) => `${name}_${version}`;

  beforeAll(async () => {
    shop = await Shop.start({ env: { ORDER_CLOSE_AFTER: '2s', PAYMENT_RECONCILE_AFTER: '0s', PAID_AFTER_CLOSE_ACTION: 'reinstate', WECHATPAY_API_VERSION: version } });
    jobs = shop.t.app.get(PaymentJobs);
  });
  afterAll(() => shop?.close());
  beforeEach(() => jobs.resetBackoff());

  it('closes unpaid orders after ORDER_CLOSE_AFTER, at WeChat when prepaid, and releases their stock', async () => {
    const product = await shop.product('自动关单', 700, 5);
    const user = await shop.login(who('o_autoclose'));
    const withPrepay = await shop.placeOrder(user, [{ productId: product.id, quantity: 2 }]);
    await shop.prepay(user, withPrepay);
    const withoutPrepay = await shop.placeOrder(user, [{ productId: product.id, quantity: 1 }]);
    expect((await shop.admin().get('/admin/products').expect(200)).body.find((p: { id: number }) => p.id === product.id).stock).toBe(2);
    await shop.sandbox.resetCalls();
    const early = await jobs.closeExpired();
    expect(early.closed).toBe(0);
    await sleep(2100);
    const result = await jobs.closeExpired();
    expect(result).toMatchObject({ ran: true, closed: 2, paid: 0 });
    expect(await shop.status(withPrepay)).toBe('CLOSED');
    expect(await shop.status(withoutPrepay)).toBe('CLOSED');
    expect((await shop.sandbox.transaction(withPrepay)).trade_state).toBe('CLOSED');
    expect(await shop.sandbox.calls()).toMatchObject({ [calls.query]: 1, [calls.close]: 1 });
    expect(await shop.sandbox.callsTo(CALLS[version === 'v3' ? 'v2' : 'v3'].close)).toBe(0);
    expect((await shop.admin().get('/admin/products').expect(200)).body.find((p: { id: number }) => p.id === product.id).stock).toBe(5);
    expect((await jobs.closeExpired()).closed).toBe(0);
  });

  it('applies a payment that races the auto-close instead of closing over it', async () => {
    const product = await shop.product('竞态', 300);
    const user = await shop.login(who('o_race_close'));
    const no = await shop.placeOrder(user, [{ productId: product.id, quantity: 1 }]);
    const prepayId = await shop.prepay(user, no);
    await shop.sandbox.dropNotifications(true);
    try {
      await shop.sandbox.pay(prepayId);
      await sleep(2100);
      const result = await jobs.closeExpired();
      expect(result.paid).toBeGreaterThanOrEqual(1);
      expect(await shop.status(no)).toBe('PAID');
      expect((await shop.sandbox.transaction(no)).trade_state).toBe('SUCCESS');
    } finally {
      await shop.sandbox.dropNotifications(false);
    }
  });

  it('reinstates a payment for a closed order when the stock is still there (PAID_AFTER_CLOSE_ACTION=reinstate)', async () => {
    const keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
    const product = await shop.product('关单后支付', 400, 1);
    const user = await shop.login(who('o_after_close'));
    const no = await shop.placeOrder(user, [{ productId: product.id, quantity: 1 }]);
    await shop.http().post(`/orders/${no}/cancel`).set(user.headers).expect(200);
    const res = await postNotification(shop.baseUrl, craftPayment(version, keystore, no, 400));
    expect(res.status).toBe(version === 'v3' ? 204 : 200);
    await shop.waitForStatus(no, 'PAID');
    const timeline = (await shop.admin().get(`/admin/orders/${no}`).expect(200)).body.timeline.map((e: { type: string }) => e.type);
    expect(timeline).toEqual(expect.arrayContaining(['closed', 'notification:paid_after_close', 'reinstated']));
    expect((await shop.admin().get('/admin/products').expect(200)).body.find((p: { id: number }) => p.id === product.id).stock).toBe(0);
  });

  it('retries a prepay that WeChat fails with 500, and surfaces a persistent failure as 503 PREPAY_UNAVAILABLE with WeChat\'s code', async () => {
    const product = await shop.product('重试', 100);
    const user = await shop.login(who('o_prepay_retry'));
    const no = await shop.placeOrder(user, [{ productId: product.id, quantity: 1 }]);
    await shop.sandbox.resetCalls();
    await shop.sandbox.failNext(calls.prepay, '500', 1);
    await shop.http().post(`/orders/${no}/pay`).set(user.headers).expect(200);
    expect(await shop.sandbox.callsTo(calls.prepay)).toBe(2);

    const other = await shop.placeOrder(user, [{ productId: product.id, quantity: 1 }]);
    await shop.sandbox.failNext(calls.prepay, '429', 5);
    const res = await shop.http().post(`/orders/${other}/pay`).set(user.headers).expect(503);
    expect(res.body).toMatchObject({ code: 'PREPAY_UNAVAILABLE', details: { retryable: true, wechatCode: 'FREQUENCY_LIMITED', wechatStatus: 429 } });
    expect((await shop.admin().get(`/admin/orders/${other}`).expect(200)).body).toMatchObject({ status: 'NOTPAY', prepayId: null });
    await shop.sandbox.reset();
  });

  it('answers 409 ORDER_EXPIRED, without calling WeChat, when an order is too close to its time_expire to prepay', async () => {
    const product = await shop.product('将过期', 100);
    const user = await shop.login(who('o_near_expiry'));
    const created = await shop.order(user, [{ productId: product.id, quantity: 1 }]);
    expect(created.status).toBe(201);
    const expiresAt = Date.parse(created.body.expiresAt);
    expect(expiresAt % 1000).toBe(0); // whole seconds, as time_expire carries them
    await sleep(Math.max(0, expiresAt - Date.now() - 300));
    await shop.sandbox.resetCalls();
    const res = await shop.http().post(`/orders/${created.body.outTradeNo}/pay`).set(user.headers).expect(409);
    expect(res.body).toMatchObject({ code: 'ORDER_EXPIRED', message: expect.stringContaining('expired') });
    expect(await shop.sandbox.callsTo(calls.prepay)).toBe(0);
  });

  it('backs off when WeChat answers FREQUENCY_LIMITED, then carries on', async () => {
    const product = await shop.product('限流', 100);
    const user = await shop.login(who('o_backoff'));
    const nos = [];
    for (let i = 0; i < 3; i++) {
      const no = await shop.placeOrder(user, [{ productId: product.id, quantity: 1 }]);
      await shop.prepay(user, no);
      nos.push(no);
    }
    await shop.sandbox.failNext(calls.query, '429', 50);
    const limited = await jobs.reconcile();
    expect(limited.rateLimited).toBe(true);
    expect(jobs.backoff.ms).toBeGreaterThanOrEqual(1000);
    const skipped = await jobs.reconcile();
    expect(skipped.ran).toBe(false);
    await shop.sandbox.reset();
    jobs.resetBackoff();
    const resumed = await jobs.reconcile();
    expect(resumed.ran).toBe(true);
  });
});

describe('bad order input', () => {
  let shop: Shop;
  beforeAll(async () => {
    shop = await Shop.start();
  });
  afterAll(() => shop?.close());

  it.each([
    ['quantity 0', { items: [{ productId: 1, quantity: 0 }] }, 'quantity must be at least 1'],
    ['quantity 10^9', { items: [{ productId: 1, quantity: 1_000_000_000 }] }, 'quantity must be at most 99'],
    ['a fractional quantity', { items: [{ productId: 1, quantity: 1.5 }] }, 'quantity must be an integer'],
    ['no items', {}, 'items is required'],
    ['an empty cart', { items: [] }, 'items must contain at least one item'],
    ['items that are not a list', { items: 'mug' }, 'items must be an array'],
    ['an unknown field', { items: [{ productId: 1, quantity: 1 }], total: 1 }, 'property total should not exist'],
    ['an unknown item field', { items: [{ productId: 1, quantity: 1, price: 1 }] }, 'property price should not exist'],
    ['a string productId', { items: [{ productId: '1', quantity: 1 }] }, 'productId must be an integer'],
    ['an unknown product', { items: [{ productId: 999999, quantity: 1 }] }, 'unknown or unavailable product: 999999'],
  ])('answers 400 for %s and creates no order', async (_name, body, message) => {
    const product = await shop.product('输入测试', 100, 5);
    const user = await shop.login('o_bad_input');
    const patched = JSON.parse(JSON.stringify(body).replace(/"productId":1\b/g, `"productId":${product.id}`));
    const res = await shop.http().post('/orders').set(user.headers).send(patched).expect(400);
    expect(res.body.message).toContain(message);
    expect((await shop.http().get('/orders').set(user.headers).expect(200)).body.total).toBe(0);
    expect((await shop.admin().get('/admin/products').expect(200)).body.find((p: { id: number }) => p.id === product.id).stock).toBe(5);
  });

  it('refuses a malformed Idempotency-Key', async () => {
    const product = await shop.product('键', 100);
    const user = await shop.login('o_bad_key');
    const res = await shop.order(user, [{ productId: product.id, quantity: 1 }], 'x'.repeat(65));
    expect(res.status).toBe(400);
    expect(res.body.message).toContain('Idempotency-Key');
  });

  it('validates admin product input', async () => {
    const res = await shop.admin().post('/admin/products').send({ name: '', price: 9.99 }).expect(400);
    expect(res.body.message).toContain('price must be an integer number of fen');
    await shop.http().post('/admin/products').send({ name: 'x', price: 1 }).expect(401);
    const created = await shop.product('改价', 100, null);
    const patched = await shop.admin().patch(`/admin/products/${created.id}`).send({ price: 150, stock: 3 }).expect(200);
    expect(patched.body).toMatchObject({ id: created.id, price: 150, stock: 3 });
    await shop.admin().patch('/admin/products/999999').send({ price: 1 }).expect(404);
    const ds = shop.t.app.get<DataSource>(getDataSourceToken());
    const audits: Array<{ action: string }> = await ds.query("SELECT action FROM admin_audit WHERE action LIKE 'product.%'");
    expect(audits.map((a) => a.action)).toEqual(expect.arrayContaining(['product.create', 'product.update']));
  });
});
