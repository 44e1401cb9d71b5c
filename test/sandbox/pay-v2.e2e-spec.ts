import { createDecipheriv, createHash } from 'node:crypto';
import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sandboxApiV2Key } from '../../src/sandbox/keystore';
import { generateSandboxTls } from '../../src/sandbox/keystore-tls';
import { WechatPayApiError } from '../../src/wechat/pay/errors';
import { parseV2PaymentNotification, parseV2RefundNotification, v2NotificationAnswer } from '../../src/wechat/pay-v2/notifications';
import { signV2 } from '../../src/wechat/pay-v2/sign';
import { parseV2Xml } from '../../src/wechat/pay-v2/xml';
import { WechatPayV2Client } from '../../src/wechat/pay-v2/wechat-pay-v2.client';
import { selfMadeCertificate, tlsPost } from '../helpers/mtls';
import { SandboxTestApp, startSandboxApp, tradeNo } from './sandbox-app';

/*
 * The sandbox's APIv2 front (issue 14) driven by our own v2 client and by raw XML: it checks what
 * WeChat checks, signs its answers, and works on the same transactions as the v3 front.
 */
describe('sandbox APIv2 front', () => {
  let t: SandboxTestApp;
  let key: string;
  let notify: Server;
  let notifyUrl: string;
  const received: Array<{ path: string; body: string }> = [];
  let answerOk = true;

  // The calls needing the merchant certificate go to the mutual-TLS port with apiclient_cert.pem, the sandbox CA trusted.
  const client = (signType: 'MD5' | 'HMAC-SHA256' = 'HMAC-SHA256', apiKey = key) =>
    new WechatPayV2Client({
      appid: t.keystore.appid,
      mchid: t.keystore.mchid,
      apiKey,
      signType,
      baseUrl: `${t.baseUrl}/sandbox`,
      secureBaseUrl: t.secapiBase,
      clientCert: { certPem: t.tls.merchantCertificatePem, keyPem: t.keystore.merchant.privateKeyPem, trustedCaPem: t.tls.ca.certificatePem },
      timeoutMs: 5000,
      now: () => Date.now(),
    });

  const merchantTls = () => ({ ca: t.tls.ca.certificatePem, cert: t.tls.merchantCertificatePem, key: t.keystore.merchant.privateKeyPem });

  async function post(path: string, xml: string): Promise<{ status: number; text: string; fields: Record<string, string> }> {
    const res = await fetch(`${t.baseUrl}${path}`, { method: 'POST', headers: { 'Content-Type': 'text/xml' }, body: xml });
    const text = await res.text();
    return { status: res.status, text, fields: text.startsWith('<xml') ? parseV2Xml(text) : {} };
  }

  function signedXml(fields: Record<string, string>, signType: 'MD5' | 'HMAC-SHA256' = 'MD5', apiKey = key): string {
    const all = { appid: t.keystore.appid, mch_id: t.keystore.mchid, nonce_str: 'n0nce', ...(signType === 'MD5' ? {} : { sign_type: signType }), ...fields };
    const sign = signV2(all, apiKey, signType);
    return `<xml>${Object.entries({ ...all, sign }).map(([k, v]) => `<${k}><![CDATA[${v}]]></${k}>`).join('')}</xml>`;
  }

  const order = (no: string, total = 101) => ({
    tradeType: 'JSAPI' as const, description: '沙箱 v2 商品', outTradeNo: no, totalFee: total, notifyUrl: `${notifyUrl}/transaction`, clientIp: '127.0.0.1', openid: 'o_v2_payer',
  });

  beforeAll(async () => {
    t = await startSandboxApp({ env: { SANDBOX_TIME_SCALE: '100', SANDBOX_REFUND_DELAY: '1s', SANDBOX_NOTIFY_TIMEOUT: '500ms' } });
    key = sandboxApiV2Key(t.keystore);
    notify = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ path: req.url!, body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(200, { 'Content-Type': 'text/xml' });
        res.end(v2NotificationAnswer(answerOk, answerOk ? 'OK' : 'not yet'));
      });
    });
    await new Promise<void>((r) => notify.listen(0, '127.0.0.1', r));
    notifyUrl = `http://127.0.0.1:${(notify.address() as AddressInfo).port}/notify/wechatpay/v2`;
  });
  afterAll(async () => {
    await t?.close();
    notify?.closeAllConnections();
    await new Promise<void>((r) => (notify ? notify.close(() => r()) : r()));
  });
  beforeEach(() => {
    received.length = 0;
    answerOk = true;
  });

  it('the keystore has a 32-character APIv2 key', () => {
    expect(key).toMatch(/^[0-9A-Za-z]{32}$/);
  });

  it('unifiedorder JSAPI (HMAC-SHA256 and MD5) gives a prepay_id whose order the v3 query sees, and a repeated call the same prepay_id', async () => {
    const no = tradeNo('V2U');
    const first = await client().unifiedOrder(order(no));
    expect(first.prepayId).toMatch(/^wx/);
    expect((await client('MD5').unifiedOrder(order(no))).prepayId).toBe(first.prepayId);
    const v3 = await t.merchant.request('GET', `/v3/pay/transactions/out-trade-no/${no}?mchid=${t.keystore.mchid}`);
    expect(v3.status).toBe(200);
    expect(v3.json).toMatchObject({ out_trade_no: no, trade_state: 'NOTPAY', amount: { total: 101 } });
  });

  it('an order prepaid with v2 and paid in the cashier is SUCCESS in the v2 query and notified as signed v2 XML, acknowledged by return_code SUCCESS', async () => {
    const no = tradeNo('V2P');
    const { prepayId } = await client('HMAC-SHA256').unifiedOrder(order(no, 250));
    expect((await t.control.pay(prepayId)).status).toBe(200);
    const tx = await client().queryByOutTradeNo(no);
    expect(tx).toMatchObject({ trade_state: 'SUCCESS', out_trade_no: no, amount: { total: 250 }, payer: { openid: 'o_v2_payer' } });
    expect(tx.transaction_id).toMatch(/^42000/);
    expect(tx.success_time).toMatch(/\+08:00$/);
    const attempts = await t.control.waitForNotification({ outTradeNo: no });
    expect(attempts.filter((a) => a.ok)).toHaveLength(1);
    const body = received.find((r) => r.path.endsWith('/transaction'))!.body;
    expect(body).toContain('<sign_type><![CDATA[HMAC-SHA256]]></sign_type>');
    const parsed = parseV2PaymentNotification(body, { appid: t.keystore.appid, mchid: t.keystore.mchid, apiKey: key, signType: 'HMAC-SHA256' });
    expect(parsed.transaction).toMatchObject({ out_trade_no: no, trade_state: 'SUCCESS', transaction_id: tx.transaction_id, amount: { total: 250 } });
  });

  it('a v2 notification answered FAIL is sent again (not acknowledged by HTTP 200 alone)', async () => {
    answerOk = false;
    const no = tradeNo('V2R');
    const { prepayId } = await client().unifiedOrder(order(no));
    await t.control.pay(prepayId);
    const attempts = await t.control.waitForNotification({ outTradeNo: no }, (a) => a.length >= 2);
    expect(attempts.every((a) => !a.ok && a.status === 200)).toBe(true);
    answerOk = true;
    await t.control.waitForNotification({ outTradeNo: no }, (a) => a.some((x) => x.ok), 15_000);
  });

  it('refund over /secapi/pay/refund, refundquery, and the refund notification with req_info decrypting with MD5(key)', async () => {
    const no = tradeNo('V2F');
    const { prepayId } = await client().unifiedOrder(order(no, 300));
    await t.control.pay(prepayId);
    const outRefundNo = `${no}R1`;
    const refund = await client().createRefund({ outTradeNo: no, outRefundNo, totalFee: 300, refundFee: 120, notifyUrl: `${notifyUrl}/refund` });
    expect(refund).toMatchObject({ status: 'PROCESSING', out_refund_no: outRefundNo, amount: { refund: 120, total: 300 } });
    await t.control.waitForNotification({ outRefundNo });
    const done = await client().queryRefund(outRefundNo);
    expect(done).toMatchObject({ status: 'SUCCESS', refund_id: refund.refund_id, amount: { refund: 120 } });
    const body = received.find((r) => r.path.endsWith('/refund'))!.body;
    const note = parseV2RefundNotification(body, { appid: t.keystore.appid, mchid: t.keystore.mchid, apiKey: key, signType: 'HMAC-SHA256' });
    expect(note.refund).toMatchObject({ out_refund_no: outRefundNo, out_trade_no: no, refund_status: 'SUCCESS', amount: { refund: 120, total: 300 } });
    // Independently of our parser: AES-256-ECB with the lowercase hex MD5 of the key.
    const reqInfo = /<req_info><!\[CDATA\[([^\]]+)\]\]>/.exec(body)![1];
    const d = createDecipheriv('aes-256-ecb', Buffer.from(createHash('md5').update(key).digest('hex')), null);
    expect(Buffer.concat([d.update(Buffer.from(reqInfo, 'base64')), d.final()]).toString()).toContain(`<out_refund_no><![CDATA[${outRefundNo}]]></out_refund_no>`);
    // The v3 front sees the same refund.
    const v3 = await t.merchant.request('GET', `/v3/refund/domestic/refunds/${outRefundNo}`);
    expect(v3.json).toMatchObject({ status: 'SUCCESS', amount: { refund: 120 } });
  });

  it('closeorder closes an unpaid order (again: ORDERCLOSED, which our client takes as done); a paid one is ORDERPAID', async () => {
    const no = tradeNo('V2C');
    await client().unifiedOrder(order(no));
    await client().closeOrder(no);
    expect((await client().queryByOutTradeNo(no)).trade_state).toBe('CLOSED');
    const again = await post('/sandbox/pay/closeorder', signedXml({ out_trade_no: no }));
    expect(again.fields).toMatchObject({ return_code: 'SUCCESS', result_code: 'FAIL', err_code: 'ORDERCLOSED' });
    await expect(client().closeOrder(no)).resolves.toBeUndefined();
    const paid = tradeNo('V2D');
    await t.control.pay((await client().unifiedOrder(order(paid))).prepayId);
    await expect(client().closeOrder(paid)).rejects.toMatchObject({ wechatCode: 'ORDER_PAID', httpStatus: 400 });
  });

  it('orderquery of an unknown order is ORDERNOTEXIST (our client: 404 ORDER_NOT_EXIST, as v3)', async () => {
    const error = await client().queryByOutTradeNo(tradeNo('V2N')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WechatPayApiError);
    expect(error).toMatchObject({ httpStatus: 404, wechatCode: 'ORDER_NOT_EXIST' });
  });

  it('counts every v2 call and plays control-API faults as WeChat says them: 500 → SYSTEMERROR, 429 → FREQUENCY_LIMITED (signed, our client: the v3 errors), bills return_code FAIL', async () => {
    await t.control.resetCalls();
    const no = tradeNo('V2F');
    await t.control.failNext('pay/unifiedorder', '500', 1);
    await expect(client().unifiedOrder(order(no))).rejects.toMatchObject({ httpStatus: 500, wechatCode: 'SYSTEM_ERROR' });
    expect((await client().unifiedOrder(order(no))).prepayId).toMatch(/^wx/);
    await t.control.failNext('pay/orderquery', '429', 1);
    await expect(client().queryByOutTradeNo(no)).rejects.toMatchObject({ httpStatus: 429, wechatCode: 'FREQUENCY_LIMITED' });
    expect((await client('MD5').queryByOutTradeNo(no)).trade_state).toBe('NOTPAY');
    await t.control.failNext('pay/downloadbill', '500', 1);
    const today = new Date(Date.now() + 8 * 3600_000).toISOString().slice(0, 10);
    await expect(client().downloadBill({ billDate: today })).rejects.toMatchObject({ wechatCode: 'SYSTEM_ERROR' });
    expect(await t.control.calls()).toMatchObject({ 'pay/unifiedorder': 2, 'pay/orderquery': 2, 'pay/downloadbill': 1 });
    expect(await t.control.callsTo('v3/pay/transactions/jsapi')).toBe(0);
    expect((await t.control.faultEndpoints()).payV2).toEqual(expect.arrayContaining(['pay/unifiedorder', 'secapi/pay/refund', 'pay/downloadfundflow']));
  });

  it('refuses a request signed with another key: return_code FAIL 签名错误, nothing created', async () => {
    const no = tradeNo('V2S');
    const res = await post('/sandbox/pay/unifiedorder', signedXml({ body: 'x', out_trade_no: no, total_fee: '1', spbill_create_ip: '1.2.3.4', notify_url: notifyUrl, trade_type: 'JSAPI', openid: 'o' }, 'MD5', 'x'.repeat(32)));
    expect(res.fields).toEqual({ return_code: 'FAIL', return_msg: '签名错误，请检查后再试' });
    const v3 = await t.merchant.request('GET', `/v3/pay/transactions/out-trade-no/${no}?mchid=${t.keystore.mchid}`);
    expect(v3.status).toBe(404);
  });

  it('refuses unsigned, malformed and XXE requests, another merchant and an unknown sign_type with return_code FAIL', async () => {
    expect((await post('/sandbox/pay/orderquery', `<xml><appid>${t.keystore.appid}</appid><mch_id>${t.keystore.mchid}</mch_id><nonce_str>n</nonce_str><out_trade_no>X</out_trade_no></xml>`)).fields).toMatchObject({ return_code: 'FAIL', return_msg: '缺少参数 sign' });
    expect((await post('/sandbox/pay/orderquery', '<xml><appid>')).fields).toEqual({ return_code: 'FAIL', return_msg: 'XML格式错误' });
    expect((await post('/sandbox/pay/orderquery', '<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><appid>&x;</appid></xml>')).fields).toEqual({ return_code: 'FAIL', return_msg: 'XML格式错误' });
    expect((await post('/sandbox/pay/orderquery', signedXml({ out_trade_no: 'X', mch_id: '1900000000' }))).fields.return_code).toBe('FAIL');
    expect((await post('/sandbox/pay/orderquery', signedXml({ out_trade_no: 'X', sign_type: 'SHA1' }))).fields).toEqual({ return_code: 'FAIL', return_msg: 'sign_type参数格式错误' });
  });

  it('answers are signed with the request sign type and lack nothing a verifier needs', async () => {
    const res = await post('/sandbox/pay/orderquery', signedXml({ out_trade_no: tradeNo('V2Q') }, 'HMAC-SHA256'));
    expect(res.fields).toMatchObject({ return_code: 'SUCCESS', result_code: 'FAIL', err_code: 'ORDERNOTEXIST', appid: t.keystore.appid, mch_id: t.keystore.mchid });
    expect(res.fields.sign).toBe(signV2(res.fields, key, 'HMAC-SHA256'));
  });

  it('unifiedorder MWEB answers mweb_url, NATIVE code_url (product_id required), on the same orders the v3 query reads; APP is refused (NOAUTH)', async () => {
    const h5 = tradeNo('V2H');
    const mweb = await client().unifiedOrder({ ...order(h5), tradeType: 'MWEB', openid: undefined, sceneInfo: { h5_info: { type: 'Wap', wap_url: 'https://shop.example', wap_name: 'shop' } } });
    expect(mweb.mwebUrl).toContain('/h5pay?prepay_id=');
    expect((await client().queryByOutTradeNo(h5)).trade_state).toBe('NOTPAY');
    const native = tradeNo('V2N');
    const qr = await client().unifiedOrder({ ...order(native), tradeType: 'NATIVE', openid: undefined, productId: 'P1' });
    expect(qr.codeUrl).toMatch(/^weixin:\/\/wxpay\/bizpayurl\?pr=/);
    const v3 = await t.merchant.request('GET', `/v3/pay/transactions/out-trade-no/${native}?mchid=${t.keystore.mchid}`);
    expect(v3.json).toMatchObject({ out_trade_no: native, trade_state: 'NOTPAY' });
    const noProduct = await post('/sandbox/pay/unifiedorder', signedXml({ body: 'x', out_trade_no: tradeNo('V2X'), total_fee: '1', spbill_create_ip: '1.2.3.4', notify_url: notifyUrl, trade_type: 'NATIVE' }));
    expect(noProduct.fields).toEqual({ return_code: 'FAIL', return_msg: 'trade_type=NATIVE时，product_id为必填参数' });
    const app = await post('/sandbox/pay/unifiedorder', signedXml({ body: 'x', out_trade_no: tradeNo('V2A'), total_fee: '1', spbill_create_ip: '1.2.3.4', notify_url: notifyUrl, trade_type: 'APP' }));
    expect(app.fields).toMatchObject({ return_code: 'SUCCESS', result_code: 'FAIL', err_code: 'NOAUTH' });
  });

  it('the JS bridge accepts a v2 paySign (MD5 / HMAC-SHA256) for a v2 prepay, refuses a wrong one and a sign type other than the prepay\'s', async () => {
    const bridge = (params: Record<string, string>) =>
      fetch(`${t.baseUrl}/sandbox/jsbridge/pay`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ url: `${t.baseUrl}/pay.html`, params }) }).then((r) => r.json());
    const no = tradeNo('V2J');
    const { prepayId } = await client('HMAC-SHA256').unifiedOrder(order(no));
    const params = { ...client('HMAC-SHA256').buildJsapiInvokeParams(prepayId) };
    expect(await bridge(params)).toEqual({ ok: true, prepayId });
    expect(await bridge({ ...params, paySign: params.paySign.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) })).toMatchObject({ ok: false, errDesc: expect.stringContaining('支付验证签名失败') });
    const md5 = { ...client('MD5').buildJsapiInvokeParams(prepayId) };
    expect(await bridge(md5)).toMatchObject({ ok: false, errDesc: expect.stringContaining('signType 与下单时不一致') });
  });

  it('downloadbill: the day\'s trade bill as text, and "No Bill Exist" for a day without trades', async () => {
    const no = tradeNo('V2B');
    await t.control.pay((await client().unifiedOrder(order(no, 77))).prepayId);
    const today = new Date(Date.now() + 8 * 3600_000).toISOString().slice(0, 10);
    const chunks: Buffer[] = [];
    for await (const c of await client().downloadBill({ billDate: today })) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString('utf8')).toContain(`\`${no}`);
    const yesterday = new Date(Date.now() + 8 * 3600_000 - 40 * 24 * 3600_000).toISOString().slice(0, 10);
    await expect(client().downloadBill({ billDate: yesterday })).rejects.toMatchObject({ wechatCode: 'NO_STATEMENT_EXIST' });
  });

  it('downloadfundflow: signed with HMAC-SHA256 even when the client is configured for MD5; an MD5-signed request or an unknown account_type is refused with return_code FAIL', async () => {
    const no = tradeNo('V2F');
    await t.control.pay((await client().unifiedOrder(order(no, 88))).prepayId);
    const today = new Date(Date.now() + 8 * 3600_000).toISOString().slice(0, 10);
    const chunks: Buffer[] = [];
    for await (const c of await client('MD5').downloadFundFlow({ billDate: today, accountType: 'BASIC', tarType: 'GZIP' })) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString('utf8')).toContain('记账时间');
    const date = today.replace(/-/g, '');
    const md5 = await tlsPost(`${t.secapiBase}/pay/downloadfundflow`, signedXml({ bill_date: date, account_type: 'Basic' }, 'MD5'), merchantTls());
    expect(md5.fields).toMatchObject({ return_code: 'FAIL', return_msg: expect.stringContaining('HMAC-SHA256') });
    const odd = await tlsPost(`${t.secapiBase}/pay/downloadfundflow`, signedXml({ bill_date: date, account_type: 'Savings' }, 'HMAC-SHA256'), merchantTls());
    expect(odd.fields).toMatchObject({ return_code: 'FAIL', return_msg: expect.stringContaining('account_type') });
  });

  describe('mutual TLS: /secapi/pay/refund and /pay/downloadfundflow need the merchant certificate', () => {
    const refundXml = (no: string, outRefundNo: string) => signedXml({ out_trade_no: no, out_refund_no: outRefundNo, total_fee: '200', refund_fee: '200' }, 'HMAC-SHA256');
    const paid = async (prefix: string) => {
      const no = tradeNo(prefix);
      await t.control.pay((await client().unifiedOrder(order(no, 200))).prepayId);
      return no;
    };
    const refundExists = async (outRefundNo: string) => (await t.merchant.request('GET', `/v3/refund/domestic/refunds/${outRefundNo}`)).status !== 404;

    it('over plain http a signed refund is refused with return_code FAIL naming the mutual-TLS port, and nothing is refunded', async () => {
      const no = await paid('V2T');
      const res = await post('/sandbox/secapi/pay/refund', refundXml(no, `${no}R`));
      expect(res.status).toBe(200);
      expect(res.fields).toEqual({ return_code: 'FAIL', return_msg: `该接口需要商户API证书（双向TLS）：请带 apiclient_cert.pem 调用 ${t.secapiBase}/secapi/pay/refund` });
      expect(await refundExists(`${no}R`)).toBe(false);
      const bill = await post('/sandbox/pay/downloadfundflow', signedXml({ bill_date: '20260101', account_type: 'Basic' }, 'HMAC-SHA256'));
      expect(bill.fields).toMatchObject({ return_code: 'FAIL', return_msg: expect.stringContaining('双向TLS') });
      // The same request with the certificate is taken (and the order is still fully refundable).
      const ok = await tlsPost(`${t.secapiBase}/secapi/pay/refund`, refundXml(no, `${no}R`), merchantTls());
      expect(ok.fields).toMatchObject({ return_code: 'SUCCESS', result_code: 'SUCCESS', out_refund_no: `${no}R`, refund_fee: '200' });
      expect(await refundExists(`${no}R`)).toBe(true);
    });

    it("without a client certificate, or with one the sandbox CA did not issue, the port answers like WeChat's front (HTTP 400) and nothing is refunded", async () => {
      const no = await paid('V2U');
      const url = `${t.secapiBase}/secapi/pay/refund`;
      const none = await tlsPost(url, refundXml(no, `${no}A`), { ca: t.tls.ca.certificatePem });
      expect(none.status).toBe(400);
      expect(none.text).toContain('<title>400 No required SSL certificate was sent</title>');
      // Self-made: the merchant's own key, CN and serial, self-signed.
      const selfMade = await selfMadeCertificate(t.keystore.mchid, t.keystore.merchant.certSerial, t.keystore.merchant);
      const forged = await tlsPost(url, refundXml(no, `${no}B`), { ca: t.tls.ca.certificatePem, cert: selfMade.certPem, key: selfMade.keyPem });
      expect(forged.status).toBe(400);
      expect(forged.text).toContain('<title>400 The SSL certificate error</title>');
      // Issued for the merchant by another sandbox's CA.
      const other = await generateSandboxTls({ mchid: t.keystore.mchid, publicKeyPem: t.keystore.merchant.publicKeyPem, certSerial: t.keystore.merchant.certSerial });
      const foreign = await tlsPost(url, refundXml(no, `${no}C`), { ca: t.tls.ca.certificatePem, cert: other.merchantCertificatePem, key: t.keystore.merchant.privateKeyPem });
      expect(foreign.status).toBe(400);
      expect(foreign.text).toContain('The SSL certificate error');
      for (const suffix of ['A', 'B', 'C']) expect(await refundExists(`${no}${suffix}`)).toBe(false);
      // Our client without the certificate gets the same refusal as a typed error.
      const bare = new WechatPayV2Client({ appid: t.keystore.appid, mchid: t.keystore.mchid, apiKey: key, signType: 'MD5', baseUrl: `${t.baseUrl}/sandbox`, secureBaseUrl: t.secapiBase, timeoutMs: 5000, now: () => Date.now() });
      await expect(bare.createRefund({ outTradeNo: no, outRefundNo: `${no}D`, totalFee: 200, refundFee: 1 })).rejects.toThrow(/needs the merchant API certificate/);
      expect((await t.merchant.request('GET', `/v3/pay/transactions/out-trade-no/${no}?mchid=${t.keystore.mchid}`)).json.trade_state).toBe('SUCCESS');
    });

    it('the port serves only the certificate paths, and a client that does not trust the sandbox CA refuses the server (verification is never off)', async () => {
      const query = await tlsPost(`${t.secapiBase}/pay/orderquery`, signedXml({ out_trade_no: 'X' }), merchantTls());
      expect(query.status).toBe(404);
      const untrusting = new WechatPayV2Client({
        appid: t.keystore.appid,
        mchid: t.keystore.mchid,
        apiKey: key,
        signType: 'MD5',
        baseUrl: `${t.baseUrl}/sandbox`,
        secureBaseUrl: t.secapiBase,
        clientCert: { certPem: t.tls.merchantCertificatePem, keyPem: t.keystore.merchant.privateKeyPem },
        timeoutMs: 5000,
        now: () => Date.now(),
      });
      const no = await paid('V2V');
      await expect(untrusting.createRefund({ outTradeNo: no, outRefundNo: `${no}R`, totalFee: 200, refundFee: 1 })).rejects.toMatchObject({ causeCode: 'SELF_SIGNED_CERT_IN_CHAIN', sent: false });
      expect(await refundExists(`${no}R`)).toBe(false);
      // The control API names the port for other backends and SDKs.
      expect((await fetch(`${t.baseUrl}/sandbox/control/merchant`).then((r) => r.json() as Promise<{ secapiBase: string }>)).secapiBase).toBe(t.secapiBase);
    });
  });
});
