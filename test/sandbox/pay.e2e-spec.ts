import { createDecipheriv, createHash, X509Certificate } from 'node:crypto';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { daysAgo, today } from '../helpers/dates';
import { tempDir } from '../helpers/test-app';
import { SandboxTestApp, startSandboxApp, tradeNo } from './sandbox-app';

const NOTIFY = 'http://127.0.0.1:9/notify';

describe('sandbox Pay APIv3', () => {
  let t: SandboxTestApp;

  beforeAll(async () => {
    t = await startSandboxApp({ env: { SANDBOX_REFUND_DELAY: '1s', SANDBOX_TIME_SCALE: '20' } });
  });
  afterAll(() => t?.close());

  async function prepay(total = 100, openid = 'o_payer_1', extra: Record<string, unknown> = {}) {
    const no = tradeNo();
    const res = await t.merchant.request('POST', '/v3/pay/transactions/jsapi', t.merchant.prepayBody(no, openid, NOTIFY, total, extra));
    expect(res.status).toBe(200);
    return { outTradeNo: no, prepayId: res.json.prepay_id as string };
  }

  const sha1 = (data: Buffer) => createHash('sha1').update(data).digest('hex');
  const query = (outTradeNo: string) => t.merchant.request('GET', `/v3/pay/transactions/out-trade-no/${outTradeNo}?mchid=${t.keystore.mchid}`);
  /** GET download_url, signed like any call; answers the plain file (gunzipped when it was a gzip). */
  async function download(downloadUrl: string): Promise<Buffer> {
    const url = new URL(downloadUrl);
    const file = await t.merchant.request('GET', url.pathname.replace('/sandbox', '') + url.search);
    expect(file.status).toBe(200);
    return url.searchParams.get('tartype') === 'gzip' ? gunzipSync(file.raw) : file.raw;
  }
  const control = (method: string, path: string, body?: unknown) =>
    fetch(`${t.baseUrl}/sandbox/control${path}`, { method, headers: { 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });

  describe('request signatures', () => {
    it('signs every answer with the WeChat Pay public key and a Request-ID', async () => {
      const res = await t.merchant.request('POST', '/v3/pay/transactions/jsapi', t.merchant.prepayBody(tradeNo(), 'o1', NOTIFY));
      expect(res.status).toBe(200);
      expect(res.json.prepay_id).toMatch(/^wx\d{14}[0-9a-f]+$/);
      expect(res.headers.get('wechatpay-serial')).toBe(t.keystore.publicKey.id);
      expect(res.headers.get('request-id')).toMatch(/^[0-9A-F]+-0$/);
      expect(t.merchant.responseVerifies(res)).toBe(true);
    });

    it.each([
      ['no Authorization', () => ''],
      ['another scheme', () => 'Bearer abc'],
      ['a signature over another body', () => t.merchant.authorization('POST', '/sandbox/v3/pay/transactions/jsapi', '{}')],
      ['a stale timestamp', () => t.merchant.authorization('POST', '/sandbox/v3/pay/transactions/jsapi', BODY, Math.floor(Date.now() / 1000) - 301)],
      ['the path without the base prefix', () => t.merchant.authorization('POST', '/v3/pay/transactions/jsapi', BODY)],
      ['an unknown certificate serial', () => t.merchant.authorization('POST', '/sandbox/v3/pay/transactions/jsapi', BODY).replace(/serial_no="[^"]+"/, 'serial_no="00AA"')],
    ])('answers 401 SIGN_ERROR for %s', async (_name, auth) => {
      const res = await t.merchant.request('POST', '/v3/pay/transactions/jsapi', undefined, { rawBody: BODY, authorization: auth() });
      expect(res.status).toBe(401);
      expect(res.json).toMatchObject({ code: 'SIGN_ERROR', message: '错误的签名，验签失败' });
      expect(t.merchant.responseVerifies(res)).toBe(true);
    });

    it('shows the message it verified when the signature does not match', async () => {
      const auth = t.merchant.authorization('GET', '/sandbox/v3/certificates', 'x');
      const res = await t.merchant.request('GET', '/v3/certificates', undefined, { authorization: auth });
      expect(res.status).toBe(401);
      expect(res.json.detail.sign_information).toMatchObject({ method: 'GET', url: '/sandbox/v3/certificates' });
      expect(res.json.detail.sign_information.truncated_sign_message).toMatch(/^GET\n\/sandbox\/v3\/certificates\n\d{10}\n[0-9a-f]+\n\n$/);
    });

    it('accepts the Authorization pairs in any order', async () => {
      const BODY2 = JSON.stringify(t.merchant.prepayBody(tradeNo(), 'o1', NOTIFY));
      const auth = t.merchant.authorization('POST', '/sandbox/v3/pay/transactions/jsapi', BODY2);
      const pairs = auth.replace('WECHATPAY2-SHA256-RSA2048 ', '').split(',').reverse().join(',');
      const res = await t.merchant.request('POST', '/v3/pay/transactions/jsapi', undefined, { rawBody: BODY2, authorization: `WECHATPAY2-SHA256-RSA2048 ${pairs}` });
      expect(res.status).toBe(200);
    });
  });

  describe('JSAPI prepay', () => {
    it.each([
      ['out_trade_no too short', { out_trade_no: 'abc' }, 'PARAM_ERROR'],
      ['out_trade_no with a bad character', { out_trade_no: 'abc#12345' }, 'PARAM_ERROR'],
      ['a zero amount', { amount: { total: 0, currency: 'CNY' } }, 'PARAM_ERROR'],
      ['a fractional amount', { amount: { total: 1.5 } }, 'PARAM_ERROR'],
      ['another currency', { amount: { total: 1, currency: 'USD' } }, 'PARAM_ERROR'],
      ['no payer', { payer: undefined }, 'PARAM_ERROR'],
      ['a notify_url with a query', { notify_url: 'https://a.com/n?x=1' }, 'PARAM_ERROR'],
      ['a bad time_expire', { time_expire: 'tomorrow' }, 'PARAM_ERROR'],
      ['another appid', { appid: 'wx0000000000000000' }, 'APPID_MCHID_NOT_MATCH'],
      ['no description', { description: undefined }, 'PARAM_ERROR'],
      ['a description with an emoji (4-byte UTF-8, which WeChat refuses)', { description: '马克杯☕🎁' }, 'PARAM_ERROR'],
      ['a description of 128 bytes (43 Chinese characters: under 127 characters, over 127 bytes)', { description: '杯'.repeat(43) }, 'PARAM_ERROR'],
    ])('rejects %s with 400 %s', async (_name, change, code) => {
      const body = { ...t.merchant.prepayBody(tradeNo(), 'o1', NOTIFY), ...change };
      const res = await t.merchant.request('POST', '/v3/pay/transactions/jsapi', body);
      expect(res.status).toBe(400);
      expect(res.json.code).toBe(code);
      expect(typeof res.json.message).toBe('string');
    });

    it('accepts a description of exactly 127 bytes of UTF-8', async () => {
      const body = { ...t.merchant.prepayBody(tradeNo(), 'o1', NOTIFY), description: 'a' + '杯'.repeat(42) };
      const res = await t.merchant.request('POST', '/v3/pay/transactions/jsapi', body);
      expect(res.status).toBe(200);
    });

    it('returns the same prepay_id for an identical repeat and 400 INVALID_REQUEST for a different one', async () => {
      const no = tradeNo();
      const body = t.merchant.prepayBody(no, 'o1', NOTIFY, 100);
      const a = await t.merchant.request('POST', '/v3/pay/transactions/jsapi', body);
      const b = await t.merchant.request('POST', '/v3/pay/transactions/jsapi', body);
      expect(b.json.prepay_id).toBe(a.json.prepay_id);
      const c = await t.merchant.request('POST', '/v3/pay/transactions/jsapi', { ...body, amount: { total: 101, currency: 'CNY' } });
      expect(c.status).toBe(400);
      expect(c.json).toMatchObject({ code: 'INVALID_REQUEST', message: '请求重入时，参数与首次请求时不一致' });
    });

    it('counts notify_url among the parameters: a repeat with another notify_url is 400 INVALID_REQUEST', async () => {
      // Protocol D.1: only a repeat with identical parameters gets a prepay_id; notify_url is one of them.
      const body = t.merchant.prepayBody(tradeNo(), 'o1', NOTIFY, 100);
      const a = await t.merchant.request('POST', '/v3/pay/transactions/jsapi', body);
      expect(a.status).toBe(200);
      const b = await t.merchant.request('POST', '/v3/pay/transactions/jsapi', { ...body, notify_url: 'http://127.0.0.1:9/other' });
      expect(b.status).toBe(400);
      expect(b.json).toMatchObject({ code: 'INVALID_REQUEST', message: '请求重入时，参数与首次请求时不一致' });
      expect(t.merchant.responseVerifies(b)).toBe(true);
      const c = await t.merchant.request('POST', '/v3/pay/transactions/jsapi', body);
      expect(c.json.prepay_id).toBe(a.json.prepay_id);
    });

    it('answers a correctly signed body sent as another Content-Type with 400 PARAM_ERROR, not SIGN_ERROR', async () => {
      const body = JSON.stringify(t.merchant.prepayBody(tradeNo(), 'o1', NOTIFY));
      const target = '/sandbox/v3/pay/transactions/jsapi';
      for (const contentType of ['text/plain', 'application/x-www-form-urlencoded']) {
        const res = await fetch(`${t.baseUrl}${target}`, {
          method: 'POST',
          headers: { Authorization: t.merchant.authorization('POST', target, body), 'Content-Type': contentType, Accept: 'application/json' },
          body,
        });
        const raw = Buffer.from(await res.arrayBuffer());
        expect(res.status).toBe(400);
        const json = JSON.parse(raw.toString());
        expect(json).toMatchObject({ code: 'PARAM_ERROR', detail: { field: 'Content-Type', value: contentType, location: 'header' } });
        expect(t.merchant.responseVerifies({ headers: res.headers, raw })).toBe(true);
      }
      // The signature is still checked first, over the bytes really sent.
      const forged = await fetch(`${t.baseUrl}${target}`, {
        method: 'POST',
        headers: { Authorization: t.merchant.authorization('POST', target, '{}'), 'Content-Type': 'text/plain' },
        body,
      });
      expect(forged.status).toBe(401);
      expect(((await forged.json()) as { code: string }).code).toBe('SIGN_ERROR');
    });

    it('issues a new prepay_id after two hours', async () => {
      const no = tradeNo();
      const body = t.merchant.prepayBody(no, 'o1', NOTIFY, 100);
      const a = await t.merchant.request('POST', '/v3/pay/transactions/jsapi', body);
      await t.control.shiftClock(2 * 3600_000 + 1000);
      try {
        // Business time moved, signature time did not: the merchant signs with the real time.
        const b = await t.merchant.request('POST', '/v3/pay/transactions/jsapi', body);
        expect(b.status).toBe(200);
        expect(b.json.prepay_id).not.toBe(a.json.prepay_id);
      } finally {
        await t.control.resetClock();
      }
    });
  });

  describe('query, pay, close', () => {
    it('queries NOTPAY, pays as the prepay user only, then SUCCESS by out_trade_no and by transaction_id', async () => {
      const { outTradeNo, prepayId } = await prepay(250, 'o_alice');
      const q1 = await t.merchant.request('GET', `/v3/pay/transactions/out-trade-no/${outTradeNo}?mchid=${t.keystore.mchid}`);
      expect(q1.json).toMatchObject({ trade_state: 'NOTPAY', out_trade_no: outTradeNo, amount: { total: 250 } });
      expect(q1.json.transaction_id).toBeUndefined();
      expect(t.merchant.responseVerifies(q1)).toBe(true);

      const wrongUser = await t.control.pay(prepayId, { openid: 'o_mallory' });
      expect(wrongUser).toMatchObject({ result: 'fail', status: 409 });
      const paid = await t.control.pay(prepayId);
      expect(paid).toMatchObject({ result: 'ok', outTradeNo });

      const q2 = await t.merchant.request('GET', `/v3/pay/transactions/out-trade-no/${outTradeNo}?mchid=${t.keystore.mchid}`);
      expect(q2.json).toMatchObject({
        trade_state: 'SUCCESS',
        trade_type: 'JSAPI',
        trade_state_desc: '支付成功',
        payer: { openid: 'o_alice' },
        amount: { total: 250, payer_total: 250, currency: 'CNY' },
      });
      expect(q2.json.success_time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$/);
      const q3 = await t.merchant.request('GET', `/v3/pay/transactions/id/${q2.json.transaction_id}?mchid=${t.keystore.mchid}`);
      expect(q3.json.out_trade_no).toBe(outTradeNo);

      const again = await t.control.pay(prepayId);
      expect(again).toMatchObject({ result: 'fail', reason: '该订单已支付' });
    });

    it('answers 404 ORDER_NOT_EXIST for an unknown order and 400 for another mchid', async () => {
      const res = await t.merchant.request('GET', `/v3/pay/transactions/out-trade-no/NOPE123456?mchid=${t.keystore.mchid}`);
      expect(res.status).toBe(404);
      expect(res.json.code).toBe('ORDER_NOT_EXIST');
      const other = await t.merchant.request('GET', `/v3/pay/transactions/out-trade-no/NOPE123456?mchid=1234567890`);
      expect(other.status).toBe(400);
    });

    it('closes an unpaid order (204, idempotent), refuses to close a paid one, and refuses to pay a closed one', async () => {
      const { outTradeNo, prepayId } = await prepay();
      const close = () => t.merchant.request('POST', `/v3/pay/transactions/out-trade-no/${outTradeNo}/close`, { mchid: t.keystore.mchid });
      const c1 = await close();
      expect(c1.status).toBe(204);
      expect(c1.text).toBe('');
      expect(t.merchant.responseVerifies(c1)).toBe(true);
      expect((await close()).status).toBe(204);
      expect(await t.control.pay(prepayId)).toMatchObject({ result: 'fail' });
      const q = await t.merchant.request('GET', `/v3/pay/transactions/out-trade-no/${outTradeNo}?mchid=${t.keystore.mchid}`);
      expect(q.json.trade_state).toBe('CLOSED');

      const paid = await prepay();
      await t.control.pay(paid.prepayId);
      const c2 = await t.merchant.request('POST', `/v3/pay/transactions/out-trade-no/${paid.outTradeNo}/close`, { mchid: t.keystore.mchid });
      expect(c2.status).toBe(400);
      expect(c2.json.code).toBe('ORDER_PAID');
    });

    it('honours time_expire: the order closes by itself and cannot be paid late', async () => {
      const soon = new Date(Date.now() + 60_000 + 8 * 3600_000).toISOString().replace(/\.\d{3}Z$/, '+08:00');
      const { outTradeNo, prepayId } = await prepay(100, 'o1', { time_expire: soon });
      await t.control.shiftClock(61_000);
      try {
        expect(await t.control.pay(prepayId)).toMatchObject({ result: 'fail', reason: expect.stringContaining('关闭') });
        expect((await t.control.transaction(outTradeNo)).trade_state).toBe('CLOSED');
      } finally {
        await t.control.resetClock();
      }
    });
  });

  describe('trade_state USERPAYING and PAYERROR (control API)', () => {
    it('reports USERPAYING while the user enters the password; the payment can still complete', async () => {
      const { outTradeNo, prepayId } = await prepay(300, 'o_userpaying');
      expect(await t.control.setTradeState(outTradeNo, 'USERPAYING')).toMatchObject({ trade_state: 'USERPAYING' });
      const q = await query(outTradeNo);
      expect(q.status).toBe(200);
      expect(q.json).toMatchObject({ trade_state: 'USERPAYING', trade_state_desc: '需要用户输入支付密码', amount: { total: 300 } });
      expect(q.json.transaction_id).toBeUndefined();
      expect(t.merchant.responseVerifies(q)).toBe(true);
      expect(await t.control.pay(prepayId)).toMatchObject({ result: 'ok' });
      expect((await query(outTradeNo)).json).toMatchObject({ trade_state: 'SUCCESS', trade_state_desc: '支付成功' });
    });

    it('reports PAYERROR, which cannot be paid but can be closed; NOTPAY puts it back', async () => {
      const { outTradeNo, prepayId } = await prepay(300, 'o_payerror');
      await t.control.setTradeState(outTradeNo, 'PAYERROR');
      const q = await query(outTradeNo);
      expect(q.json).toMatchObject({ trade_state: 'PAYERROR', trade_state_desc: '支付失败，请重新下单支付' });
      expect(await t.control.pay(prepayId)).toMatchObject({ result: 'fail', status: 409, reason: expect.stringContaining('PAYERROR') });
      await t.control.setTradeState(outTradeNo, 'NOTPAY');
      expect((await query(outTradeNo)).json.trade_state).toBe('NOTPAY');
      await t.control.setTradeState(outTradeNo, 'PAYERROR');
      const close = await t.merchant.request('POST', `/v3/pay/transactions/out-trade-no/${outTradeNo}/close`, { mchid: t.keystore.mchid });
      expect(close.status).toBe(204);
      expect((await query(outTradeNo)).json.trade_state).toBe('CLOSED');
    });

    it('refuses paid orders (409), unknown orders (404) and other states (400)', async () => {
      const { outTradeNo, prepayId } = await prepay();
      await t.control.pay(prepayId);
      const paid = await control('POST', `/transactions/${outTradeNo}/trade-state`, { state: 'USERPAYING' });
      expect(paid.status).toBe(409);
      expect(((await paid.json()) as { message: string }).message).toContain('SUCCESS');
      expect((await control('POST', '/transactions/NOSUCHORDER1/trade-state', { state: 'PAYERROR' })).status).toBe(404);
      expect((await control('POST', `/transactions/${outTradeNo}/trade-state`, { state: 'SUCCESS' })).status).toBe(400);
    });
  });

  describe('refunds', () => {
    it('refunds partially, then fully; PROCESSING then SUCCESS after the delay; over-refund beyond what is left answers 400 INVALID_REQUEST by default (WeChat\'s current error table), not 403 NOT_ENOUGH', async () => {
      const { outTradeNo, prepayId } = await prepay(1000);
      await t.control.pay(prepayId);
      const refund = (no: string, amount: number) =>
        t.merchant.request('POST', '/v3/refund/domestic/refunds', {
          out_trade_no: outTradeNo,
          out_refund_no: no,
          reason: '测试退款',
          amount: { refund: amount, total: 1000, currency: 'CNY' },
        });
      const r1 = await refund(`${outTradeNo}R1`, 300);
      expect(r1.status).toBe(200);
      expect(r1.json).toMatchObject({ status: 'PROCESSING', out_refund_no: `${outTradeNo}R1`, amount: { refund: 300, total: 1000 } });
      expect(t.merchant.responseVerifies(r1)).toBe(true);
      const same = await refund(`${outTradeNo}R1`, 300);
      expect(same.json.refund_id).toBe(r1.json.refund_id);
      const changed = await refund(`${outTradeNo}R1`, 301);
      expect(changed.status).toBe(400);
      expect(changed.json.code).toBe('INVALID_REQUEST');

      const tooMuch = await refund(`${outTradeNo}R2`, 701);
      expect(tooMuch.status).toBe(400);
      expect(tooMuch.json.code).toBe('INVALID_REQUEST');
      expect(t.merchant.responseVerifies(tooMuch)).toBe(true);
      const rest = await refund(`${outTradeNo}R3`, 700);
      expect(rest.status).toBe(200);

      await new Promise((r) => setTimeout(r, 120)); // 1 s / scale 20
      const q = await t.merchant.request('GET', `/v3/refund/domestic/refunds/${outTradeNo}R3`);
      expect(q.json).toMatchObject({ status: 'SUCCESS', out_trade_no: outTradeNo });
      expect(q.json.success_time).toMatch(/\+08:00$/);
      const order = await t.merchant.request('GET', `/v3/pay/transactions/out-trade-no/${outTradeNo}?mchid=${t.keystore.mchid}`);
      expect(order.json.trade_state).toBe('REFUND');
    });

    it('refuses refunds of unpaid orders and unknown refunds with 404 RESOURCE_NOT_EXISTS, and a wrong total with 400', async () => {
      const { outTradeNo, prepayId } = await prepay(500);
      const body = { out_trade_no: outTradeNo, out_refund_no: `${outTradeNo}X`, amount: { refund: 1, total: 500, currency: 'CNY' } };
      const unpaid = await t.merchant.request('POST', '/v3/refund/domestic/refunds', body);
      expect(unpaid.status).toBe(404);
      expect(unpaid.json.code).toBe('RESOURCE_NOT_EXISTS');
      await t.control.pay(prepayId);
      const wrongTotal = await t.merchant.request('POST', '/v3/refund/domestic/refunds', { ...body, amount: { refund: 1, total: 400, currency: 'CNY' } });
      expect(wrongTotal.status).toBe(400);
      const unknown = await t.merchant.request('GET', '/v3/refund/domestic/refunds/NOSUCHREFUND');
      expect(unknown.status).toBe(404);
    });

    it('answers 403 NOT_ENOUGH while the merchant balance is insufficient (control API), and refunds again after', async () => {
      const { outTradeNo, prepayId } = await prepay(800);
      await t.control.pay(prepayId);
      const body = { out_trade_no: outTradeNo, out_refund_no: `${outTradeNo}B`, amount: { refund: 100, total: 800, currency: 'CNY' } };
      await t.control.setInsufficientBalance(true);
      try {
        for (let i = 0; i < 2; i++) {
          const refused = await t.merchant.request('POST', '/v3/refund/domestic/refunds', body);
          expect(refused.status).toBe(403);
          expect(refused.json).toMatchObject({ code: 'NOT_ENOUGH', message: expect.stringContaining('余额不足') });
          expect(t.merchant.responseVerifies(refused)).toBe(true);
        }
      } finally {
        await t.control.setInsufficientBalance(false);
      }
      const ok = await t.merchant.request('POST', '/v3/refund/domestic/refunds', body);
      expect(ok.status).toBe(200);
      expect(ok.json.status).toBe('PROCESSING');
    });

    it('can make a refund end ABNORMAL', async () => {
      const { outTradeNo, prepayId } = await prepay(500);
      await t.control.pay(prepayId);
      await t.control.nextRefundOutcome('ABNORMAL');
      await t.merchant.request('POST', '/v3/refund/domestic/refunds', { out_trade_no: outTradeNo, out_refund_no: `${outTradeNo}A`, amount: { refund: 500, total: 500, currency: 'CNY' } });
      await new Promise((r) => setTimeout(r, 120));
      expect((await t.control.refund(`${outTradeNo}A`)).status).toBe('ABNORMAL');
    });
  });

  describe('certificates and bills', () => {
    describe('in certificate mode (a public-key-mode merchant has no certificate: 404, see sign-mode.e2e-spec.ts)', () => {
      let t: SandboxTestApp;
      beforeAll(async () => (t = await startSandboxApp({ env: { SANDBOX_SIGN_MODE: 'certificate' } })));
      afterAll(() => t?.close());

      it('serves the platform certificate encrypted with the APIv3 key', async () => {
        const res = await t.merchant.request('GET', '/v3/certificates');
        expect(res.status).toBe(200);
        const entry = res.json.data[0];
        expect(entry.serial_no).toBe(t.keystore.platform.serial);
        const data = Buffer.from(entry.encrypt_certificate.ciphertext, 'base64');
        const d = createDecipheriv('aes-256-gcm', Buffer.from(t.keystore.apiv3Key), Buffer.from(entry.encrypt_certificate.nonce));
        d.setAuthTag(data.subarray(data.length - 16));
        d.setAAD(Buffer.from(entry.encrypt_certificate.associated_data));
        const pem = Buffer.concat([d.update(data.subarray(0, data.length - 16)), d.final()]).toString();
        const cert = new X509Certificate(pem);
        expect(cert.serialNumber.toUpperCase()).toBe(t.keystore.platform.serial);
        // The validity is the certificate's own, not derived from the time of the call.
        const beijing = (text: string) => new Date(Date.parse(text) + 8 * 3600_000).toISOString().replace(/\.\d{3}Z$/, '+08:00');
        expect(entry.effective_time).toBe(beijing(cert.validFrom));
        expect(entry.expire_time).toBe(beijing(cert.validTo));
        await t.control.shiftClock(86400_000);
        try {
          const later = await t.merchant.request('GET', '/v3/certificates');
          expect(later.json.data[0]).toMatchObject({ effective_time: entry.effective_time, expire_time: entry.expire_time });
        } finally {
          await t.control.resetClock();
        }
      });
    });

    it('generates the day\'s trade bill in the real format, gzip, with the SHA-1 of the plain file', async () => {
      const { outTradeNo, prepayId } = await prepay(1234, 'o_bill');
      await t.control.pay(prepayId);
      const apply = await t.merchant.request('GET', `/v3/bill/tradebill?bill_date=${today()}&bill_type=ALL&tar_type=GZIP`);
      expect(apply.status).toBe(200);
      expect(apply.json).toMatchObject({ hash_type: 'SHA1', hash_value: expect.stringMatching(/^[0-9a-f]{40}$/) });
      const url = new URL(apply.json.download_url);
      expect(url.searchParams.get('tartype')).toBe('gzip');
      const file = await t.merchant.request('GET', url.pathname.replace('/sandbox', '') + url.search);
      expect(file.status).toBe(200);
      expect(file.headers.get('wechatpay-signature')).toBeNull();
      const plain = gunzipSync(file.raw);
      expect(createHash('sha1').update(plain).digest('hex')).toBe(apply.json.hash_value);
      const text = plain.toString('utf8');
      expect(text.startsWith('\uFEFF交易时间,公众账号ID,商户号')).toBe(true);
      expect(text).toContain('\r\n');
      const row = text.split('\r\n').find((line) => line.includes(outTradeNo))!;
      expect(row.startsWith('`')).toBe(true);
      expect(row.split(',`')[9]).toBe('SUCCESS');
      expect(row.split(',`')[12]).toBe('12.34');
      // The summary row is written like the protocol's sample: `45.0,`0.47,`0.14,`0.0,`0.08,`0.47,`0.14
      expect(text).toMatch(/总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n`\d+\.0,`\d+\.\d{1,2},`\d+\.\d{1,2},`0\.0,`\d+\.\d{1,5},`\d+\.\d{1,2},`\d+\.\d{1,2}\r\n$/);
    });

    it('serves the bill frozen when it was applied for: a payment before the download does not change it', async () => {
      const first = await prepay(501, 'o_frozen');
      await t.control.pay(first.prepayId);
      const plainApply = await t.merchant.request('GET', `/v3/bill/tradebill?bill_date=${today()}&bill_type=ALL`);
      const gzipApply = await t.merchant.request('GET', `/v3/bill/tradebill?bill_date=${today()}&bill_type=ALL&tar_type=GZIP`);
      const fundApply = await t.merchant.request('GET', `/v3/bill/fundflowbill?bill_date=${today()}`);
      const later = await prepay(702, 'o_frozen');
      await t.control.pay(later.prepayId);

      for (const apply of [plainApply, gzipApply, fundApply]) {
        expect(apply.status).toBe(200);
        const plain = await download(apply.json.download_url);
        expect(sha1(plain)).toBe(apply.json.hash_value);
        expect(plain.toString()).not.toContain(later.outTradeNo);
        // Downloading again within the URL's life gives the same file.
        expect(sha1(await download(apply.json.download_url))).toBe(apply.json.hash_value);
      }
      expect((await download(plainApply.json.download_url)).toString()).toContain(first.outTradeNo);

      const again = await t.merchant.request('GET', `/v3/bill/tradebill?bill_date=${today()}&bill_type=ALL`);
      expect(again.json.hash_value).not.toBe(plainApply.json.hash_value);
      const fresh = await download(again.json.download_url);
      expect(sha1(fresh)).toBe(again.json.hash_value);
      expect(fresh.toString()).toContain(later.outTradeNo);
    });

    it('rejects bad, future and empty bill dates, and expired download URLs', async () => {
      const bad = await t.merchant.request('GET', '/v3/bill/tradebill?bill_date=2026-13-45');
      expect(bad.status).toBe(400);
      const future = await t.merchant.request('GET', '/v3/bill/tradebill?bill_date=2999-01-01');
      expect(future.status).toBe(400);
      const empty = new Date(Date.now() - 30 * 86400_000 + 8 * 3600_000).toISOString().slice(0, 10);
      const none = await t.merchant.request('GET', `/v3/bill/tradebill?bill_date=${empty}`);
      expect(none.status).toBe(400);
      expect(none.json.code).toBe('NO_STATEMENT_EXIST');

      const apply = await t.merchant.request('GET', `/v3/bill/fundflowbill?bill_date=${today()}&account_type=BASIC`);
      expect(apply.status).toBe(200);
      const url = new URL(apply.json.download_url);
      const ok = await t.merchant.request('GET', url.pathname.replace('/sandbox', '') + url.search);
      expect(ok.text.startsWith('\uFEFF记账时间,微信支付业务单号')).toBe(true);
      await t.control.shiftClock(31_000);
      try {
        const expired = await t.merchant.request('GET', url.pathname.replace('/sandbox', '') + url.search);
        expect(expired.status).toBe(400);
        expect(expired.json.message).toContain('过期');
      } finally {
        await t.control.resetClock();
      }
    });
  });

  describe('registered bill files (control API)', () => {
    const plain = Buffer.from('\uFEFF交易时间,公众账号ID\r\n`2026-01-01 00:00:00,`wx\r\n总交易单数\r\n`1.0\r\n', 'utf8');

    it('serves a gzip inside DATA_DIR as the ALL trade bill of its date; the hash is over the plain file', async () => {
      const date = daysAgo(40);
      mkdirSync(join(t.dataDir, 'bills'), { recursive: true });
      const path = join(t.dataDir, 'bills', 'small.csv.gz');
      writeFileSync(path, gzipSync(plain));
      const registered = await t.control.registerTradeBill(date, path);
      expect(registered).toMatchObject({ hash: sha1(plain), bytes: plain.length });

      for (const tar of ['', '&tar_type=GZIP']) {
        const apply = await t.merchant.request('GET', `/v3/bill/tradebill?bill_date=${date}&bill_type=ALL${tar}`);
        expect(apply.status).toBe(200);
        expect(apply.json.hash_value).toBe(sha1(plain));
        const file = await download(apply.json.download_url);
        expect(sha1(file)).toBe(apply.json.hash_value);
        expect(file.equals(plain)).toBe(true);
      }
      // A path relative to DATA_DIR names the same file.
      expect(await t.control.registerTradeBill(date, 'bills/small.csv.gz')).toMatchObject({ hash: sha1(plain) });
    });

    it('refuses files outside DATA_DIR (absolute, .. escapes, symlinks out), non-gzip and missing files with 400', async () => {
      const outside = tempDir('whp-outside-');
      const outsideFile = join(outside, 'bill.csv.gz');
      writeFileSync(outsideFile, gzipSync(plain));
      symlinkSync(outsideFile, join(t.dataDir, 'link.csv.gz'));
      symlinkSync(outside, join(t.dataDir, 'linkdir'));
      writeFileSync(join(t.dataDir, 'not-gzip.csv'), plain);
      const register = async (path: string) => {
        const res = await control('POST', '/bills', { date: daysAgo(41), path });
        return { status: res.status, message: ((await res.json()) as { message: string }).message };
      };
      for (const path of [
        outsideFile,
        join(t.dataDir, '..', outside.split('/').pop()!, 'bill.csv.gz'),
        `../${outside.split('/').pop()}/bill.csv.gz`,
        join(t.dataDir, 'link.csv.gz'),
        'linkdir/bill.csv.gz',
        '/etc/passwd',
        t.dataDir,
      ]) {
        const res = await register(path);
        expect({ path, ...res }).toMatchObject({ status: 400, message: expect.stringContaining('outside DATA_DIR') });
      }
      expect(await register(join(t.dataDir, 'not-gzip.csv'))).toMatchObject({ status: 400, message: expect.stringContaining('not a gzip file') });
      expect(await register(join(t.dataDir, 'missing.csv.gz'))).toMatchObject({ status: 400, message: expect.stringContaining('does not exist') });
      expect(await register(join(t.dataDir, 'sandbox'))).toMatchObject({ status: 400, message: expect.stringContaining('not a regular file') });
      const none = await t.merchant.request('GET', `/v3/bill/tradebill?bill_date=${daysAgo(41)}`);
      expect(none.json.code).toBe('NO_STATEMENT_EXIST');
      rmSync(outside, { recursive: true, force: true });
    });
  });

  describe('faults and counts', () => {
    it('refuses faults for unknown endpoint names with 400 listing the valid ones', async () => {
      const res = await control('POST', '/faults', { endpoint: 'v3/pay/transaction/jsapi', kind: '500' });
      expect(res.status).toBe(400);
      const { message } = (await res.json()) as { message: string };
      expect(message).toContain('unknown endpoint "v3/pay/transaction/jsapi"');
      for (const name of ['v3/pay/transactions/jsapi', 'cgi-bin/token', 'connect/oauth2/authorize', 'jsbridge/pay', 'sandbox/pay']) expect(message).toContain(name);
      expect((await t.control.faultEndpoints()).browser).toEqual(['jsbridge/config', 'jsbridge/pay', 'sandbox/pay']);
      expect((await t.control.calls())['v3/pay/transaction/jsapi']).toBeUndefined();
    });

    it('fails the next calls with 500, 429 FREQUENCY_LIMITED, or holds them until the client gives up; counts every call', async () => {
      await t.control.resetCalls();
      await t.control.failNext('v3/pay/transactions/jsapi', '500');
      await t.control.failNext('v3/pay/transactions/jsapi', '429');
      await t.control.failNext('v3/pay/transactions/jsapi', 'timeout');
      const body = t.merchant.prepayBody(tradeNo(), 'o1', NOTIFY);
      const r1 = await t.merchant.request('POST', '/v3/pay/transactions/jsapi', body);
      expect(r1.status).toBe(500);
      expect(r1.json.code).toBe('SYSTEM_ERROR');
      const r2 = await t.merchant.request('POST', '/v3/pay/transactions/jsapi', body);
      expect(r2.status).toBe(429);
      expect(r2.json.code).toBe('FREQUENCY_LIMITED');
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), 300);
      await expect(
        fetch(`${t.baseUrl}/sandbox/v3/pay/transactions/jsapi`, { method: 'POST', body: '{}', signal: controller.signal }),
      ).rejects.toThrow();
      clearTimeout(timer);
      const r4 = await t.merchant.request('POST', '/v3/pay/transactions/jsapi', body);
      expect(r4.status).toBe(200);
      expect(await t.control.callsTo('v3/pay/transactions/jsapi')).toBe(4);
    });
  });
});

const BODY = JSON.stringify({ appid: 'wx', mchid: '1', description: 'x', out_trade_no: 'SIGNTEST01', notify_url: NOTIFY, amount: { total: 1 }, payer: { openid: 'o' } });

describe('sandbox queries without ?mchid', () => {
  let t: SandboxTestApp;
  beforeAll(async () => {
    t = await startSandboxApp();
  });
  afterAll(() => t?.close());

  it('a Pay query missing ?mchid answers 400 PARAM_ERROR saying it is missing, detail.location "query" (was: "mchid 与请求商户不一致" in the body)', async () => {
    for (const path of ['/v3/pay/transactions/out-trade-no/NOMCHID01', '/v3/pay/transactions/id/4200000000000000000000000000']) {
      const res = await t.merchant.request('GET', path);
      expect(res.status).toBe(400);
      expect(res.json).toMatchObject({ code: 'PARAM_ERROR', message: expect.stringContaining('必填'), detail: { field: 'mchid', location: 'query' } });
      expect(t.merchant.responseVerifies(res)).toBe(true);
    }
  });
});

describe('sandbox refunds with SANDBOX_OVER_REFUND_ERROR=INVALID_REQUEST', () => {
  let t: SandboxTestApp;
  beforeAll(async () => {
    t = await startSandboxApp({ env: { SANDBOX_OVER_REFUND_ERROR: 'INVALID_REQUEST' } });
  });
  afterAll(() => t?.close());

  it('answers 400 INVALID_REQUEST beyond the refundable amount, and still 403 NOT_ENOUGH for an insufficient balance', async () => {
    const no = tradeNo('OVR');
    const prepay = await t.merchant.request('POST', '/v3/pay/transactions/jsapi', t.merchant.prepayBody(no, 'o1', NOTIFY, 300));
    await t.control.pay(prepay.json.prepay_id);
    const refund = (outRefundNo: string, amount: number) =>
      t.merchant.request('POST', '/v3/refund/domestic/refunds', { out_trade_no: no, out_refund_no: outRefundNo, amount: { refund: amount, total: 300, currency: 'CNY' } });
    const tooMuch = await refund(`${no}R1`, 301);
    expect(tooMuch.status).toBe(400);
    expect(tooMuch.json).toMatchObject({ code: 'INVALID_REQUEST', message: expect.stringContaining('超过订单可退金额') });
    await t.control.setInsufficientBalance(true);
    const poor = await refund(`${no}R2`, 100);
    expect(poor.status).toBe(403);
    expect(poor.json.code).toBe('NOT_ENOUGH');
    await t.control.setInsufficientBalance(false);
    expect((await refund(`${no}R2`, 100)).status).toBe(200);
  });
});
