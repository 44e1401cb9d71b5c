import { Injectable, Module } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { getDataSourceToken } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { loadOrCreateSandboxKeystore, SandboxKeystore } from '../../src/sandbox/keystore';
import { createHash } from 'node:crypto';
import { craftNotification, envelopeJson, signBody, successResource } from '../helpers/craft-notification';
import { Login } from '../helpers/login';
import { Shop } from '../helpers/shop';

const sha256 = (body: Buffer) => createHash('sha256').update(body).digest('hex');

interface StoredEvent {
  outcome: string;
  verified: number;
  raw_body: string;
  raw_encoding: string;
  raw_size: number;
  raw_sha256: string;
}

/** The payment_events rows of exactly these bytes (found by their hash: a rejected one has no order number). */
async function storedAs(shop: Shop, body: Buffer): Promise<StoredEvent[]> {
  const ds = shop.t.app.get<DataSource>(getDataSourceToken());
  const rows: StoredEvent[] = await ds.query(
    'SELECT outcome, verified, raw_body, raw_encoding, raw_size, raw_sha256 FROM payment_events WHERE raw_sha256 = ? ORDER BY id',
    [sha256(body)],
  );
  return rows.map((r) => ({ ...r, verified: Number(r.verified), raw_size: Number(r.raw_size) }));
}

/** The bytes a stored event holds, decoded as its raw_encoding says. */
function storedBytes(row: StoredEvent): Buffer {
  return row.raw_encoding === 'base64' ? Buffer.from(row.raw_body, 'base64') : Buffer.from(row.raw_body, 'utf8');
}

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
    // every one of the 50 is recorded; all but the one applied are duplicates (a failure shows the others)
    expect(outcomes).toHaveLength(50);
    expect(outcomes.filter((o) => o !== 'duplicate')).toEqual(['applied']);
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

  it.each([
    ['another mchid', { mchid: '1900000000' }, 'are not ours'],
    ['another currency', { amount: { total: 1000, payer_total: 1000, currency: 'USD', payer_currency: 'USD' } }, 'currency USD, order is CNY'],
  ])('flags a payment in %s as ANOMALY, for an open order and for a closed one (never PAID, never PAID_AFTER_CLOSE)', async (_name, overrides, reason) => {
    const { no: open } = await unpaidWithPrepay();
    expect((await post(craftNotification(keystore, successResource(keystore, open, 1000, overrides)))).status).toBe(204);
    expect((await shop.admin().get(`/admin/orders/${open}`).expect(200)).body).toMatchObject({ status: 'ANOMALY', anomalyReason: expect.stringContaining(reason) });

    const closed = await shop.placeOrder(shopper, [{ productId, quantity: 1 }]);
    await shop.http().post(`/orders/${closed}/cancel`).set(shopper.headers).expect(200);
    expect((await post(craftNotification(keystore, successResource(keystore, closed, 1000, overrides)))).status).toBe(204);
    expect((await shop.admin().get(`/admin/orders/${closed}`).expect(200)).body).toMatchObject({ status: 'ANOMALY', anomalyReason: expect.stringContaining(reason) });
    expect((await eventsFor(closed)).map((e) => e.outcome)).toEqual(['anomaly']);
    await new Promise((r) => setTimeout(r, 50));
    expect(paid).not.toContain(open);
    expect(paid).not.toContain(closed);
  });

  it('stores the raw notification exactly as received: text when UTF-8, base64 when not, nothing cut at 60,000 characters', async () => {
    // valid UTF-8, 63 KB (under the 64 KiB limit), applied
    const { no: big } = await unpaidWithPrepay();
    const bigBody = Buffer.from(envelopeJson(keystore, successResource(keystore, big, 1000), { padding: '填'.repeat(20_000) }));
    expect(bigBody.length).toBeGreaterThan(60_000);
    expect((await post(signBody(keystore, bigBody))).status).toBe(204);
    expect(await shop.status(big)).toBe('PAID');
    const [bigRow] = await storedAs(shop, bigBody);
    expect(bigRow).toMatchObject({ outcome: 'applied', verified: 1, raw_encoding: 'utf8', raw_size: bigBody.length });
    expect(storedBytes(bigRow).equals(bigBody)).toBe(true);

    // bytes that are not UTF-8 (inside a string, so the JSON still parses): kept as base64
    const { no: odd } = await unpaidWithPrepay();
    const [head, tail] = envelopeJson(keystore, successResource(keystore, odd, 1000), { summary: 'SPLIT_HERE' }).split('SPLIT_HERE');
    const oddBody = Buffer.concat([Buffer.from(head), Buffer.from([0xe6, 0x94, 0xff, 0xfe, 0xc0]), Buffer.from(tail)]);
    expect((await post(signBody(keystore, oddBody))).status).toBe(204);
    expect(await shop.status(odd)).toBe('PAID');
    const [oddRow] = await storedAs(shop, oddBody);
    expect(oddRow).toMatchObject({ outcome: 'applied', raw_encoding: 'base64', raw_size: oddBody.length, raw_sha256: sha256(oddBody) });
    expect(storedBytes(oddRow).equals(oddBody)).toBe(true);
  });

  it('has stored a rejected notification, untrusted, by the time it answers 401 — only its size, SHA-256 and signature headers, not the attacker\'s bytes', async () => {
    const { no } = await unpaidWithPrepay();
    const good = craftNotification(keystore, successResource(keystore, no, 1000));
    const forged = { ...good, headers: { ...good.headers, 'Wechatpay-Signature': good.headers['Wechatpay-Signature'].replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) } };
    expect((await post(forged)).status).toBe(401);
    // no waiting: the row was written before the answer
    const [row] = await storedAs(shop, good.body);
    expect(row).toMatchObject({ outcome: 'rejected:bad_signature', verified: 0, raw_encoding: 'headers' });
    expect(Number(row.raw_size)).toBe(good.body.length);
    expect(JSON.parse(String(row.raw_body))).toMatchObject({ 'wechatpay-signature': forged.headers['Wechatpay-Signature'], 'wechatpay-serial': good.headers['Wechatpay-Serial'] });
    expect(await shop.status(no)).toBe('NOTPAY');
  });

  it('answers 413 to a body over 64 KiB, readably, and goes on serving', async () => {
    const res = await fetch(`${shop.baseUrl}/notify/wechatpay/transaction`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: Buffer.alloc(200 * 1024, 0x20),
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({ code: 'FAIL', message: expect.stringContaining('larger than') });
    const { no } = await unpaidWithPrepay();
    expect((await post(craftNotification(keystore, successResource(keystore, no, 1000)))).status).toBe(204);
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
  let shop: Shop;
  let keystore: SandboxKeystore;
  let user: Login;
  let productId: number;

  beforeAll(async () => {
    shop = await Shop.start({ env: { NOTIFY_FAST_PATH: 'false' } });
    keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
    user = await shop.login('o_controller_path');
    productId = (await shop.product('控制器路径', 500)).id;
  });
  afterAll(() => shop?.close());

  const post = (n: { body: Buffer | string; headers: Record<string, string> }, path = 'transaction') =>
    fetch(`${shop.baseUrl}/notify/wechatpay/${path}`, { method: 'POST', headers: n.headers, body: n.body });
  const order = () => shop.placeOrder(user, [{ productId, quantity: 1 }]);

  it('verifies, applies once and rejects forgeries the same way', async () => {
    const no = await order();
    const good = craftNotification(keystore, successResource(keystore, no, 500));
    const forged = { ...good, headers: { ...good.headers, 'Wechatpay-Signature': good.headers['Wechatpay-Signature'].replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) } };
    expect((await post(forged)).status).toBe(401);
    expect(await shop.status(no)).toBe('NOTPAY');
    const results = await Promise.all(Array.from({ length: 10 }, () => post(good)));
    expect(results.map((r) => r.status)).toEqual(Array(10).fill(204));
    expect(await shop.status(no)).toBe('PAID');
  });

  it('answers 401 to a stale timestamp and changes nothing', async () => {
    const no = await order();
    const stale = signBody(keystore, Buffer.from(envelopeJson(keystore, successResource(keystore, no, 500))), { timestamp: Math.floor(Date.now() / 1000) - 400 });
    const res = await post(stale);
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ code: 'FAIL', message: expect.stringContaining('stale_timestamp') });
    expect(await storedAs(shop, stale.body)).toEqual([expect.objectContaining({ outcome: 'rejected:stale_timestamp', verified: 0 })]);
    expect(await shop.status(no)).toBe('NOTPAY');
  });

  it('answers 401 to a tampered ciphertext (validly signed) and changes nothing', async () => {
    const no = await order();
    const envelope = JSON.parse(envelopeJson(keystore, successResource(keystore, no, 500)));
    const bytes = Buffer.from(envelope.resource.ciphertext, 'base64');
    bytes[3] ^= 0x01;
    envelope.resource.ciphertext = bytes.toString('base64');
    const tampered = signBody(keystore, Buffer.from(JSON.stringify(envelope)));
    const res = await post(tampered);
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ code: 'FAIL', message: expect.any(String) });
    expect(await storedAs(shop, tampered.body)).toEqual([expect.objectContaining({ outcome: 'decrypt_failed' })]);
    expect(await shop.status(no)).toBe('NOTPAY');
  });

  it('checks the signature before parsing: invalid JSON is 401 unsigned, 400 (WeChat\'s shape) when validly signed', async () => {
    for (const path of ['transaction', 'refund']) {
      const unsigned = await post({ body: '{"id": not json', headers: { 'Content-Type': 'application/json', 'Wechatpay-Timestamp': '1', 'Wechatpay-Nonce': 'x', 'Wechatpay-Signature': 'x', 'Wechatpay-Serial': keystore.publicKey.id } }, path);
      expect(unsigned.status).toBe(401);
      expect(await unsigned.json()).toEqual({ code: 'FAIL', message: expect.stringContaining('签名验证失败') });
    }
    const signed = signBody(keystore, Buffer.from('{"id": "signed", but not json'));
    const res = await post(signed);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ code: 'FAIL', message: expect.any(String) });
    expect(await storedAs(shop, signed.body)).toEqual([expect.objectContaining({ outcome: 'malformed', verified: 1 })]);
  });

  it.each(['text/plain', 'application/octet-stream', 'application/x-www-form-urlencoded'])(
    'reads the raw bytes whatever the Content-Type (%s)',
    async (contentType) => {
      const no = await order();
      const n = signBody(keystore, Buffer.from(envelopeJson(keystore, successResource(keystore, no, 500))), { contentType });
      expect((await post(n)).status).toBe(204);
      expect(await shop.status(no)).toBe('PAID');
      const [row] = await storedAs(shop, n.body);
      expect(storedBytes(row).equals(n.body)).toBe(true);
    },
  );

  it('answers 413 to a body over 64 KiB', async () => {
    const res = await post({ body: 'x'.repeat(100 * 1024), headers: { 'Content-Type': 'text/plain' } });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ code: 'FAIL' });
  });
});

describe('notifications through the Nest controller while the database is down', () => {
  it('answers 500 so that WeChat retries', async () => {
    const shop = await Shop.start({ env: { NOTIFY_FAST_PATH: 'false' } });
    try {
      const keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
      await shop.t.app.get<DataSource>(getDataSourceToken()).destroy();
      const crafted = craftNotification(keystore, successResource(keystore, 'ANY_ORDER_456', 100));
      const res = await fetch(`${shop.baseUrl}/notify/wechatpay/transaction`, { method: 'POST', headers: crafted.headers, body: crafted.body });
      expect(res.status).toBe(500);
      expect(await res.json()).toEqual({ code: 'FAIL', message: expect.any(String) });
      // a forgery is still refused as such
      const forged = { ...crafted, headers: { ...crafted.headers, 'Wechatpay-Signature': crafted.headers['Wechatpay-Signature'].replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) } };
      expect((await fetch(`${shop.baseUrl}/notify/wechatpay/transaction`, { method: 'POST', headers: forged.headers, body: forged.body })).status).toBe(401);
    } finally {
      await shop.close().catch(() => undefined);
    }
  });
});
