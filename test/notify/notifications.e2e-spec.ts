import { Injectable, Module } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { getDataSourceToken } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { loadOrCreateSandboxKeystore, SandboxKeystore } from '../../src/sandbox/keystore';
import { createHash } from 'node:crypto';
import {
  ApiVersion,
  acknowledged,
  craftNotification,
  craftPayment,
  craftV2Notification,
  craftV2RefundNotification,
  envelopeJson,
  postNotification,
  signBody,
  successResource,
  v2PaymentFields,
} from '../helpers/craft-notification';
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

/*
 * Once per API version (issue 14): the same notify and payment modules, fed by WeChat's v3 JSON on
 * /notify/wechatpay/transaction or its v2 XML on /notify/wechatpay/v2/transaction. What only one
 * version has (v3's Wechatpay-* headers, timestamp, AEAD resource; v2's sign in the body, XML) is
 * tested for that version, with the other's counterpart beside it.
 */
describe.each(['v3', 'v2'] as const)('payment notifications with WECHATPAY_API_VERSION=%s', (version: ApiVersion) => {
  let shop: Shop;
  let keystore: SandboxKeystore;
  let shopper: Login;
  let productId: number;
  /** The HTTP status of an acknowledgement: v3 204 (no body), v2 200 with return_code SUCCESS. */
  const ACK = version === 'v3' ? 204 : 200;
  const notifyPath = version === 'v3' ? '/notify/wechatpay/transaction' : '/notify/wechatpay/v2/transaction';

  beforeAll(async () => {
    shop = await Shop.start({
      extraModules: [CounterModule],
      env: { PAID_AFTER_CLOSE_ACTION: 'hold', PAYMENT_RECONCILE_AFTER: '0s', WECHATPAY_API_VERSION: version, NOTIFY_REJECT_RATE_LIMIT: '1000' },
    });
    keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
    shopper = await shop.login(`o_notify_shopper_${version}`);
    productId = (await shop.product(`通知测试商品 ${version}`, 1000)).id;
  });
  afterAll(() => shop?.close());

  async function unpaidWithPrepay(): Promise<{ no: string; prepayId: string }> {
    const no = await shop.placeOrder(shopper, [{ productId, quantity: 1 }]);
    return { no, prepayId: await shop.prepay(shopper, no) };
  }

  /** POSTs bytes to this version's payment notify route. */
  const postRaw = (body: Buffer | string, headers: Record<string, string> = { 'Content-Type': version === 'v3' ? 'application/json' : 'text/xml' }) =>
    fetch(`${shop.baseUrl}${notifyPath}`, { method: 'POST', headers, body });

  /** A genuine payment notification for the order (this version's shape) → its answer. */
  const notifyPaid = (no: string, total = 1000, overrides: Parameters<typeof craftPayment>[4] = {}) => postNotification(shop.baseUrl, craftPayment(version, keystore, no, total, overrides));

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
    expect(attempts.map((a) => a.status)).toEqual(Array(50).fill(ACK));
    expect(attempts.every((a) => a.ok)).toBe(true);
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

  // v3: the Wechatpay-Signature, its timestamp, the AEAD resource and the signature probe; v2 has only the sign inside the XML.
  const tampers =
    version === 'v3'
      ? ([
          ['a forged signature', 'signature', 'rejected:bad_signature'],
          ['a stale timestamp', 'timestamp', 'rejected:stale_timestamp'],
          ['a tampered ciphertext', 'ciphertext', 'decrypt_failed'],
          ['a signature probe', 'probe', 'rejected:signature_probe'],
        ] as const)
      : ([['a forged sign', 'signature', 'rejected:v2_bad_signature']] as const);
  it.each(tampers)('answers 401 to %s from the sandbox and changes nothing; the genuine one is applied', async (_name, tamper, outcome) => {
    await shop.sandbox.dropNotifications(true);
    const { no, prepayId } = await unpaidWithPrepay();
    await shop.sandbox.pay(prepayId);
    await shop.sandbox.dropNotifications(false);
    const [attempt] = await shop.sandbox.deliver({ outTradeNo: no }, { tamper });
    expect(attempt).toMatchObject({ status: 401, ok: false });
    expect(await shop.status(no)).toBe('NOTPAY');
    // then the genuine one is applied
    const [genuine] = await shop.sandbox.deliver({ outTradeNo: no });
    expect(genuine).toMatchObject({ status: ACK, ok: true });
    expect(await shop.status(no)).toBe('PAID');
    const ds = shop.t.app.get<DataSource>(getDataSourceToken());
    const stored: Array<{ outcome: string; verified: number }> = await ds.query('SELECT outcome, verified FROM payment_events WHERE outcome = ? ORDER BY id DESC', [outcome]);
    expect(stored.length).toBeGreaterThan(0);
    if (outcome !== 'decrypt_failed') expect(Number(stored[0].verified)).toBe(0);
  });

  it("answers the error in WeChat's shape", async () => {
    if (version === 'v3') {
      const res = await postRaw('{"id":"x"}');
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ code: 'FAIL', message: expect.stringContaining('missing_header') });
    } else {
      const res = await postRaw('<xml><return_code><![CDATA[SUCCESS]]></return_code></xml>');
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toMatch(/^text\/xml/);
      expect(await res.text()).toMatch(/^<xml><return_code><!\[CDATA\[FAIL\]\]><\/return_code><return_msg><!\[CDATA\[.+\]\]><\/return_msg><\/xml>$/);
    }
  });

  it('flags an amount that does not match as ANOMALY, never PAID, and acknowledges it', async () => {
    const { no, prepayId } = await unpaidWithPrepay();
    await shop.sandbox.alterTransaction(no, { total: 999 });
    await shop.sandbox.pay(prepayId);
    const attempts = await shop.sandbox.waitForNotification({ outTradeNo: no });
    expect(attempts.at(-1)).toMatchObject({ status: ACK, ok: true });
    const order = (await shop.admin().get(`/admin/orders/${no}`).expect(200)).body;
    expect(order).toMatchObject({ status: 'ANOMALY', anomalyReason: 'paid 999 fen, order total is 1000', paidTotal: 999 });
    expect(paid).not.toContain(no);
  });

  it('flags a notification for another appid or mchid as ANOMALY', async () => {
    const { no } = await unpaidWithPrepay();
    const res = await notifyPaid(no, 1000, { appid: 'wx0000000000000000' });
    expect(await acknowledged(version, res)).toBe(true);
    expect((await shop.admin().get(`/admin/orders/${no}`).expect(200)).body).toMatchObject({ status: 'ANOMALY', anomalyReason: expect.stringContaining('are not ours') });
  });

  it.each([
    ['another mchid', { mchid: '1900000000' }, 'are not ours'],
    ['another currency', { currency: 'USD' }, 'currency USD, order is CNY'],
  ])('flags a payment in %s as ANOMALY, for an open order and for a closed one (never PAID, never PAID_AFTER_CLOSE)', async (_name, overrides, reason) => {
    const { no: open } = await unpaidWithPrepay();
    expect(await acknowledged(version, await notifyPaid(open, 1000, overrides))).toBe(true);
    expect((await shop.admin().get(`/admin/orders/${open}`).expect(200)).body).toMatchObject({ status: 'ANOMALY', anomalyReason: expect.stringContaining(reason) });

    const closed = await shop.placeOrder(shopper, [{ productId, quantity: 1 }]);
    await shop.http().post(`/orders/${closed}/cancel`).set(shopper.headers).expect(200);
    expect(await acknowledged(version, await notifyPaid(closed, 1000, overrides))).toBe(true);
    expect((await shop.admin().get(`/admin/orders/${closed}`).expect(200)).body).toMatchObject({ status: 'ANOMALY', anomalyReason: expect.stringContaining(reason) });
    expect((await eventsFor(closed)).map((e) => e.outcome)).toEqual(['anomaly']);
    await new Promise((r) => setTimeout(r, 50));
    expect(paid).not.toContain(open);
    expect(paid).not.toContain(closed);
  });

  if (version === 'v3') {
    it('stores the raw notification exactly as received: text when UTF-8, base64 when not, nothing cut at 60,000 characters', async () => {
      // valid UTF-8, 63 KB (under the 64 KiB limit), applied
      const { no: big } = await unpaidWithPrepay();
      const bigBody = Buffer.from(envelopeJson(keystore, successResource(keystore, big, 1000), { padding: '填'.repeat(20_000) }));
      expect(bigBody.length).toBeGreaterThan(60_000);
      expect((await postRaw(bigBody, signBody(keystore, bigBody).headers)).status).toBe(204);
      expect(await shop.status(big)).toBe('PAID');
      const [bigRow] = await storedAs(shop, bigBody);
      expect(bigRow).toMatchObject({ outcome: 'applied', verified: 1, raw_encoding: 'utf8', raw_size: bigBody.length });
      expect(storedBytes(bigRow).equals(bigBody)).toBe(true);

      // bytes that are not UTF-8 (inside a string, so the JSON still parses): kept as base64
      const { no: odd } = await unpaidWithPrepay();
      const [head, tail] = envelopeJson(keystore, successResource(keystore, odd, 1000), { summary: 'SPLIT_HERE' }).split('SPLIT_HERE');
      const oddBody = Buffer.concat([Buffer.from(head), Buffer.from([0xe6, 0x94, 0xff, 0xfe, 0xc0]), Buffer.from(tail)]);
      expect((await postRaw(oddBody, signBody(keystore, oddBody).headers)).status).toBe(204);
      expect(await shop.status(odd)).toBe('PAID');
      const [oddRow] = await storedAs(shop, oddBody);
      expect(oddRow).toMatchObject({ outcome: 'applied', raw_encoding: 'base64', raw_size: oddBody.length, raw_sha256: sha256(oddBody) });
      expect(storedBytes(oddRow).equals(oddBody)).toBe(true);
    });

    it("has stored a rejected notification, untrusted, by the time it answers 401 — only its size, SHA-256 and signature headers, not the attacker's bytes", async () => {
      const { no } = await unpaidWithPrepay();
      const good = craftNotification(keystore, successResource(keystore, no, 1000));
      const forged = { ...good, headers: { ...good.headers, 'Wechatpay-Signature': good.headers['Wechatpay-Signature'].replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) } };
      expect((await postRaw(forged.body, forged.headers)).status).toBe(401);
      // no waiting: the row was written before the answer
      const [row] = await storedAs(shop, good.body);
      expect(row).toMatchObject({ outcome: 'rejected:bad_signature', verified: 0, raw_encoding: 'headers' });
      expect(Number(row.raw_size)).toBe(good.body.length);
      expect(JSON.parse(String(row.raw_body))).toMatchObject({ 'wechatpay-signature': forged.headers['Wechatpay-Signature'], 'wechatpay-serial': good.headers['Wechatpay-Serial'] });
      expect(await shop.status(no)).toBe('NOTPAY');
    });
  } else {
    it('stores the raw v2 notification exactly as received (XML, nothing cut at 60,000 characters), under the sign of every field, MD5 or HMAC-SHA256', async () => {
      for (const signType of ['HMAC-SHA256', 'MD5'] as const) {
        const { no } = await unpaidWithPrepay();
        // an unknown field (WeChat adds fields over time) takes part in the sign like any other
        const crafted = craftV2Notification(keystore, v2PaymentFields(keystore, no, 1000, { padding: '填'.repeat(20_000) }), { signType });
        expect(crafted.body.length).toBeGreaterThan(60_000);
        const res = await postRaw(crafted.body, crafted.headers);
        expect(await acknowledged(version, res)).toBe(true);
        expect(await shop.status(no)).toBe('PAID');
        const [row] = await storedAs(shop, crafted.body);
        expect(row).toMatchObject({ outcome: 'applied', verified: 1, raw_encoding: 'utf8', raw_size: crafted.body.length });
        expect(storedBytes(row).equals(crafted.body)).toBe(true);
      }
    });

    it('has stored a rejected v2 notification, untrusted, by the time it answers FAIL — its size and SHA-256, not the sender\'s bytes', async () => {
      const { no } = await unpaidWithPrepay();
      const forged = craftV2Notification(keystore, v2PaymentFields(keystore, no, 1000), { key: 'f'.repeat(32) });
      expect((await postRaw(forged.body, forged.headers)).status).toBe(401);
      const [row] = await storedAs(shop, forged.body);
      expect(row).toMatchObject({ outcome: 'rejected:v2_bad_signature', verified: 0, raw_encoding: 'headers', raw_size: forged.body.length });
      expect(row.raw_body).not.toContain(no);
      expect(await shop.status(no)).toBe('NOTPAY');
    });

    it('refuses bad v2 input on both routes — unsigned, wrongly signed, XXE, billion laughs, 1 MB — with FAIL, applies nothing, and serves the next request', async () => {
      const { no } = await unpaidWithPrepay();
      const fields = v2PaymentFields(keystore, no, 1000);
      const xxe = `<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><return_code>SUCCESS</return_code><out_trade_no>&x;</out_trade_no></xml>`;
      const laughs =
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">' +
        Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i || ''};`.repeat(10)}">`).join('') +
        `]><xml><return_code>SUCCESS</return_code><out_trade_no>${no}</out_trade_no><attach>&lol9;</attach></xml>`;
      const refusals: Array<[string, Buffer | string, number]> = [
        ['unsigned', craftV2Notification(keystore, fields, { unsigned: true }).body, 401],
        ['signed with another key', craftV2Notification(keystore, fields, { key: 'f'.repeat(32) }).body, 401],
        ['MD5-signed with another key', craftV2Notification(keystore, fields, { key: 'f'.repeat(32), signType: 'MD5' }).body, 401],
        ['sign_type not MD5 or HMAC-SHA256', craftV2Notification(keystore, { ...fields, sign_type: 'SHA1' }, { signType: 'MD5' }).body, 401],
        ['XXE', xxe, 400],
        ['billion laughs', laughs, 400],
        ['not XML', '{"return_code":"SUCCESS"}', 400],
        ['empty', '', 400],
      ];
      for (const path of ['/notify/wechatpay/v2/transaction', '/notify/wechatpay/v2/refund']) {
        for (const [name, body, status] of refusals) {
          const res = await fetch(`${shop.baseUrl}${path}`, { method: 'POST', headers: { 'Content-Type': 'text/xml' }, body });
          const text = await res.text();
          // the refund route has no sign to check: a refusal there is a missing req_info (400)
          expect({ name, path, status: res.status }).toEqual({ name, path, status: path.endsWith('refund') ? 400 : status });
          expect({ name, text }).toEqual({ name, text: expect.stringContaining('<return_code><![CDATA[FAIL]]></return_code>') });
          expect(text).not.toContain('root:');
        }
        // a 1 MB body is refused before it is read whole, and the connection is not left hanging
        const big = await fetch(`${shop.baseUrl}${path}`, { method: 'POST', headers: { 'Content-Type': 'text/xml' }, body: `<xml>${'x'.repeat(1024 * 1024)}</xml>` });
        expect(big.status).toBe(413);
        expect(big.headers.get('content-type')).toMatch(/^text\/xml/);
        expect(await big.text()).toContain('<return_code><![CDATA[FAIL]]></return_code>');
      }
      expect(await shop.status(no)).toBe('NOTPAY');
      expect((await eventsFor(no)).filter((e) => Number(e.verified) === 1)).toEqual([]);
      expect((await shop.admin().get('/admin/refunds').query({ outTradeNo: no }).expect(200)).body).toEqual([]);
      // the process is unharmed: the genuine notification is applied next
      expect(await acknowledged(version, await notifyPaid(no))).toBe(true);
      expect(await shop.status(no)).toBe('PAID');
    });

    it('takes v2 refund notifications on the notification fast path like v2 payments: raw bytes stored whatever the Content-Type, SUCCESS XML, duplicates harmless', async () => {
      const no = await shop.paidOrder(shopper, [{ productId, quantity: 1 }]);
      const r = await shop.admin().post('/admin/refunds').send({ outTradeNo: no, amount: 300, reason: '快速通道' }).expect(201);
      await shop.sandbox.waitForNotification({ outRefundNo: r.body.outRefundNo });
      const settled = (await shop.admin().get(`/admin/refunds/${r.body.outRefundNo}`).expect(200)).body;
      expect(settled.status).toBe('SUCCESS');
      // WeChat's redelivery of that result, declared as JSON (a body Express's JSON parser would refuse)
      const result = { out_refund_no: r.body.outRefundNo, out_trade_no: no, refund_id: settled.refundId ?? '50000000000000000000000000010', refund_status: 'SUCCESS', total_fee: 1000, refund_fee: 300, settlement_refund_fee: 300, success_time: '2026-11-24 10:00:00' };
      const again = craftV2RefundNotification(keystore, result);
      const answers = await Promise.all(
        Array.from({ length: 3 }, () => fetch(`${shop.baseUrl}/notify/wechatpay/v2/refund`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: again.body })),
      );
      for (const res of answers) {
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toMatch(/^text\/xml/);
        expect(await res.text()).toBe('<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>');
      }
      const rows = await storedAs(shop, again.body);
      expect(rows).toHaveLength(3);
      for (const row of rows) {
        expect(row).toMatchObject({ verified: 1, outcome: expect.stringMatching(/^refund:/) });
        expect(storedBytes(row).equals(again.body)).toBe(true);
      }
      expect((await shop.admin().get(`/admin/refunds/${r.body.outRefundNo}`).expect(200)).body).toEqual(settled);
      expect((await shop.admin().get(`/admin/orders/${no}`).expect(200)).body.refundedTotal).toBe(300);
      // answered before Express, as the payment route is: the same headers (none of Express's middleware)
      const payment = await notifyPaid(no);
      const names = (res: Response) => [...res.headers.keys()].filter((h) => h !== 'date').sort();
      expect(names(answers[0])).toEqual(names(payment));
      expect(answers[0].headers.get('x-request-id')).toBeNull();
    });

    it('a v2 refund notification with tampered, foreign or unencrypted req_info is refused with FAIL and changes no refund', async () => {
      const no = await shop.paidOrder(shopper, [{ productId, quantity: 1 }]);
      const r = await shop.admin().post('/admin/refunds').send({ outTradeNo: no, amount: 100, reason: '篡改' }).expect(201);
      await shop.sandbox.waitForNotification({ outRefundNo: r.body.outRefundNo });
      const before = (await shop.admin().get(`/admin/refunds/${r.body.outRefundNo}`).expect(200)).body;
      const result = { out_refund_no: r.body.outRefundNo, out_trade_no: no, refund_id: '50000000000000000000000000009', refund_status: 'REFUNDCLOSE', total_fee: 1000, refund_fee: 100, settlement_refund_fee: 100, success_time: '2026-11-24 10:00:00' };
      const genuine = craftV2RefundNotification(keystore, result);
      const tampered = genuine.body.toString().replace(/<req_info><!\[CDATA\[(.)/, (_m, c: string) => `<req_info><![CDATA[${c === 'A' ? 'B' : 'A'}`);
      const bodies = [
        craftV2RefundNotification(keystore, result, { key: 'f'.repeat(32) }).body.toString(),
        tampered,
        genuine.body.toString().replace(/<req_info>.*<\/req_info>/, `<req_info><![CDATA[${Buffer.from('<root><out_refund_no>x</out_refund_no></root>').toString('base64')}]]></req_info>`),
      ];
      for (const body of bodies) {
        const res = await fetch(`${shop.baseUrl}/notify/wechatpay/v2/refund`, { method: 'POST', headers: { 'Content-Type': 'text/xml' }, body });
        expect(res.status).toBeGreaterThanOrEqual(400);
        expect(await res.text()).toContain('<return_code><![CDATA[FAIL]]></return_code>');
      }
      const after = (await shop.admin().get(`/admin/refunds/${r.body.outRefundNo}`).expect(200)).body;
      expect(after).toEqual(before);
      expect((await shop.admin().get(`/admin/orders/${no}`).expect(200)).body.refundedTotal).toBe(100);
    });
  }

  it('answers 413 to a body over 64 KiB, readably, and goes on serving', async () => {
    const res = await postRaw(Buffer.alloc(200 * 1024, 0x20));
    expect(res.status).toBe(413);
    // in the shape the sender reads: v3 JSON, v2 XML
    if (version === 'v3') expect(await res.json()).toEqual({ code: 'FAIL', message: expect.stringContaining('larger than') });
    else expect(await res.text()).toMatch(/^<xml><return_code><!\[CDATA\[FAIL\]\]><\/return_code><return_msg><!\[CDATA\[body larger than \d+ bytes\]\]><\/return_msg><\/xml>$/);
    const { no } = await unpaidWithPrepay();
    expect(await acknowledged(version, await notifyPaid(no))).toBe(true);
  });

  it('acknowledges and records a payment for an order it does not know', async () => {
    const unknown = `NO_SUCH_ORDER_${version}`;
    expect(await acknowledged(version, await notifyPaid(unknown, 100))).toBe(true);
    expect((await eventsFor(unknown)).map((e) => e.outcome)).toEqual(['unknown_order']);
  });

  it('records a payment for an order already closed as PAID_AFTER_CLOSE', async () => {
    const no = await shop.placeOrder(shopper, [{ productId, quantity: 1 }]);
    await shop.http().post(`/orders/${no}/cancel`).set(shopper.headers).expect(200);
    expect(await acknowledged(version, await notifyPaid(no))).toBe(true);
    expect((await shop.admin().get(`/admin/orders/${no}`).expect(200)).body).toMatchObject({ status: 'PAID_AFTER_CLOSE', transactionId: expect.any(String) });
    // and its duplicates change nothing
    expect(await acknowledged(version, await notifyPaid(no))).toBe(true);
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

describe.each(['v3', 'v2'] as const)('notifications while the database is down (WECHATPAY_API_VERSION=%s)', (version) => {
  it('answers 500 (FAIL) so that WeChat retries', async () => {
    const shop = await Shop.start({ env: { WECHATPAY_API_VERSION: version } });
    try {
      const keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
      await shop.t.app.get<DataSource>(getDataSourceToken()).destroy();
      const res = await postNotification(shop.baseUrl, craftPayment(version, keystore, `ANY_ORDER_${version}`, 100));
      expect(res.status).toBe(500);
      if (version === 'v3') expect(await res.json()).toEqual({ code: 'FAIL', message: expect.any(String) });
      else expect(await res.text()).toContain('<return_code><![CDATA[FAIL]]></return_code>');
    } finally {
      await shop.close().catch(() => undefined);
    }
  });
});

// The fast path takes both payment routes (APIv3's and APIv2's, the suites above); here every route goes
// through the controller.
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

  it('APIv2: a signed XML payment notification is applied once (SUCCESS XML), a forged one answered FAIL and changes nothing', async () => {
    const no = await order();
    const forged = craftV2Notification(keystore, v2PaymentFields(keystore, no, 500), { key: 'f'.repeat(32) });
    const refused = await postNotification(shop.baseUrl, { path: '/notify/wechatpay/v2/transaction', ...forged });
    expect(refused.status).toBe(401);
    expect(await refused.text()).toContain('<return_code><![CDATA[FAIL]]></return_code>');
    expect(await shop.status(no)).toBe('NOTPAY');
    const good = craftPayment('v2', keystore, no, 500);
    const answers = await Promise.all(Array.from({ length: 5 }, () => postNotification(shop.baseUrl, good)));
    expect(await Promise.all(answers.map((r) => acknowledged('v2', r)))).toEqual(Array(5).fill(true));
    expect(answers[0].headers.get('content-type')).toMatch(/^text\/xml/);
    expect(await shop.status(no)).toBe('PAID');
  });

  it('APIv2: a refund notification goes through the controller too (SUCCESS XML, raw bytes stored), a tampered one answered FAIL', async () => {
    const no = await shop.paidOrder(user, [{ productId, quantity: 1 }]);
    const r = await shop.admin().post('/admin/refunds').send({ outTradeNo: no, amount: 200, reason: '控制器' }).expect(201);
    await shop.sandbox.waitForNotification({ outRefundNo: r.body.outRefundNo });
    const settled = (await shop.admin().get(`/admin/refunds/${r.body.outRefundNo}`).expect(200)).body;
    const result = { out_refund_no: r.body.outRefundNo, out_trade_no: no, refund_id: settled.refundId ?? '50000000000000000000000000011', refund_status: 'SUCCESS', total_fee: 500, refund_fee: 200, settlement_refund_fee: 200, success_time: '2026-11-24 10:00:00' };
    const genuine = craftV2RefundNotification(keystore, result);
    const tampered = genuine.body.toString().replace(/<req_info><!\[CDATA\[(.)/, (_m, c: string) => `<req_info><![CDATA[${c === 'A' ? 'B' : 'A'}`);
    const refused = await fetch(`${shop.baseUrl}/notify/wechatpay/v2/refund`, { method: 'POST', headers: { 'Content-Type': 'text/xml' }, body: tampered });
    expect(refused.status).toBeGreaterThanOrEqual(400);
    expect(await refused.text()).toContain('<return_code><![CDATA[FAIL]]></return_code>');
    const res = await fetch(`${shop.baseUrl}/notify/wechatpay/v2/refund`, { method: 'POST', headers: genuine.headers, body: genuine.body });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).not.toBeNull(); // Express's middleware ran
    expect(await res.text()).toContain('<return_code><![CDATA[SUCCESS]]></return_code>');
    const [row] = await storedAs(shop, genuine.body);
    expect(row).toMatchObject({ verified: 1, outcome: expect.stringMatching(/^refund:/) });
    expect(storedBytes(row).equals(genuine.body)).toBe(true);
    expect((await shop.admin().get(`/admin/refunds/${r.body.outRefundNo}`).expect(200)).body).toEqual(settled);
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
