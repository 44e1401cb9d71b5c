import { createPublicKey, verify } from 'node:crypto';
import { NotifyReceiver, Received } from '../helpers/receiver';
import { SandboxTestApp, startSandboxApp, tradeNo } from './sandbox-app';

/**
 * Issue 12 item 9: moving the sandbox clock (POST /sandbox/control/clock { shiftMs }) moves business
 * time only — code and token expiry, prepay and bill expiry, time_expire — never signature time. A
 * correct third-party client (here the independent signer of test/helpers/merchant-signer.ts, which
 * knows nothing of the shift) keeps working after a shift of hours.
 */
describe('sandbox clock: a business-time shift leaves signature time real', () => {
  const HOURS = 5 * 3600_000;
  let t: SandboxTestApp;
  let receiver: NotifyReceiver;
  let notifyUrl: string;

  beforeAll(async () => {
    t = await startSandboxApp();
    receiver = new NotifyReceiver();
    notifyUrl = await receiver.start();
  });
  afterAll(async () => {
    await t?.control.reset();
    await t?.close();
    await receiver?.stop();
  });
  afterEach(async () => {
    await t.control.reset();
    receiver.received.length = 0;
  });

  const realSeconds = () => Math.floor(Date.now() / 1000);
  const notificationVerifies = (r: Received) =>
    verify(
      'sha256',
      Buffer.concat([Buffer.from(`${r.headers['wechatpay-timestamp']}\n${r.headers['wechatpay-nonce']}\n`), r.body, Buffer.from('\n')]),
      createPublicKey(t.keystore.publicKey.publicKeyPem),
      Buffer.from(String(r.headers['wechatpay-signature']), 'base64'),
    );

  it('after business time moved 5 hours, a request signed with the real time is accepted and the answer carries real timestamps (Wechatpay-Timestamp, Date) that verify', async () => {
    await t.control.shiftClock(HOURS);
    expect((await t.control.clock()).offsetMs).toBe(HOURS);
    expect(Date.parse((await t.control.clock()).now) - Date.now()).toBeGreaterThan(HOURS - 10_000);

    const no = tradeNo('BIZ');
    const res = await t.merchant.request('POST', '/v3/pay/transactions/jsapi', t.merchant.prepayBody(no, 'o_biz', notifyUrl, 300));
    expect({ status: res.status, body: res.json }).toEqual({ status: 200, body: { prepay_id: expect.stringMatching(/^wx/) } });
    expect(t.merchant.responseVerifies(res)).toBe(true);
    expect(Math.abs(Number(res.headers.get('wechatpay-timestamp')) - realSeconds())).toBeLessThanOrEqual(5);
    expect(Math.abs(Date.parse(res.headers.get('date')!) - Date.now())).toBeLessThanOrEqual(5_000);

    const query = await t.merchant.request('GET', `/v3/pay/transactions/out-trade-no/${no}?mchid=${t.keystore.mchid}`);
    expect(query.status).toBe(200);
    expect(query.json.trade_state).toBe('NOTPAY');
    expect(t.merchant.responseVerifies(query)).toBe(true);
  });

  it("after a shift, a request timestamped with the sandbox's business time (5 h ahead of real time) is refused as stale: requests are checked against real time", async () => {
    await t.control.shiftClock(HOURS);
    const body = t.merchant.prepayBody(tradeNo('BIZ'), 'o_biz', notifyUrl, 300);
    const shiftedTimestamp = realSeconds() + HOURS / 1000;
    const auth = t.merchant.authorization('POST', '/sandbox/v3/pay/transactions/jsapi', JSON.stringify(body), shiftedTimestamp);
    const res = await t.merchant.request('POST', '/v3/pay/transactions/jsapi', body, { authorization: auth });
    expect(res.status).toBe(401);
    expect(res.json.code).toBe('SIGN_ERROR');
    expect(JSON.stringify(res.json.detail)).toMatch(/偏差 1800\d 秒/);
  });

  it('after a shift, the notification of a payment carries a real Wechatpay-Timestamp that verifies, while its times are business times', async () => {
    await t.control.shiftClock(HOURS);
    const no = tradeNo('BIZ');
    const prepay = await t.merchant.request('POST', '/v3/pay/transactions/jsapi', t.merchant.prepayBody(no, 'o_biz', notifyUrl, 500));
    expect(prepay.status).toBe(200);
    expect((await t.control.pay(prepay.json.prepay_id)).result).toBe('ok');
    await t.control.waitForNotification({ outTradeNo: no });
    expect(receiver.received).toHaveLength(1);
    const r = receiver.received[0];
    expect(Math.abs(Number(r.headers['wechatpay-timestamp']) - realSeconds())).toBeLessThanOrEqual(5);
    expect(notificationVerifies(r)).toBe(true);
    // business time: the notification's create_time is the shifted one
    const envelope = JSON.parse(r.body.toString());
    expect(Date.parse(envelope.create_time) - Date.now()).toBeGreaterThan(HOURS - 60_000);
  });

  it('business time still rules expiry: after a 5 h shift a time_expire 1 h from real time is refused as past', async () => {
    await t.control.shiftClock(HOURS);
    const beijing = (ms: number) => new Date(ms + 8 * 3600_000).toISOString().replace(/\.\d{3}Z$/, '+08:00');
    const body = t.merchant.prepayBody(tradeNo('BIZ'), 'o_biz', notifyUrl, 300, { time_expire: beijing(Date.now() + 3600_000) });
    const res = await t.merchant.request('POST', '/v3/pay/transactions/jsapi', body);
    expect(res.status).toBe(400);
    expect(res.json.message).toContain('订单已过期');
  });

  it('wechatSkewMs and the business shift are independent: with both, answers are stamped real time + skew', async () => {
    await t.control.shiftClock(HOURS);
    await t.control.setWechatSkew(90_000);
    expect(await t.control.clock()).toMatchObject({ offsetMs: HOURS, wechatSkewMs: 90_000 });
    // A client whose clock is WeChat's (real + 90 s) is within tolerance; its answer is stamped real + 90 s.
    const body = t.merchant.prepayBody(tradeNo('BIZ'), 'o_biz', notifyUrl, 300);
    const res = await t.merchant.request('POST', '/v3/pay/transactions/jsapi', body);
    expect(res.status).toBe(200);
    expect(Math.abs(Number(res.headers.get('wechatpay-timestamp')) - (realSeconds() + 90))).toBeLessThanOrEqual(5);
    expect(Math.abs(Date.parse(res.headers.get('date')!) - (Date.now() + 90_000))).toBeLessThanOrEqual(5_000);
    // ending the business shift keeps the skew
    await t.control.resetClock();
    expect(await t.control.clock()).toMatchObject({ offsetMs: 0, wechatSkewMs: 90_000 });
  });
});
