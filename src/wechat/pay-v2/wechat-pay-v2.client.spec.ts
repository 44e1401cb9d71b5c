import { createCipheriv, createHash, createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WechatPayApiError, WechatPayBadAnswerError } from '../pay/errors';
import { parseV2PaymentNotification, parseV2RefundNotification, v2NotificationAnswer } from './notifications';
import { WechatPayV2Client } from './wechat-pay-v2.client';

/*
 * Our v2 client against a test double of WeChat that signs with its own, independent code (a plain
 * sorted join and node:crypto), so a shared bug in sign.ts cannot make both sides agree.
 */
const KEY = '192006250b4c09247ec02edce69f6a2d';
const APPID = 'wxd930ea5d5a258f4f';
const MCHID = '10000100';

function doubleSign(fields: Record<string, string>, type: 'MD5' | 'HMAC-SHA256', key = KEY): string {
  const a = Object.keys(fields).filter((k) => k !== 'sign' && fields[k] !== '').sort().map((k) => `${k}=${fields[k]}`).join('&');
  const msg = `${a}&key=${key}`;
  return (type === 'MD5' ? createHash('md5').update(msg) : createHmac('sha256', key).update(msg)).digest('hex').toUpperCase();
}

function doubleParse(xml: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of xml.matchAll(/<(\w+)><!\[CDATA\[([\s\S]*?)\]\]><\/\1>/g)) out[m[1]] = m[2];
  return out;
}

function doubleXml(fields: Record<string, string>): string {
  return `<xml>${Object.entries(fields).map(([k, v]) => `<${k}><![CDATA[${v}]]></${k}>`).join('')}</xml>`;
}

type Handler = (path: string, fields: Record<string, string>) => { status?: number; body: string | Buffer };

describe('WechatPayV2Client against a signing test double', () => {
  let server: http.Server;
  let base: string;
  let handler: Handler;
  const received: Array<{ path: string; fields: Record<string, string>; contentType?: string }> = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const fields = doubleParse(Buffer.concat(chunks).toString('utf8'));
        received.push({ path: req.url!, fields, contentType: req.headers['content-type'] });
        const out = handler(req.url!, fields);
        res.writeHead(out.status ?? 200, { 'Content-Type': 'text/xml' });
        res.end(out.body);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  beforeEach(() => (received.length = 0));

  const client = (signType: 'MD5' | 'HMAC-SHA256' = 'MD5') =>
    new WechatPayV2Client({ appid: APPID, mchid: MCHID, apiKey: KEY, signType, baseUrl: base, timeoutMs: 2000, now: () => 1_700_000_000_000, nonce: () => 'ibuaiVcKdpRxkhJA' });

  /** A signed SUCCESS/SUCCESS answer with `extra` fields, signed with `type`. */
  const ok = (extra: Record<string, string>, type: 'MD5' | 'HMAC-SHA256' = 'MD5') => {
    const f: Record<string, string> = { return_code: 'SUCCESS', return_msg: 'OK', appid: APPID, mch_id: MCHID, nonce_str: 'n0nce', result_code: 'SUCCESS', ...extra };
    return { body: doubleXml({ ...f, sign: doubleSign(f, type) }) };
  };
  const fail = (errCode: string, des: string) => ok({ result_code: 'FAIL', err_code: errCode, err_code_des: des });

  it('unifiedorder JSAPI: sends signed XML with the fields WeChat requires and returns the prepay_id', async () => {
    handler = () => ok({ trade_type: 'JSAPI', prepay_id: 'wx201410272009395522657a690389285100' });
    const res = await client().unifiedOrder({
      tradeType: 'JSAPI', description: 'test', outTradeNo: 'T1', totalFee: 101, notifyUrl: 'https://shop.example/notify/wechatpay/v2/transaction',
      clientIp: '1.2.3.4', openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o', timeExpire: new Date('2026-01-02T03:04:05Z'),
    });
    expect(res).toEqual({ tradeType: 'JSAPI', prepayId: 'wx201410272009395522657a690389285100', codeUrl: undefined, mwebUrl: undefined });
    const sent = received[0];
    expect(sent.path).toBe('/pay/unifiedorder');
    expect(sent.contentType).toMatch(/xml/);
    expect(sent.fields).toMatchObject({ appid: APPID, mch_id: MCHID, total_fee: '101', trade_type: 'JSAPI', openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o', time_expire: '20260102110405', fee_type: 'CNY' });
    expect(sent.fields.sign_type).toBeUndefined();
    expect(sent.fields.sign).toBe(doubleSign(sent.fields, 'MD5'));
  });

  it('unifiedorder with HMAC-SHA256 sends sign_type and accepts an HMAC-signed answer; MWEB returns mweb_url, NATIVE code_url', async () => {
    handler = (_p, f) => ok(f.trade_type === 'MWEB' ? { trade_type: 'MWEB', prepay_id: 'p1', mweb_url: 'https://wx.tenpay.com/x' } : { trade_type: 'NATIVE', prepay_id: 'p2', code_url: 'weixin://wxpay/bizpayurl?pr=abc' }, 'HMAC-SHA256');
    const mweb = await client('HMAC-SHA256').unifiedOrder({ tradeType: 'MWEB', description: 'd', outTradeNo: 'T2', totalFee: 1, notifyUrl: 'https://n', clientIp: '1.2.3.4', sceneInfo: { h5_info: { type: 'Wap' } } });
    expect(mweb.mwebUrl).toBe('https://wx.tenpay.com/x');
    expect(received[0].fields.sign_type).toBe('HMAC-SHA256');
    expect(received[0].fields.sign).toBe(doubleSign(received[0].fields, 'HMAC-SHA256'));
    expect(JSON.parse(received[0].fields.scene_info)).toEqual({ h5_info: { type: 'Wap' } });
    const native = await client('HMAC-SHA256').unifiedOrder({ tradeType: 'NATIVE', description: 'd', outTradeNo: 'T3', totalFee: 1, notifyUrl: 'https://n', clientIp: '1.2.3.4', productId: 'P1' });
    expect(native.codeUrl).toBe('weixin://wxpay/bizpayurl?pr=abc');
    expect(received[1].fields.product_id).toBe('P1');
  });

  it('refuses a forged answer (signed with another key) and an unsigned one', async () => {
    handler = () => {
      const f: Record<string, string> = { return_code: 'SUCCESS', appid: APPID, mch_id: MCHID, result_code: 'SUCCESS', trade_type: 'JSAPI', prepay_id: 'forged' };
      return { body: doubleXml({ ...f, sign: doubleSign(f, 'MD5', 'another-key-another-key-another-') }) };
    };
    await expect(client().queryByOutTradeNo('T1')).rejects.toBeInstanceOf(WechatPayBadAnswerError);
    handler = () => ({ body: doubleXml({ return_code: 'SUCCESS', appid: APPID, mch_id: MCHID, result_code: 'SUCCESS', trade_state: 'SUCCESS' }) });
    await expect(client().queryByOutTradeNo('T1')).rejects.toThrow(/not signed/);
  });

  it('refuses an answer signed by us but naming another merchant', async () => {
    handler = () => ok({ mch_id: '999', trade_state: 'SUCCESS' });
    await expect(client().queryByOutTradeNo('T1')).rejects.toThrow(/mch_id 999/);
  });

  it('maps return_code FAIL and err_codes to the APIv3 errors (status and code) the business modules handle', async () => {
    const cases: Array<[ReturnType<Handler>, number, string]> = [
      [{ body: doubleXml({ return_code: 'FAIL', return_msg: '签名错误，请检查后再试' }) }, 401, 'SIGN_ERROR'],
      [fail('ORDERPAID', '该订单已支付'), 400, 'ORDER_PAID'],
      [fail('ORDERNOTEXIST', '订单不存在'), 404, 'ORDER_NOT_EXIST'],
      [fail('SYSTEMERROR', '系统错误'), 500, 'SYSTEM_ERROR'],
      [fail('FREQUENCY_LIMITED', '频率限制'), 429, 'FREQUENCY_LIMITED'],
      [fail('NOTENOUGH', '余额不足'), 403, 'NOT_ENOUGH'],
      [{ status: 503, body: 'busy' }, 503, 'SYSTEM_ERROR'],
    ];
    for (const [answer, status, code] of cases) {
      handler = () => answer;
      const error = await client().queryByOutTradeNo('T1').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(WechatPayApiError);
      expect([(error as WechatPayApiError).httpStatus, (error as WechatPayApiError).wechatCode]).toEqual([status, code]);
    }
  });

  it('orderquery returns the payment as an APIv3 Transaction', async () => {
    handler = () => ok({ trade_state: 'SUCCESS', out_trade_no: 'T1', transaction_id: '4200', total_fee: '101', cash_fee: '101', fee_type: 'CNY', openid: 'o1', time_end: '20260102110405', trade_type: 'JSAPI', bank_type: 'CFT' });
    const tx = await client().queryByOutTradeNo('T1');
    expect(tx).toMatchObject({ trade_state: 'SUCCESS', out_trade_no: 'T1', transaction_id: '4200', mchid: MCHID, appid: APPID, amount: { total: 101, payer_total: 101, currency: 'CNY' }, payer: { openid: 'o1' }, success_time: '2026-01-02T11:04:05+08:00' });
  });

  it('closeorder of a closed order succeeds again, of a paid one fails ORDER_PAID', async () => {
    handler = () => fail('ORDERCLOSED', '订单已关闭');
    await expect(client().closeOrder('T1')).resolves.toBeUndefined();
    handler = () => fail('ORDERPAID', '订单已支付');
    await expect(client().closeOrder('T1')).rejects.toMatchObject({ wechatCode: 'ORDER_PAID' });
  });

  it('refund posts to /secapi/pay/refund (PROCESSING) and refundquery finds its indexed entry', async () => {
    handler = (path, f) =>
      path === '/secapi/pay/refund'
        ? ok({ out_trade_no: f.out_trade_no, out_refund_no: f.out_refund_no, refund_id: '5000', refund_fee: f.refund_fee, total_fee: f.total_fee, transaction_id: '4200' })
        : ok({ out_trade_no: 'T1', transaction_id: '4200', total_fee: '101', refund_count: '2', out_refund_no_0: 'R0', refund_id_0: '4999', refund_fee_0: '1', refund_status_0: 'SUCCESS', out_refund_no_1: 'R1', refund_id_1: '5000', refund_fee_1: '50', refund_status_1: 'REFUNDCLOSE', refund_success_time_1: '2026-01-02 11:04:05' });
    const refund = await client().createRefund({ outTradeNo: 'T1', outRefundNo: 'R1', totalFee: 101, refundFee: 50, notifyUrl: 'https://shop/notify/wechatpay/v2/refund' });
    expect(refund).toMatchObject({ status: 'PROCESSING', refund_id: '5000', amount: { refund: 50, total: 101 } });
    expect(received[0]).toMatchObject({ path: '/secapi/pay/refund', fields: { refund_fee: '50', total_fee: '101', out_refund_no: 'R1' } });
    const queried = await client().queryRefund('R1');
    expect(queried).toMatchObject({ status: 'CLOSED', refund_id: '5000', amount: { refund: 50 }, success_time: '2026-01-02T11:04:05+08:00' });
  });

  it('refund over https refuses to go without the merchant certificate (mutual TLS)', async () => {
    const c = new WechatPayV2Client({ appid: APPID, mchid: MCHID, apiKey: KEY, signType: 'MD5', baseUrl: 'https://127.0.0.1:1', timeoutMs: 500, now: () => 0 });
    await expect(c.createRefund({ outTradeNo: 'T1', outRefundNo: 'R1', totalFee: 1, refundFee: 1 })).rejects.toThrow(/WECHATPAY_CERT_PATH/);
  });

  it('downloadbill: the text file as it came; "No Bill Exist" is NO_STATEMENT_EXIST (no trades that day)', async () => {
    handler = () => ({ body: '交易时间,公众账号ID\r\n`2026-01-02 11:04:05,`wx\r\n' });
    const chunks: Buffer[] = [];
    for await (const c of await client().downloadBill({ billDate: '2026-01-02' })) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString('utf8')).toContain('交易时间');
    expect(received[0].fields).toMatchObject({ bill_date: '20260102', bill_type: 'ALL' });
    handler = () => ({ body: doubleXml({ return_code: 'FAIL', return_msg: 'No Bill Exist', error_code: '20002' }) });
    await expect(client().downloadBill({ billDate: '2026-01-02' })).rejects.toMatchObject({ wechatCode: 'NO_STATEMENT_EXIST' });
  });

  describe('as a service provider (sub_mch_id)', () => {
    const SUB = '1900000109';
    const SUB_APPID = 'wx8888888888888888';
    const sub = { subMchid: SUB };

    it('unifiedorder names the provider (appid, mch_id), sub_mch_id, and the payer as openid under appid or sub_appid + sub_openid', async () => {
      handler = (_p, f) => ok({ sub_mch_id: f.sub_mch_id, ...(f.sub_appid ? { sub_appid: f.sub_appid } : {}), trade_type: 'JSAPI', prepay_id: 'wx_sp' });
      const base = { tradeType: 'JSAPI' as const, description: 'd', outTradeNo: 'T9', totalFee: 1, notifyUrl: 'https://n', clientIp: '1.2.3.4', merchant: sub };
      await client().unifiedOrder({ ...base, openid: 'o_sp' });
      expect(received[0].fields).toMatchObject({ appid: APPID, mch_id: MCHID, sub_mch_id: SUB, openid: 'o_sp' });
      expect(received[0].fields.sub_appid).toBeUndefined();
      expect(received[0].fields.sign).toBe(doubleSign(received[0].fields, 'MD5'));
      await client().unifiedOrder({ ...base, subAppid: SUB_APPID, subOpenid: 'o_sub' });
      expect(received[1].fields).toMatchObject({ appid: APPID, mch_id: MCHID, sub_mch_id: SUB, sub_appid: SUB_APPID, sub_openid: 'o_sub' });
      expect(received[1].fields.openid).toBeUndefined();
      await expect(client().unifiedOrder({ ...base, merchant: undefined, subAppid: SUB_APPID, subOpenid: 'o_sub' })).rejects.toThrow(/service provider/);
      await expect(client().unifiedOrder({ ...base, subOpenid: 'o_sub' })).rejects.toThrow(/sub_appid/);
    });

    it('orderquery, closeorder, refund, refundquery and downloadbill send sub_mch_id; the trade comes back with sub_mchid and the payer under sub_appid', async () => {
      handler = (path, f) => {
        if (path === '/pay/downloadbill') return { body: '交易时间\r\n' };
        if (path === '/pay/orderquery') return ok({ sub_mch_id: f.sub_mch_id, sub_appid: SUB_APPID, trade_state: 'SUCCESS', out_trade_no: 'T9', transaction_id: '4200', total_fee: '1', openid: 'o_sp', sub_openid: 'o_sub', time_end: '20260102110405' });
        if (path === '/secapi/pay/refund') return ok({ sub_mch_id: f.sub_mch_id, out_trade_no: 'T9', out_refund_no: 'R9', refund_id: '5000', refund_fee: '1', total_fee: '1' });
        if (path === '/pay/refundquery') return ok({ sub_mch_id: f.sub_mch_id, out_trade_no: 'T9', total_fee: '1', refund_count: '1', out_refund_no_0: 'R9', refund_id_0: '5000', refund_fee_0: '1', refund_status_0: 'PROCESSING' });
        return ok({ sub_mch_id: f.sub_mch_id });
      };
      const tx = await client().queryByOutTradeNo('T9', undefined, sub);
      expect(tx).toMatchObject({ mchid: MCHID, sub_mchid: SUB, appid: SUB_APPID, payer: { openid: 'o_sub' } });
      await client().closeOrder('T9', undefined, sub);
      await client().createRefund({ outTradeNo: 'T9', outRefundNo: 'R9', totalFee: 1, refundFee: 1, merchant: sub });
      await client().queryRefund('R9', sub);
      for await (const _ of await client().downloadBill({ billDate: '2026-01-02', merchant: sub })) void _;
      expect(received.map((r) => [r.path, r.fields.mch_id, r.fields.sub_mch_id])).toEqual(
        ['/pay/orderquery', '/pay/closeorder', '/secapi/pay/refund', '/pay/refundquery', '/pay/downloadbill'].map((path) => [path, MCHID, SUB]),
      );
      // A direct call names no sub-merchant.
      handler = () => ok({ trade_state: 'NOTPAY', out_trade_no: 'T1' });
      expect((await client().queryByOutTradeNo('T1')).sub_mchid).toBeUndefined();
      expect(received.at(-1)!.fields.sub_mch_id).toBeUndefined();
    });

    it("refuses a signed answer about another sub-merchant, a provider's answer without sub_mch_id, and a sub-merchant's answer to a direct call", async () => {
      handler = () => ok({ sub_mch_id: '1900000110', trade_state: 'SUCCESS' });
      await expect(client().queryByOutTradeNo('T9', undefined, sub)).rejects.toThrow(/sub_mch_id 1900000110/);
      handler = () => ok({ trade_state: 'SUCCESS' });
      await expect(client().queryByOutTradeNo('T9', undefined, sub)).rejects.toBeInstanceOf(WechatPayBadAnswerError);
      handler = () => ok({ sub_mch_id: SUB, trade_state: 'SUCCESS' });
      await expect(client().queryByOutTradeNo('T9')).rejects.toBeInstanceOf(WechatPayBadAnswerError);
      // A refusal need not name it (WeChat's error answers are about the request).
      handler = () => fail('ORDERNOTEXIST', '订单不存在');
      await expect(client().queryByOutTradeNo('T9', undefined, sub)).rejects.toMatchObject({ httpStatus: 404, wechatCode: 'ORDER_NOT_EXIST' });
    });

    it('orderquery of a trade paid under sub_appid names it; the trade is under that appid even when the answer does not repeat it, and one naming another is refused', async () => {
      const withSub = { subMchid: SUB, subAppid: SUB_APPID };
      handler = (_p, f) => ok({ sub_mch_id: f.sub_mch_id, trade_state: 'NOTPAY', out_trade_no: 'T9' });
      expect(await client().queryByOutTradeNo('T9', undefined, withSub)).toMatchObject({ appid: SUB_APPID, sub_mchid: SUB });
      expect(received[0].fields).toMatchObject({ appid: APPID, sub_appid: SUB_APPID, sub_mch_id: SUB });
      handler = (_p, f) => ok({ sub_mch_id: f.sub_mch_id, sub_appid: 'wx0000000000000000', trade_state: 'NOTPAY', out_trade_no: 'T9' });
      await expect(client().queryByOutTradeNo('T9', undefined, withSub)).rejects.toThrow(/sub_appid wx0000000000000000/);
    });

    it('paySign over the sub_appid when the payer is a sub_openid, with the same (provider) key', () => {
      const c = client('HMAC-SHA256');
      const params = c.buildJsapiInvokeParams('wx_sp', 1395712654, 'nonce', SUB_APPID);
      const unsigned = { appId: SUB_APPID, timeStamp: '1395712654', nonceStr: 'nonce', package: 'prepay_id=wx_sp', signType: 'HMAC-SHA256' };
      expect(params).toEqual({ ...unsigned, paySign: doubleSign(unsigned, 'HMAC-SHA256') });
    });
  });

  it('JSAPI invoke parameters: paySign over appId, nonceStr, package, signType, timeStamp (documented vector)', () => {
    const c = new WechatPayV2Client({ appid: 'wx2421b1c4370ec43b', mchid: MCHID, apiKey: KEY, signType: 'HMAC-SHA256', baseUrl: base, timeoutMs: 1, now: () => 0 });
    expect(c.buildJsapiInvokeParams('wx201410272009395522657a690389285100', 1395712654, 'e61463f8efa94090b1f366cccfbbb444')).toEqual({
      appId: 'wx2421b1c4370ec43b', timeStamp: '1395712654', nonceStr: 'e61463f8efa94090b1f366cccfbbb444',
      package: 'prepay_id=wx201410272009395522657a690389285100', signType: 'HMAC-SHA256',
      paySign: 'D3C8EC2BB7A501F85B7FE93E298F4CD23C7E8D90F37DF45D716DF18AE7B65F72',
    });
  });
});

describe('APIv2 notifications', () => {
  const keys = { appid: APPID, mchid: MCHID, apiKey: KEY, signType: 'MD5' as const };
  const paid = { return_code: 'SUCCESS', appid: APPID, mch_id: MCHID, nonce_str: 'n', result_code: 'SUCCESS', openid: 'o1', trade_type: 'JSAPI', bank_type: 'CFT', total_fee: '101', fee_type: 'CNY', cash_fee: '101', transaction_id: '4200', out_trade_no: 'T1', time_end: '20260102110405' };

  it('a payment notification signed with the key is read as a SUCCESS Transaction', () => {
    const { transaction } = parseV2PaymentNotification(doubleXml({ ...paid, sign: doubleSign(paid, 'MD5') }), keys);
    expect(transaction).toMatchObject({ trade_state: 'SUCCESS', out_trade_no: 'T1', transaction_id: '4200', amount: { total: 101 } });
  });

  it('an HMAC-SHA256 notification naming its sign_type verifies', () => {
    const f = { ...paid, sign_type: 'HMAC-SHA256' };
    expect(parseV2PaymentNotification(doubleXml({ ...f, sign: doubleSign(f, 'HMAC-SHA256') }), keys).transaction.out_trade_no).toBe('T1');
  });

  it('refuses an unsigned, wrongly signed or amount-tampered notification', () => {
    expect(() => parseV2PaymentNotification(doubleXml(paid), keys)).toThrow(/sign/);
    expect(() => parseV2PaymentNotification(doubleXml({ ...paid, sign: doubleSign(paid, 'MD5', 'x') }), keys)).toThrow(/sign/);
    expect(() => parseV2PaymentNotification(doubleXml({ ...paid, total_fee: '1', sign: doubleSign(paid, 'MD5') }), keys)).toThrow(/sign/);
  });

  it('passes a correctly signed notification for another merchant or in another currency on as it is (the applier flags it ANOMALY, as for APIv3); refuses a non-integer amount', () => {
    const other = { ...paid, mch_id: '1' };
    expect(parseV2PaymentNotification(doubleXml({ ...other, sign: doubleSign(other, 'MD5') }), keys).transaction).toMatchObject({ mchid: '1', trade_state: 'SUCCESS' });
    const usd = { ...paid, fee_type: 'USD' };
    expect(parseV2PaymentNotification(doubleXml({ ...usd, sign: doubleSign(usd, 'MD5') }), keys).transaction.amount).toMatchObject({ currency: 'USD' });
    const frac = { ...paid, total_fee: '1.01' };
    expect(() => parseV2PaymentNotification(doubleXml({ ...frac, sign: doubleSign(frac, 'MD5') }), keys)).toThrow(/total_fee/);
  });

  it("a provider's notification keeps sub_mchid, the payer's appid (sub_appid) and sub_openid for the one ownership check; its refund notification keeps sub_mch_id", () => {
    const sp = { ...paid, sub_mch_id: '1900000109', sub_appid: 'wx8888888888888888', sub_openid: 'o_sub', sub_is_subscribe: 'N' };
    const { transaction } = parseV2PaymentNotification(doubleXml({ ...sp, sign: doubleSign(sp, 'MD5') }), keys);
    expect(transaction).toMatchObject({ mchid: MCHID, sub_mchid: '1900000109', appid: 'wx8888888888888888', payer: { openid: 'o_sub' } });
    const spOpenid = { ...paid, sub_mch_id: '1900000109' };
    expect(parseV2PaymentNotification(doubleXml({ ...spOpenid, sign: doubleSign(spOpenid, 'MD5') }), keys).transaction).toMatchObject({ appid: APPID, sub_mchid: '1900000109', payer: { openid: 'o1' } });
    const root = '<root><out_refund_no>R1</out_refund_no><out_trade_no>T1</out_trade_no><refund_id>5000</refund_id><refund_fee>50</refund_fee><total_fee>101</total_fee><refund_status>SUCCESS</refund_status></root>';
    const c = createCipheriv('aes-256-ecb', Buffer.from(createHash('md5').update(KEY).digest('hex'), 'utf8'), null);
    const reqInfo = Buffer.concat([c.update(root, 'utf8'), c.final()]).toString('base64');
    const { refund } = parseV2RefundNotification(doubleXml({ return_code: 'SUCCESS', appid: APPID, mch_id: MCHID, sub_mch_id: '1900000109', nonce_str: 'n', req_info: reqInfo }), keys);
    expect(refund).toMatchObject({ mchid: MCHID, sub_mchid: '1900000109', out_refund_no: 'R1' });
  });

  it('refuses an XXE notification before reading any field', () => {
    expect(() => parseV2PaymentNotification('<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><a>&x;</a></xml>', keys)).toThrow(/document type/);
  });

  it('decrypts a refund notification req_info (AES-256-ECB, key = lowercase hex MD5 of the API key)', () => {
    const root = '<root><out_refund_no><![CDATA[R1]]></out_refund_no><out_trade_no><![CDATA[T1]]></out_trade_no><refund_id><![CDATA[5000]]></refund_id><refund_fee><![CDATA[50]]></refund_fee><total_fee><![CDATA[101]]></total_fee><settlement_refund_fee><![CDATA[50]]></settlement_refund_fee><refund_status><![CDATA[SUCCESS]]></refund_status><success_time><![CDATA[2026-01-02 11:04:05]]></success_time><refund_recv_accout><![CDATA[支付用户零钱]]></refund_recv_accout><transaction_id><![CDATA[4200]]></transaction_id></root>';
    const aesKey = Buffer.from(createHash('md5').update(KEY).digest('hex'), 'utf8');
    const c = createCipheriv('aes-256-ecb', aesKey, null);
    const reqInfo = Buffer.concat([c.update(root, 'utf8'), c.final()]).toString('base64');
    const { refund } = parseV2RefundNotification(doubleXml({ return_code: 'SUCCESS', appid: APPID, mch_id: MCHID, nonce_str: 'n', req_info: reqInfo }), keys);
    expect(refund).toMatchObject({ out_refund_no: 'R1', refund_status: 'SUCCESS', amount: { refund: 50, total: 101 }, success_time: '2026-01-02T11:04:05+08:00', user_received_account: '支付用户零钱' });
    expect(() => parseV2RefundNotification(doubleXml({ return_code: 'SUCCESS', appid: APPID, mch_id: MCHID, req_info: reqInfo }), { ...keys, apiKey: 'x'.repeat(32) })).toThrow(/decrypted/);
  });

  it('answers WeChat exactly as documented', () => {
    expect(v2NotificationAnswer(true)).toBe('<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>');
    expect(v2NotificationAnswer(false, 'sign does not match')).toBe('<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[sign does not match]]></return_msg></xml>');
  });
});
