import { createPublicKey, verify } from 'node:crypto';
import { OnEvent } from '@nestjs/event-emitter';
import { Injectable, Module } from '@nestjs/common';
import { loadOrCreateSandboxKeystore } from '../../src/sandbox/keystore';
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

describe('checkout: login → order → pay → WeChat pays → notification → PAID', () => {
  let shop: Shop;

  beforeAll(async () => {
    shop = await Shop.start({ extraModules: [ListenerModule] });
  });
  afterAll(() => shop?.close());

  it('takes a shopper from an empty cart to a paid order', async () => {
    const mug = await shop.product('马克杯', 3900, 10);
    const tee = await shop.product('T 恤', 8800);
    const alice = await shop.login('o_alice_checkout');

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
    expect(pay.body).toMatchObject({ appId: keystore.appid, signType: 'RSA', package: expect.stringMatching(/^prepay_id=wx/) });
    const message = `${pay.body.appId}\n${pay.body.timeStamp}\n${pay.body.nonceStr}\n${pay.body.package}\n`;
    expect(verify('sha256', Buffer.from(message), createPublicKey(keystore.merchant.publicKeyPem), Buffer.from(pay.body.paySign, 'base64'))).toBe(true);

    // the prepay carried our notify_url and the order's expiry
    const atWechat = await shop.sandbox.transaction(no);
    expect(atWechat).toMatchObject({ trade_state: 'NOTPAY', notify_url: `${shop.baseUrl}/notify/wechatpay/transaction`, amount: { total: 16600 } });

    // a second pay reuses the prepay_id
    const again = await shop.http().post(`/orders/${no}/pay`).set(alice.headers).expect(200);
    expect(again.body.package).toBe(pay.body.package);
    expect(await shop.sandbox.callsTo('v3/pay/transactions/jsapi')).toBe(1);

    const prepayId = pay.body.package.replace('prepay_id=', '');
    expect((await shop.sandbox.pay(prepayId)).result).toBe('ok');
    await shop.sandbox.waitForNotification({ outTradeNo: no });
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
    const bob = await shop.login('o_bob_list');
    const mallory = await shop.login('o_mallory_list');
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
    const carol = await shop.login('o_carol_cancel');
    const no = await shop.placeOrder(carol, [{ productId: scarce.id, quantity: 2 }]);
    await shop.prepay(carol, no);
    const res = await shop.http().post(`/orders/${no}/cancel`).set(carol.headers).expect(200);
    expect(res.body).toMatchObject({ status: 'CLOSED', closedAt: expect.any(String) });
    expect((await shop.sandbox.transaction(no)).trade_state).toBe('CLOSED');
    expect((await shop.admin().get('/admin/products').expect(200)).body.find((p: { id: number }) => p.id === scarce.id).stock).toBe(2);
    // idempotent, and a closed order cannot be paid
    await shop.http().post(`/orders/${no}/cancel`).set(carol.headers).expect(200);
    expect((await shop.http().post(`/orders/${no}/pay`).set(carol.headers).expect(409)).body.code).toBe('ORDER_CLOSED');
  });

  it('reuses the order for a repeated Idempotency-Key and refuses the key for another body', async () => {
    const product = await shop.product('幂等测试', 300);
    const dave = await shop.login('o_dave_idem');
    const first = await shop.order(dave, [{ productId: product.id, quantity: 1 }], 'key-123');
    expect(first.status).toBe(201);
    const results = await Promise.all(Array.from({ length: 10 }, () => shop.order(dave, [{ productId: product.id, quantity: 1 }], 'key-123')));
    expect(results.every((r) => r.status === 200 && r.body.outTradeNo === first.body.outTradeNo)).toBe(true);
    expect(results[0].headers['idempotent-replayed']).toBe('true');
    const other = await shop.order(dave, [{ productId: product.id, quantity: 2 }], 'key-123');
    expect(other.status).toBe(409);
    expect(other.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
    // same key, another shopper: another order
    const erin = await shop.login('o_erin_idem');
    const hers = await shop.order(erin, [{ productId: product.id, quantity: 1 }], 'key-123');
    expect(hers.status).toBe(201);
    expect((await shop.http().get('/orders').set(dave.headers).expect(200)).body.total).toBe(1);
  });

  it('two tabs paying one order at the same moment get the same prepay and one payment attempt (the attempt is written with its prepay)', async () => {
    const product = await shop.product('双开测试', 700);
    const fay = await shop.login('o_fay_two_tabs');
    const no = await shop.placeOrder(fay, [{ productId: product.id, quantity: 1 }]);
    const pays = await Promise.all(Array.from({ length: 4 }, () => shop.http().post(`/orders/${no}/pay`).set(fay.headers)));
    expect(pays.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(new Set(pays.map((r) => r.body.package)).size).toBe(1);
    expect(pays.every((r) => r.body.outTradeNo === no)).toBe(true);
    const order = (await shop.admin().get(`/admin/orders/${no}`).expect(200)).body;
    expect(order.payments).toEqual([expect.objectContaining({ outTradeNo: no, channel: 'jsapi', status: 'NOTPAY' })]);
    expect(order.prepayId).toBe(pays[0].body.package.replace('prepay_id=', ''));
    expect(order.timeline.filter((e: { type: string }) => e.type === 'prepay')).toHaveLength(1);
  });

  it('races for the last unit: exactly one shopper gets it', async () => {
    const last = await shop.product('最后一件', 999, 1);
    const shoppers = await Promise.all(Array.from({ length: 8 }, (_, i) => shop.login(`o_racer_${i}`)));
    const results = await Promise.all(shoppers.map((s) => shop.order(s, [{ productId: last.id, quantity: 1 }])));
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    const losers = results.filter((r) => r.status === 409);
    expect(losers).toHaveLength(7);
    expect(losers[0].body).toMatchObject({ code: 'OUT_OF_STOCK', message: expect.stringContaining('最后一件') });
    expect((await shop.admin().get('/admin/products').expect(200)).body.find((p: { id: number }) => p.id === last.id).stock).toBe(0);
  });
});
