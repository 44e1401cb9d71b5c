import { createDecipheriv, createPublicKey, verify } from 'node:crypto';
import { RETRY_SCHEDULE_MS } from '../../src/sandbox/sandbox-notifier.service';
import { NotifyReceiver, Received } from '../helpers/receiver';
import { SandboxTestApp, startSandboxApp, tradeNo } from './sandbox-app';

const SCALE = 100;

describe('sandbox notifications', () => {
  let t: SandboxTestApp;
  let receiver: NotifyReceiver;
  let notifyUrl: string;

  beforeAll(async () => {
    t = await startSandboxApp({ env: { SANDBOX_TIME_SCALE: String(SCALE), SANDBOX_NOTIFY_TIMEOUT: '300ms', SANDBOX_REFUND_DELAY: '1s' } });
    receiver = new NotifyReceiver();
    notifyUrl = await receiver.start();
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.stop();
  });
  beforeEach(() => {
    receiver.received.length = 0;
    receiver.answer = () => 204;
  });

  async function paidOrder(total = 880) {
    const no = tradeNo('NTF');
    const res = await t.merchant.request('POST', '/v3/pay/transactions/jsapi', t.merchant.prepayBody(no, 'o_n', notifyUrl, total));
    await t.control.pay(res.json.prepay_id);
    return no;
  }

  function verifies(r: Received): boolean {
    const message = Buffer.concat([Buffer.from(`${r.headers['wechatpay-timestamp']}\n${r.headers['wechatpay-nonce']}\n`), r.body, Buffer.from('\n')]);
    return verify('sha256', message, createPublicKey(t.keystore.publicKey.publicKeyPem), Buffer.from(String(r.headers['wechatpay-signature']), 'base64'));
  }

  function decrypt(r: Received): Record<string, unknown> {
    const { resource } = JSON.parse(r.body.toString());
    const data = Buffer.from(resource.ciphertext, 'base64');
    const d = createDecipheriv('aes-256-gcm', Buffer.from(t.keystore.apiv3Key), Buffer.from(resource.nonce));
    d.setAuthTag(data.subarray(data.length - 16));
    d.setAAD(Buffer.from(resource.associated_data));
    return JSON.parse(Buffer.concat([d.update(data.subarray(0, data.length - 16)), d.final()]).toString());
  }

  it('posts a signed, encrypted TRANSACTION.SUCCESS notification once the user pays', async () => {
    const no = await paidOrder(880);
    await t.control.waitForNotification({ outTradeNo: no });
    expect(receiver.received).toHaveLength(1);
    const r = receiver.received[0];
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.headers['wechatpay-serial']).toBe(t.keystore.publicKey.id);
    expect(verifies(r)).toBe(true);
    const envelope = JSON.parse(r.body.toString());
    expect(envelope).toMatchObject({ resource_type: 'encrypt-resource', event_type: 'TRANSACTION.SUCCESS', summary: '支付成功' });
    expect(envelope.resource).toMatchObject({ algorithm: 'AEAD_AES_256_GCM', associated_data: 'transaction', original_type: 'transaction' });
    expect(envelope.create_time).toMatch(/\+08:00$/);
    expect(decrypt(r)).toMatchObject({ out_trade_no: no, trade_state: 'SUCCESS', amount: { total: 880 }, mchid: t.keystore.mchid, appid: t.keystore.appid });
  });

  it('retries on WeChat\'s schedule (scaled) until the merchant answers 204, recording each attempt', async () => {
    receiver.answer = (n) => (n < 4 ? 500 : 204);
    const no = await paidOrder();
    const attempts = await t.control.waitForNotification({ outTradeNo: no }, (a) => a.some((x) => x.ok), 15_000);
    expect(attempts.map((a) => a.status)).toEqual([500, 500, 500, 500, 204]);
    expect(attempts.every((a) => a.latencyMs >= 0 && a.kind === 'scheduled')).toBe(true);
    const gaps = receiver.received.slice(1).map((r, i) => r.at - receiver.received[i].at);
    // 15 s, 15 s, 30 s, 3 min divided by the scale, give or take the event loop.
    gaps.forEach((gap, i) => {
      const expected = RETRY_SCHEDULE_MS[i] / SCALE;
      expect(gap).toBeGreaterThanOrEqual(expected - 5);
      expect(gap).toBeLessThan(expected + 400);
    });
  });

  it('treats no answer within the deadline as a failure and retries', async () => {
    receiver.answer = (n) => (n === 0 ? 'hang' : 200);
    const no = await paidOrder();
    const attempts = await t.control.waitForNotification({ outTradeNo: no });
    expect(attempts[0]).toMatchObject({ ok: false, error: expect.stringContaining('no answer within 300 ms') });
    expect(attempts[1]).toMatchObject({ ok: true, status: 200 });
  });

  it('drops notifications on request, so only a query finds the payment', async () => {
    await t.control.dropNotifications(true);
    try {
      const no = await paidOrder();
      const attempts = await t.control.waitForNotification({ outTradeNo: no }, (a) => a.length > 0);
      expect(attempts[0]).toMatchObject({ ok: false, error: expect.stringContaining('dropped') });
      await new Promise((r) => setTimeout(r, 200));
      expect(receiver.received).toHaveLength(0);
      expect((await t.control.transaction(no)).trade_state).toBe('SUCCESS');
    } finally {
      await t.control.dropNotifications(false);
    }
  });

  it('delivers a notification N times concurrently, and tampered variants', async () => {
    const no = await paidOrder();
    await t.control.waitForNotification({ outTradeNo: no });
    receiver.received.length = 0;
    const burst = await t.control.deliver({ outTradeNo: no }, { times: 20 });
    expect(burst).toHaveLength(20);
    expect(receiver.received).toHaveLength(20);
    expect(new Set(receiver.received.map((r) => JSON.parse(r.body.toString()).id)).size).toBe(1);

    receiver.received.length = 0;
    await t.control.deliver({ outTradeNo: no }, { tamper: 'signature' });
    expect(verifies(receiver.received[0])).toBe(false);
    await t.control.deliver({ outTradeNo: no }, { tamper: 'timestamp' });
    expect(Math.abs(Number(receiver.received[1].headers['wechatpay-timestamp']) - Date.now() / 1000)).toBeGreaterThan(3000);
    expect(verifies(receiver.received[1])).toBe(true);
    await t.control.deliver({ outTradeNo: no }, { tamper: 'ciphertext' });
    expect(verifies(receiver.received[2])).toBe(true);
    expect(() => decrypt(receiver.received[2])).toThrow();
    await t.control.deliver({ outTradeNo: no }, { tamper: 'probe' });
    expect(String(receiver.received[3].headers['wechatpay-signature'])).toMatch(/^WECHATPAY\/SIGNTEST\//);
    const all = await t.control.notifications({ outTradeNo: no });
    expect(all.filter((a) => a.kind === 'manual').map((a) => a.tamper ?? 'none')).toEqual([...Array(20).fill('none'), 'signature', 'timestamp', 'ciphertext', 'probe']);
  });

  it('sends REFUND.SUCCESS to the refund notify_url', async () => {
    const no = await paidOrder(600);
    const res = await t.merchant.request('POST', '/v3/refund/domestic/refunds', {
      out_trade_no: no,
      out_refund_no: `${no}R`,
      notify_url: notifyUrl,
      amount: { refund: 200, total: 600, currency: 'CNY' },
    });
    expect(res.status).toBe(200);
    await t.control.waitForNotification({ outRefundNo: `${no}R` });
    const r = receiver.received.find((x) => JSON.parse(x.body.toString()).event_type.startsWith('REFUND.'))!;
    expect(JSON.parse(r.body.toString())).toMatchObject({ event_type: 'REFUND.SUCCESS', summary: '退款成功', resource: { associated_data: 'refund', original_type: 'refund' } });
    expect(decrypt(r)).toMatchObject({ out_refund_no: `${no}R`, refund_status: 'SUCCESS', amount: { refund: 200, total: 600 } });
  });

  it.each([
    ['ABNORMAL', '退款异常'],
    ['CLOSED', '退款关闭'],
  ] as const)('sends REFUND.%s (no success_time) when a refund ends that way', async (status, summary) => {
    const no = await paidOrder(600);
    await t.control.nextRefundOutcome(status);
    const res = await t.merchant.request('POST', '/v3/refund/domestic/refunds', {
      out_trade_no: no,
      out_refund_no: `${no}X`,
      notify_url: notifyUrl,
      amount: { refund: 600, total: 600, currency: 'CNY' },
    });
    expect(res.json.status).toBe('PROCESSING');
    await t.control.waitForNotification({ outRefundNo: `${no}X` });
    const r = receiver.received.find((x) => JSON.parse(x.body.toString()).event_type.startsWith('REFUND.'))!;
    expect(verifies(r)).toBe(true);
    expect(JSON.parse(r.body.toString())).toMatchObject({ event_type: `REFUND.${status}`, summary, resource_type: 'encrypt-resource', resource: { original_type: 'refund' } });
    const resource = decrypt(r);
    expect(resource).toMatchObject({ out_refund_no: `${no}X`, out_trade_no: no, refund_status: status, amount: { refund: 600, total: 600 } });
    expect(resource.success_time).toBeUndefined();
    const query = await t.merchant.request('GET', `/v3/refund/domestic/refunds/${no}X`);
    expect(query.json.status).toBe(status);
  });
});

describe('sandbox notifications in certificate mode', () => {
  it('signs with the platform certificate', async () => {
    const t = await startSandboxApp({ env: { SANDBOX_SIGN_MODE: 'certificate' } });
    const receiver = new NotifyReceiver();
    const url = await receiver.start();
    try {
      const no = tradeNo('CRT');
      const res = await t.merchant.request('POST', '/v3/pay/transactions/jsapi', t.merchant.prepayBody(no, 'o1', url));
      expect(res.headers.get('wechatpay-serial')).toBe(t.keystore.platform.serial);
      await t.control.pay(res.json.prepay_id);
      await t.control.waitForNotification({ outTradeNo: no });
      expect(receiver.received[0].headers['wechatpay-serial']).toBe(t.keystore.platform.serial);
    } finally {
      await t.close();
      await receiver.stop();
    }
  });
});
