import { createHash, createHmac, createPublicKey, verify } from 'node:crypto';
import { OnEvent } from '@nestjs/event-emitter';
import { Injectable, Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { dbDate } from '../../src/database/transactions';
import { loadOrCreateSandboxKeystore, sandboxApiV2Key } from '../../src/sandbox/keystore';
import { guestLogin } from '../helpers/login';
import { Shop } from '../helpers/shop';

const paidEvents: string[] = [];
const thrownFor: string[] = [];

@Injectable()
class PaidListener {
  @OnEvent('order.paid')
  onPaid(event: { outTradeNo: string }) {
    paidEvents.push(event.outTradeNo);
  }

  @OnEvent('order.paid')
  thrower(event: { outTradeNo: string }) {
    thrownFor.push(event.outTradeNo);
    throw new Error('a fulfilment hook that throws must not lose the payment');
  }
}

@Module({ providers: [PaidListener] })
class ListenerModule {}

/*
 * Once per API version (issue 14), and for APIv2 once per sign type: the same payment module through
 * the payment port, against the sandbox's APIv3 or APIv2 front. What differs is only what WeChat sees
 * (JSON or XML, the notify_url, its notification) and the invoke parameters' signature.
 */
const CONFIGS = [
  { version: 'v3', signType: 'RSA' },
  { version: 'v2', signType: 'HMAC-SHA256' },
  { version: 'v2', signType: 'MD5' },
] as const;

describe.each(CONFIGS)('checkout with WECHATPAY_API_VERSION=$version ($signType): login → order → pay → WeChat pays → notification → PAID', ({ version, signType }) => {
  let shop: Shop;
  /** Distinct shoppers per configuration (the sandbox's users and the suites' logs stay apart). */
  const who = (name: string) => `${name}_${version}_${signType.replace('-', '')}`;
  /** The sandbox's name of the prepay call. */
  const PREPAY = version === 'v3' ? 'v3/pay/transactions/jsapi' : 'pay/unifiedorder';

  beforeAll(async () => {
    shop = await Shop.start({
      extraModules: [ListenerModule],
      env: { WECHATPAY_API_VERSION: version, ...(version === 'v2' ? { WECHATPAY_V2_SIGN_TYPE: signType } : {}) },
    });
  });
  afterAll(() => shop?.close());

  /** The invoke parameters' paySign as the JS bridge checks it: v3 RSA over appId\ntimeStamp\nnonceStr\npackage\n; v2 over the sorted fields with the API key. */
  async function expectPaySign(params: Record<string, string>): Promise<void> {
    const keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
    if (version === 'v3') {
      const message = `${params.appId}\n${params.timeStamp}\n${params.nonceStr}\n${params.package}\n`;
      expect(verify('sha256', Buffer.from(message), createPublicKey(keystore.merchant.publicKeyPem), Buffer.from(params.paySign, 'base64'))).toBe(true);
      return;
    }
    const key = sandboxApiV2Key(keystore);
    const text = `appId=${params.appId}&nonceStr=${params.nonceStr}&package=${params.package}&signType=${params.signType}&timeStamp=${params.timeStamp}&key=${key}`;
    const expected = (signType === 'MD5' ? createHash('md5').update(text) : createHmac('sha256', key).update(text)).digest('hex').toUpperCase();
    expect(params.paySign).toBe(expected);
  }

  it('takes a shopper from an empty cart to a paid order', async () => {
    const mug = await shop.product('马克杯', 3900, 10);
    const tee = await shop.product('T 恤', 8800);
    const alice = await shop.login(who('o_alice_checkout'));

    const created = await shop.order(alice, [
      { productId: mug.id, quantity: 2 },
      { productId: tee.id, quantity: 1 },
    ]);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      outTradeNo: expect.stringMatching(/^[0-9A-Za-z_\-|*]{6,32}$/),
      status: 'NOTPAY',
      total: 3900 * 2 + 8800,
      currency: 'CNY',
      items: [
        { productId: mug.id, name: '马克杯', unitPrice: 3900, quantity: 2, subtotal: 7800 },
        { productId: tee.id, name: 'T 恤', unitPrice: 8800, quantity: 1, subtotal: 8800 },
      ],
      paidAt: null,
      refundedTotal: 0,
    });
    // ORDER_CLOSE_AFTER (5m), rounded up to a whole second as time_expire carries it
    const lifetime = Date.parse(created.body.expiresAt) - Date.parse(created.body.createdAt);
    expect(Date.parse(created.body.expiresAt) % 1000).toBe(0);
    expect(lifetime).toBeGreaterThanOrEqual(5 * 60_000);
    expect(lifetime).toBeLessThan(5 * 60_000 + 1000);
    const no = created.body.outTradeNo;
    expect((await shop.http().get('/products').expect(200)).body.find((p: { id: number }) => p.id === mug.id).stock).toBe(8);

    const pay = await shop.http().post(`/orders/${no}/pay`).set(alice.headers).expect(200);
    const keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
    expect(Object.keys(pay.body).sort()).toEqual(['appId', 'channel', 'nonceStr', 'outTradeNo', 'package', 'paySign', 'signType', 'timeStamp']);
    expect(pay.body).toMatchObject({ channel: 'jsapi', outTradeNo: no });
    expect(pay.body).toMatchObject({ appId: keystore.appid, signType, package: expect.stringMatching(/^prepay_id=wx/) });
    await expectPaySign(pay.body);

    // the prepay carried our notify_url (the version's route) and the order's expiry
    const atWechat = await shop.sandbox.transaction(no);
    const notifyUrl = `${shop.baseUrl}/notify/wechatpay/${version === 'v3' ? '' : 'v2/'}transaction`;
    expect(atWechat).toMatchObject({ trade_state: 'NOTPAY', notify_url: notifyUrl, amount: { total: 16600 }, time_expire: expect.any(String) });
    expect(Date.parse(String(atWechat.time_expire))).toBe(Date.parse(created.body.expiresAt));

    // a second pay reuses the prepay_id; only the configured API version was called
    const again = await shop.http().post(`/orders/${no}/pay`).set(alice.headers).expect(200);
    expect(again.body.package).toBe(pay.body.package);
    expect(await shop.sandbox.callsTo(PREPAY)).toBe(1);
    expect(await shop.sandbox.callsTo(version === 'v3' ? 'pay/unifiedorder' : 'v3/pay/transactions/jsapi')).toBe(0);

    const prepayId = pay.body.package.replace('prepay_id=', '');
    expect((await shop.sandbox.pay(prepayId)).result).toBe('ok');
    // WeChat's notification in the version's shape, acknowledged (v3 204; v2 200 with return_code SUCCESS)
    const attempts = await shop.sandbox.waitForNotification({ outTradeNo: no });
    expect(attempts.find((a) => a.ok)).toMatchObject({ status: version === 'v3' ? 204 : 200 });
    const order = await shop.http().get(`/orders/${no}`).set(alice.headers).expect(200);
    expect(order.body).toMatchObject({ status: 'PAID', transactionId: expect.stringMatching(/^42/), paidAt: expect.any(String) });

    await new Promise((r) => setTimeout(r, 50));
    expect(paidEvents.filter((x) => x === no)).toHaveLength(1);
    // the hook that throws did run, once — and the payment stands (PAID above, and still now)
    expect(thrownFor.filter((x) => x === no)).toHaveLength(1);
    expect(await shop.status(no)).toBe('PAID');

    // paid orders can be neither paid nor cancelled again
    const payPaid = await shop.http().post(`/orders/${no}/pay`).set(alice.headers).expect(409);
    expect(payPaid.body).toMatchObject({ code: 'ORDER_PAID' });
    const cancelPaid = await shop.http().post(`/orders/${no}/cancel`).set(alice.headers).expect(409);
    expect(cancelPaid.body.code).toBe('ORDER_NOT_CANCELLABLE');

    const timeline = (await shop.admin().get(`/admin/orders/${no}`).expect(200)).body.timeline.map((e: { type: string }) => e.type);
    expect(timeline).toEqual(expect.arrayContaining(['created', 'prepay', 'notification:applied']));

    const events = (await shop.admin().get('/admin/notifications').expect(200)).body;
    expect(events.recent[0]).toMatchObject({ kind: 'transaction', outTradeNo: no, outcome: 'applied', verified: true, eventType: 'TRANSACTION.SUCCESS' });
  });

  it('lists my orders, paginated, and hides other shoppers\' orders (404, not 403)', async () => {
    const product = await shop.product('徽章', 100);
    const bob = await shop.login(who('o_bob_list'));
    const mallory = await shop.login(who('o_mallory_list'));
    const nos = [];
    for (let i = 0; i < 3; i++) nos.push(await shop.placeOrder(bob, [{ productId: product.id, quantity: 1 }]));
    const page1 = await shop.http().get('/orders?page=1&pageSize=2').set(bob.headers).expect(200);
    expect(page1.body).toMatchObject({ page: 1, pageSize: 2, total: 3 });
    expect(page1.body.items.map((o: { outTradeNo: string }) => o.outTradeNo)).toEqual([nos[2], nos[1]]);
    const page2 = await shop.http().get('/orders?page=2&pageSize=2').set(bob.headers).expect(200);
    expect(page2.body.items.map((o: { outTradeNo: string }) => o.outTradeNo)).toEqual([nos[0]]);

    for (const path of [`/orders/${nos[0]}`]) {
      const res = await shop.http().get(path).set(mallory.headers).expect(404);
      expect(res.body.code).toBe('ORDER_NOT_FOUND');
    }
    await shop.http().post(`/orders/${nos[0]}/pay`).set(mallory.headers).expect(404);
    await shop.http().post(`/orders/${nos[0]}/cancel`).set(mallory.headers).expect(404);
    expect((await shop.http().get('/orders').set(mallory.headers).expect(200)).body.total).toBe(0);
    await shop.http().get('/orders').expect(401);
  });

  it('cancels an unpaid order at WeChat and here, releasing its stock', async () => {
    const scarce = await shop.product('限量款', 500, 2);
    const carol = await shop.login(who('o_carol_cancel'));
    const no = await shop.placeOrder(carol, [{ productId: scarce.id, quantity: 2 }]);
    await shop.prepay(carol, no);
    const res = await shop.http().post(`/orders/${no}/cancel`).set(carol.headers).expect(200);
    expect(res.body).toMatchObject({ status: 'CLOSED', closedAt: expect.any(String) });
    expect((await shop.sandbox.transaction(no)).trade_state).toBe('CLOSED');
    // closed through the configured API version (v2 closeorder), never the other
    expect(await shop.sandbox.callsTo(version === 'v3' ? 'v3/pay/transactions/close' : 'pay/closeorder')).toBeGreaterThanOrEqual(1);
    expect(await shop.sandbox.callsTo(version === 'v3' ? 'pay/closeorder' : 'v3/pay/transactions/close')).toBe(0);
    expect((await shop.admin().get('/admin/products').expect(200)).body.find((p: { id: number }) => p.id === scarce.id).stock).toBe(2);
    // idempotent, and a closed order cannot be paid
    await shop.http().post(`/orders/${no}/cancel`).set(carol.headers).expect(200);
    expect((await shop.http().post(`/orders/${no}/pay`).set(carol.headers).expect(409)).body.code).toBe('ORDER_CLOSED');
  });

  it('reuses the order for a repeated Idempotency-Key and refuses the key for another body', async () => {
    const product = await shop.product('幂等测试', 300);
    const dave = await shop.login(who('o_dave_idem'));
    const first = await shop.order(dave, [{ productId: product.id, quantity: 1 }], 'key-123');
    expect(first.status).toBe(201);
    const results = await Promise.all(Array.from({ length: 10 }, () => shop.order(dave, [{ productId: product.id, quantity: 1 }], 'key-123')));
    expect(results.every((r) => r.status === 200 && r.body.outTradeNo === first.body.outTradeNo)).toBe(true);
    expect(results[0].headers['idempotent-replayed']).toBe('true');
    const other = await shop.order(dave, [{ productId: product.id, quantity: 2 }], 'key-123');
    expect(other.status).toBe(409);
    expect(other.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
    // same key, another shopper: another order
    const erin = await shop.login(who('o_erin_idem'));
    const hers = await shop.order(erin, [{ productId: product.id, quantity: 1 }], 'key-123');
    expect(hers.status).toBe(201);
    expect((await shop.http().get('/orders').set(dave.headers).expect(200)).body.total).toBe(1);
  });

  it('two tabs paying one order at the same moment get the same prepay and one payment attempt (the attempt is written with its prepay)', async () => {
    const product = await shop.product('双开测试', 700);
    const fay = await shop.login(who('o_fay_two_tabs'));
    const no = await shop.placeOrder(fay, [{ productId: product.id, quantity: 1 }]);
    const pays = await Promise.all(Array.from({ length: 4 }, () => shop.http().post(`/orders/${no}/pay`).set(fay.headers)));
    expect(pays.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(new Set(pays.map((r) => r.body.package)).size).toBe(1);
    expect(pays.every((r) => r.body.outTradeNo === no)).toBe(true);
    const order = (await shop.admin().get(`/admin/orders/${no}`).expect(200)).body;
    expect(order.payments).toEqual([expect.objectContaining({ outTradeNo: no, channel: 'jsapi', status: 'NOTPAY' })]);
    expect(await shop.sandbox.callsTo(PREPAY)).toBeGreaterThanOrEqual(1);
    expect(order.prepayId).toBe(pays[0].body.package.replace('prepay_id=', ''));
    expect(order.timeline.filter((e: { type: string }) => e.type === 'prepay')).toHaveLength(1);
  });

  it("the timeline's prepay entry is the attempt's row; an order whose prepay entry was stored (before) shows that one, not a second", async () => {
    const product = await shop.product('时间线测试', 800);
    const gus = await shop.login(who('o_gus_timeline'));
    const fresh = await shop.placeOrder(gus, [{ productId: product.id, quantity: 1 }]);
    const paid = (await shop.http().post(`/orders/${fresh}/pay`).set(gus.headers).expect(200)).body;
    const detail = (await shop.admin().get(`/admin/orders/${fresh}`).expect(200)).body;
    expect(detail.timeline.map((e: { type: string }) => e.type)).toEqual(['created', 'prepay']);
    expect(detail.timeline[1]).toEqual({
      type: 'prepay',
      at: expect.any(String),
      detail: { channel: 'jsapi', attempt: fresh, prepayId: paid.package.replace('prepay_id=', ''), reused: false, timeExpire: expect.stringMatching(/\+08:00$/) },
    });
    expect(Date.parse(detail.timeline[1].at)).toBeGreaterThanOrEqual(Date.parse(detail.payments[0].createdAt));

    // As the previous version wrote it: a row of its own in the pay's transaction (and one from before attempts, naming none).
    const db = shop.t.app.get(DataSource);
    const old = await shop.placeOrder(gus, [{ productId: product.id, quantity: 1 }]);
    await shop.http().post(`/orders/${old}/pay`).set(gus.headers).expect(200);
    const storedDetail = { channel: 'jsapi', attempt: old, prepayId: 'wx_stored_before', reused: false, timeExpire: '2026-01-01T00:00:00+08:00' };
    await db.query('INSERT INTO order_events (out_trade_no, type, detail, created_at) VALUES (?, ?, ?, ?)', [old, 'prepay', JSON.stringify(storedDetail), dbDate(db, new Date())]);
    const before = await shop.placeOrder(gus, [{ productId: product.id, quantity: 1 }]);
    await shop.http().post(`/orders/${before}/pay`).set(gus.headers).expect(200);
    await db.query('INSERT INTO order_events (out_trade_no, type, detail, created_at) VALUES (?, ?, ?, ?)', [before, 'prepay', JSON.stringify({ prepayId: 'wx_pre_attempts', reused: false }), dbDate(db, new Date())]);
    const prepays = async (no: string) =>
      ((await shop.admin().get(`/admin/orders/${no}`).expect(200)).body.timeline as Array<{ type: string; detail: unknown }>).filter((e) => e.type === 'prepay').map((e) => e.detail);
    expect(await prepays(old)).toEqual([storedDetail]);
    expect(await prepays(before)).toEqual([{ prepayId: 'wx_pre_attempts', reused: false }]);
  });

  it('a guest pays through h5 (mweb_url / h5_url as h5Url) and native (code_url), paid at the sandbox → PAID', async () => {
    const cup = await shop.product('渠道', 990);
    const guest = await guestLogin(shop.baseUrl);
    const h5 = await shop.placeOrder(guest, [{ productId: cup.id, quantity: 1 }]);
    const h5Pay = await shop.http().post(`/orders/${h5}/pay`).set(guest.headers).send({ channel: 'h5' }).expect(200);
    expect(h5Pay.body).toEqual({ channel: 'h5', outTradeNo: h5, h5Url: expect.stringContaining('/h5pay?prepay_id=') });
    const prepayId = new URL(h5Pay.body.h5Url).searchParams.get('prepay_id')!;
    expect((await shop.sandbox.pay(prepayId, { openid: who('o_h5') })).result).toBe('ok');
    await shop.waitForStatus(h5, 'PAID');
    expect(await shop.sandbox.transaction(h5)).toMatchObject({ trade_type: 'MWEB', trade_state: 'SUCCESS' });

    const native = await shop.placeOrder(guest, [{ productId: cup.id, quantity: 1 }]);
    const nativePay = await shop.http().post(`/orders/${native}/pay`).set(guest.headers).send({ channel: 'native' }).expect(200);
    expect(nativePay.body).toEqual({ channel: 'native', outTradeNo: native, codeUrl: expect.stringMatching(/^weixin:\/\/wxpay\/bizpayurl\?pr=/) });
    expect(await shop.sandbox.transaction(native)).toMatchObject({ trade_state: 'NOTPAY', amount: { total: 990 } });
    expect((await shop.sandbox.pay(new URL(nativePay.body.codeUrl.replace('weixin://', 'http://')).searchParams.get('pr')!)).result).toBe('ok');
    await shop.waitForStatus(native, 'PAID');
    expect(await shop.sandbox.transaction(native)).toMatchObject({ trade_type: 'NATIVE', trade_state: 'SUCCESS' });
  });

  it('races for the last unit: exactly one shopper gets it', async () => {
    const last = await shop.product('最后一件', 999, 1);
    const shoppers = await Promise.all(Array.from({ length: 8 }, (_, i) => shop.login(who(`o_racer_${i}`))));
    const results = await Promise.all(shoppers.map((s) => shop.order(s, [{ productId: last.id, quantity: 1 }])));
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    const losers = results.filter((r) => r.status === 409);
    expect(losers).toHaveLength(7);
    expect(losers[0].body).toMatchObject({ code: 'OUT_OF_STOCK', message: expect.stringContaining('最后一件') });
    expect((await shop.admin().get('/admin/products').expect(200)).body.find((p: { id: number }) => p.id === last.id).stock).toBe(0);
  });
});
