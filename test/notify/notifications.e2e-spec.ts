import { Injectable, Module } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { getDataSourceToken } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { loadOrCreateSandboxKeystore, SandboxKeystore } from '../../src/sandbox/keystore';
import { craftNotification, successResource } from '../helpers/craft-notification';
import { Login } from '../helpers/login';
import { Shop } from '../helpers/shop';

const paid: string[] = [];

@Injectable()
class Counter {
  @OnEvent('order.paid')
  onPaid(event: { outTradeNo: string }) {
    paid.push(event.outTradeNo);
  }
}

@Module({ providers: [Counter] })
class CounterModule {}

describe('payment notifications', () => {
  let shop: Shop;
  let keystore: SandboxKeystore;
  let shopper: Login;
  let productId: number;

  beforeAll(async () => {
    shop = await Shop.start({ extraModules: [CounterModule], env: { PAID_AFTER_CLOSE_ACTION: 'hold', PAYMENT_RECONCILE_AFTER: '0s' } });
    keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
    shopper = await shop.login('o_notify_shopper');
    productId = (await shop.product('通知测试商品', 1000)).id;
  });
  afterAll(() => shop?.close());

  async function unpaidWithPrepay(): Promise<{ no: string; prepayId: string }> {
    const no = await shop.placeOrder(shopper, [{ productId, quantity: 1 }]);
    return { no, prepayId: await shop.prepay(shopper, no) };
  }

  const post = (crafted: { body: Buffer; headers: Record<string, string> }) =>
    fetch(`${shop.baseUrl}/notify/wechatpay/transaction`, { method: 'POST', headers: crafted.headers, body: crafted.body });

  async function eventsFor(no: string) {
    const ds = shop.t.app.get<DataSource>(getDataSourceToken());
    return ds.query('SELECT outcome, verified FROM payment_events WHERE out_trade_no = ? ORDER BY id', [no]) as Promise<Array<{ outcome: string; verified: number }>>;
  }

  it('applies 50 concurrent duplicates of one notification exactly once', async () => {
    await shop.sandbox.dropNotifications(true);
    const { no, prepayId } = await unpaidWithPrepay();
    await shop.sandbox.pay(prepayId);
    await shop.sandbox.dropNotifications(false);
    const attempts = await shop.sandbox.deliver({ outTradeNo: no }, { times: 50 });
    expect(attempts.map((a) => a.status)).toEqual(Array(50).fill(204));
    expect(await shop.status(no)).toBe('PAID');
    const outcomes = (await eventsFor(no)).map((e) => e.outcome);
    expect(outcomes.filter((o) => o === 'applied')).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'duplicate')).toHaveLength(49);
    await new Promise((r) => setTimeout(r, 50));
    expect(paid.filter((x) => x === no)).toHaveLength(1);
    const timeline = (await shop.admin().get(`/admin/orders/${no}`).expect(200)).body.timeline.filter((e: { type: string }) => e.type === 'notification:applied');
    expect(timeline).toHaveLength(1);
  });

  it.each([
    ['a forged signature', 'signature', 'rejected:bad_signature'],
    ['a stale timestamp', 'timestamp', 'rejected:stale_timestamp'],
    ['a tampered ciphertext', 'ciphertext', 'decrypt_failed'],
    ['a signature probe', 'probe', 'rejected:signature_probe'],
  ] as const)('answers 401 to %s and changes nothing', async (_name, tamper, outcome) => {
    await shop.sandbox.dropNotifications(true);
    const { no, prepayId } = await unpaidWithPrepay();
    await shop.sandbox.pay(prepayId);
    await shop.sandbox.dropNotifications(false);
    const [attempt] = await shop.sandbox.deliver({ outTradeNo: no }, { tamper });
    expect(attempt.status).toBe(401);
    expect(await shop.status(no)).toBe('NOTPAY');
    // then the genuine one is applied
    const [genuine] = await shop.sandbox.deliver({ outTradeNo: no });
    expect(genuine.status).toBe(204);
    expect(await shop.status(no)).toBe('PAID');
    const ds = shop.t.app.get<DataSource>(getDataSourceToken());
    const stored: Array<{ outcome: string; verified: number }> = await ds.query('SELECT outcome, verified FROM payment_events WHERE outcome = ? ORDER BY id DESC', [outcome]);
    expect(stored.length).toBeGreaterThan(0);
    if (outcome !== 'decrypt_failed') expect(Number(stored[0].verified)).toBe(0);
  });

  it('answers the error in WeChat\'s shape', async () => {
    const res = await fetch(`${shop.baseUrl}/notify/wechatpay/transaction`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{"id":"x"}',
    });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ code: 'FAIL', message: expect.stringContaining('missing_header') });
  });

  it('flags an amount that does not match as ANOMALY, never PAID, and acknowledges it', async () => {
    const { no, prepayId } = await unpaidWithPrepay();
    await shop.sandbox.alterTransaction(no, { total: 999 });
    await shop.sandbox.pay(prepayId);
    const attempts = await shop.sandbox.waitForNotification({ outTradeNo: no });
    expect(attempts.at(-1)!.status).toBe(204);
    const order = (await shop.admin().get(`/admin/orders/${no}`).expect(200)).body;
    expect(order).toMatchObject({ status: 'ANOMALY', anomalyReason: 'paid 999 fen, order total is 1000', paidTotal: 999 });
    expect(paid).not.toContain(no);
  });

  it('flags a notification for another appid or mchid as ANOMALY', async () => {
    const { no } = await unpaidWithPrepay();
    const res = await post(craftNotification(keystore, successResource(keystore, no, 1000, { appid: 'wx0000000000000000' })));
    expect(res.status).toBe(204);
    expect((await shop.admin().get(`/admin/orders/${no}`).expect(200)).body).toMatchObject({ status: 'ANOMALY', anomalyReason: expect.stringContaining('are not ours') });
  });

  it('acknowledges and records a payment for an order it does not know', async () => {
    const res = await post(craftNotification(keystore, successResource(keystore, 'NO_SUCH_ORDER_1', 100)));
    expect(res.status).toBe(204);
    expect((await eventsFor('NO_SUCH_ORDER_1')).map((e) => e.outcome)).toEqual(['unknown_order']);
  });

  it('records a payment for an order already closed as PAID_AFTER_CLOSE', async () => {
    const no = await shop.placeOrder(shopper, [{ productId, quantity: 1 }]);
    await shop.http().post(`/orders/${no}/cancel`).set(shopper.headers).expect(200);
    const res = await post(craftNotification(keystore, successResource(keystore, no, 1000)));
    expect(res.status).toBe(204);
    expect((await shop.admin().get(`/admin/orders/${no}`).expect(200)).body).toMatchObject({ status: 'PAID_AFTER_CLOSE', transactionId: expect.any(String) });
    // and its duplicates change nothing
    expect((await post(craftNotification(keystore, successResource(keystore, no, 1000)))).status).toBe(204);
  });

  it('finds a payment whose notification was dropped through the reconcile job', async () => {
    await shop.sandbox.dropNotifications(true);
    try {
      const { no, prepayId } = await unpaidWithPrepay();
      await shop.sandbox.pay(prepayId);
      await new Promise((r) => setTimeout(r, 100));
      expect(await shop.status(no)).toBe('NOTPAY');
      const { PaymentJobs } = await import('../../src/payment/payment.jobs');
      const jobs = shop.t.app.get(PaymentJobs);
      const result = await jobs.reconcile();
      expect(result.ran).toBe(true);
      expect(await shop.status(no)).toBe('PAID');
    } finally {
      await shop.sandbox.dropNotifications(false);
    }
  });
});

describe('notifications while the database is down', () => {
  it('answers 500 so that WeChat retries', async () => {
    const shop = await Shop.start();
    try {
      const keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
      await shop.t.app.get<DataSource>(getDataSourceToken()).destroy();
      const crafted = craftNotification(keystore, successResource(keystore, 'ANY_ORDER_123', 100));
      const res = await fetch(`${shop.baseUrl}/notify/wechatpay/transaction`, { method: 'POST', headers: crafted.headers, body: crafted.body });
      expect(res.status).toBe(500);
      expect(await res.json()).toEqual({ code: 'FAIL', message: expect.any(String) });
    } finally {
      await shop.close().catch(() => undefined);
    }
  });
});

describe('notifications through the Nest controller (NOTIFY_FAST_PATH=false)', () => {
  it('verifies, applies once and rejects forgeries the same way', async () => {
    const shop = await Shop.start({ env: { NOTIFY_FAST_PATH: 'false' } });
    try {
      const keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
      const user = await shop.login('o_controller_path');
      const product = await shop.product('控制器路径', 500);
      const no = await shop.placeOrder(user, [{ productId: product.id, quantity: 1 }]);
      const good = craftNotification(keystore, successResource(keystore, no, 500));
      const post = (n: { body: Buffer; headers: Record<string, string> }) =>
        fetch(`${shop.baseUrl}/notify/wechatpay/transaction`, { method: 'POST', headers: n.headers, body: n.body });
      const forged = { ...good, headers: { ...good.headers, 'Wechatpay-Signature': good.headers['Wechatpay-Signature'].replace(/^./, 'A') } };
      expect((await post(forged)).status).toBe(401);
      expect(await shop.status(no)).toBe('NOTPAY');
      const results = await Promise.all(Array.from({ length: 10 }, () => post(good)));
      expect(results.map((r) => r.status)).toEqual(Array(10).fill(204));
      expect(await shop.status(no)).toBe('PAID');
    } finally {
      await shop.close();
    }
  });
});
