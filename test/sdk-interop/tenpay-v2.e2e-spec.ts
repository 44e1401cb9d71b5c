/**
 * WeChat Pay APIv2 through an independent SDK from npm, tenpay (test/sdk-interop/package.json), against
 * the standalone sandbox (`npm run sandbox`), used as its README shows: `new tenpay({ appid, mchid,
 * partnerKey, pfx, notify_url, refund_url })` and its calls, with MD5 and HMAC-SHA256 (`sign_type`).
 * tenpay checks every answer itself (return_code, result_code, appid, mch_id and the sign with the
 * partnerKey) and throws otherwise, so every call that resolves here was an answer it verified. Its
 * Express middleware is the notify_url: it verifies the sandbox's signed payment notifications and
 * decrypts the refund notifications' req_info.
 *
 * tenpay writes `https://api.mch.weixin.qq.com` into its code: WeChat Pay's host is mapped to the sandbox
 * at the connection (its own urllib's https agent), as a hosts-file entry plus a TLS-terminating proxy
 * would do; the calls carrying the merchant certificate go over real mutual TLS to the sandbox's
 * mutual-TLS port (the sandbox CA trusted). They carry it as tenpay wants it, a PKCS#12
 * file with the merchant number as password (WeChat's apiclient_cert.p12), built here at run time by the
 * openssl CLI from the apiclient_cert.pem / apiclient_key.pem the sandbox issued.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import express from 'express';
import { today } from '../helpers/dates';
import { tempDir } from '../helpers/test-app';
import { Sandbox, describeSdks, sdk, sdkDependency, startSandbox, wechatHostsAgent } from './interop-sandbox';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tenpay's answers are untyped JSON of strings
type Json = any;
type SignType = 'MD5' | 'HMAC-SHA256';

/** The merchant certificate as WeChat hands it out for APIv2 (apiclient_cert.p12, password = mch_id). */
function merchantPfx(sandbox: Sandbox, dir: string): Buffer {
  const out = join(dir, 'apiclient_cert.p12');
  execFileSync('openssl', ['pkcs12', '-export', '-in', sandbox.files.cert, '-inkey', sandbox.files.key, '-out', out, '-passout', `pass:${sandbox.keystore.mchid}`, '-name', 'apiclient']);
  return readFileSync(out);
}

describeSdks('tenpay (APIv2 SDK from npm) against the standalone sandbox, WeChat Pay\'s host mapped to it', () => {
  let sandbox: Sandbox;
  let certDir: string;
  let Tenpay: Json;
  let api: Json;
  let urllib: Json;
  let originalAgent: https.Agent;
  let notifyServer: Server;
  let notifyBase: string;
  /** What tenpay's middleware handed to the merchant's code (req.weixin), per route. */
  const verified: { pay: Json[]; refund: Json[] } = { pay: [], refund: [] };

  beforeAll(async () => {
    sandbox = await startSandbox({});
    expect(sandbox.apiV2Key).toMatch(/^[0-9A-Za-z]{32}$/);
    certDir = tempDir();
    Tenpay = sdk('tenpay');
    // tenpay calls urllib.request without an agent: its urllib's default https agent (read at each
    // request from lib/urllib.js, which lib/index.js only copies) is the mapping.
    urllib = sdkDependency('tenpay', 'urllib/lib/urllib');
    originalAgent = urllib.httpsAgent;
    urllib.httpsAgent = wechatHostsAgent(sandbox.port, sandbox.secapi);

    // The merchant's notify_url, as tenpay's README writes it for Express.
    const probe = Tenpay.init({ appid: sandbox.keystore.appid, mchid: sandbox.keystore.mchid, partnerKey: sandbox.apiV2Key });
    const app = express();
    app.use(express.text({ type: '*/xml' }));
    app.post('/wxpay/notify', probe.middlewareForExpress('pay'), (req: Json, res: Json) => {
      verified.pay.push(req.weixin);
      res.reply('');
    });
    app.post('/wxpay/refund', probe.middlewareForExpress('refund'), (req: Json, res: Json) => {
      verified.refund.push(req.weixin);
      res.reply('');
    });
    notifyServer = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    notifyBase = `http://127.0.0.1:${(notifyServer.address() as AddressInfo).port}`;

    const pfx = merchantPfx(sandbox, certDir);
    // What urllib hands to TLS for the /secapi calls: the certificate and key open with the mch_id.
    const context = createSecureContext({ pfx, passphrase: sandbox.keystore.mchid });
    expect(context).toBeDefined();
    api = new Tenpay({
      appid: sandbox.keystore.appid,
      mchid: sandbox.keystore.mchid,
      partnerKey: sandbox.apiV2Key,
      pfx,
      notify_url: `${notifyBase}/wxpay/notify`,
      refund_url: `${notifyBase}/wxpay/refund`,
      spbill_create_ip: '127.0.0.1',
    });
  }, 120_000);
  afterAll(async () => {
    if (urllib && originalAgent) urllib.httpsAgent = originalAgent;
    notifyServer?.closeAllConnections();
    await new Promise<void>((r) => (notifyServer ? notifyServer.close(() => r()) : r()));
    sandbox?.stop();
    if (certDir) rmSync(certDir, { recursive: true, force: true });
  });

  const tradeNo = (prefix: string) => `${prefix}${Date.now()}${Math.floor(Math.random() * 1000)}`;

  /** getBrandWCPayRequest in the sandbox's WeChat browser: checks the paySign tenpay made, answers the prepay_id. */
  async function bridgePay(params: Json): Promise<{ ok: boolean; prepayId?: string; errDesc?: string }> {
    const res = await fetch(`${sandbox.base}/sandbox/jsbridge/pay`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ url: 'http://localhost/shop/', params }),
    });
    return (await res.json()) as { ok: boolean; prepayId?: string; errDesc?: string };
  }

  describe.each(['MD5', 'HMAC-SHA256'] as SignType[])('sign_type %s', (signType) => {
    it('JSAPI: getPayParams orders and signs paySign, the bridge accepts it; paid, the notification verifies in tenpay\'s middleware; orderQuery; refund with the certificate; refundQuery; the refund notification decrypts', async () => {
      const no = tradeNo(signType === 'MD5' ? 'TPM' : 'TPH');
      const params = await api.getPayParams({ out_trade_no: no, body: 'SDK 互通测试 v2', total_fee: 188, openid: 'o_sdk_tenpay', sign_type: signType });
      expect(params).toMatchObject({ appId: sandbox.keystore.appid, package: expect.stringMatching(/^prepay_id=wx/), signType, paySign: expect.stringMatching(signType === 'MD5' ? /^[0-9A-F]{32}$/ : /^[0-9A-F]{64}$/) });
      const bridge = await bridgePay({ appId: params.appId, timeStamp: params.timeStamp, nonceStr: params.nonceStr, package: params.package, signType: params.signType, paySign: params.paySign });
      expect(bridge).toMatchObject({ ok: true, prepayId: params.package.slice('prepay_id='.length) });
      // A paySign tampered by one character is refused by the bridge, as the WeChat client refuses it.
      const tampered = await bridgePay({ ...params, paySign: (params.paySign[0] === 'A' ? 'B' : 'A') + params.paySign.slice(1) });
      expect(tampered.ok).toBe(false);

      const unpaid = await api.orderQuery({ out_trade_no: no, sign_type: signType });
      expect(unpaid).toMatchObject({ return_code: 'SUCCESS', result_code: 'SUCCESS', out_trade_no: no, trade_state: 'NOTPAY', total_fee: '188' });

      const paid = await sandbox.control.pay(bridge.prepayId!);
      expect(paid.result).toBe('ok');
      await sandbox.control.waitForNotification({ outTradeNo: no });
      const notified = verified.pay.find((n) => n.out_trade_no === no);
      expect(notified).toMatchObject({ result_code: 'SUCCESS', out_trade_no: no, total_fee: '188', transaction_id: paid.transactionId, openid: 'o_sdk_tenpay' });
      expect(notified.sign_type).toBe(signType === 'MD5' ? undefined : 'HMAC-SHA256');

      const byId = await api.orderQuery({ transaction_id: paid.transactionId, sign_type: signType });
      expect(byId).toMatchObject({ out_trade_no: no, trade_state: 'SUCCESS', transaction_id: paid.transactionId, total_fee: '188', cash_fee: '188', time_end: expect.stringMatching(/^\d{14}$/) });

      const served = (await sandbox.control.secapiCounts()).served;
      const refund = await api.refund({ out_trade_no: no, out_refund_no: `${no}R`, total_fee: 188, refund_fee: 88, sign_type: signType });
      // It went through the mutual-TLS port with the certificate (the http port refuses /secapi).
      expect((await sandbox.control.secapiCounts()).served).toBe(served + 1);
      expect(refund).toMatchObject({ result_code: 'SUCCESS', out_trade_no: no, out_refund_no: `${no}R`, refund_fee: '88', total_fee: '188', refund_id: expect.any(String) });
      await sandbox.control.waitForNotification({ outRefundNo: `${no}R` });
      const refundNotified = verified.refund.find((n) => n.req_info?.out_refund_no === `${no}R`);
      expect(refundNotified).toMatchObject({ return_code: 'SUCCESS', appid: sandbox.keystore.appid, mch_id: sandbox.keystore.mchid });
      expect(refundNotified.req_info).toMatchObject({ out_trade_no: no, refund_id: refund.refund_id, refund_fee: '88', total_fee: '188', refund_status: 'SUCCESS' });

      const queried = await api.refundQuery({ out_refund_no: `${no}R`, sign_type: signType });
      expect(queried).toMatchObject({ out_trade_no: no, refund_count: '1', out_refund_no_0: `${no}R`, refund_id_0: refund.refund_id, refund_fee_0: '88', refund_status_0: 'SUCCESS' });

      // More than is left: WeChat's err_code, as tenpay throws it.
      await expect(api.refund({ out_trade_no: no, out_refund_no: `${no}R2`, total_fee: 188, refund_fee: 101, sign_type: signType })).rejects.toThrow('INVALID_REQUEST');
    });

    it('NATIVE: unifiedOrder answers code_url; closeOrder closes it, a second close is ORDERCLOSED; an unknown order is ORDERNOTEXIST', async () => {
      const no = tradeNo(signType === 'MD5' ? 'TNM' : 'TNH');
      const order = await api.unifiedOrder({ out_trade_no: no, body: 'SDK 扫码', total_fee: 5, trade_type: 'NATIVE', product_id: 'P-1', sign_type: signType });
      expect(order).toMatchObject({ result_code: 'SUCCESS', trade_type: 'NATIVE', prepay_id: expect.any(String), code_url: expect.stringMatching(/^(weixin:\/\/|https?:\/\/)/) });
      const closed = await api.closeOrder({ out_trade_no: no, sign_type: signType });
      expect(closed).toMatchObject({ return_code: 'SUCCESS', result_code: 'SUCCESS' });
      expect(await api.orderQuery({ out_trade_no: no, sign_type: signType })).toMatchObject({ trade_state: 'CLOSED' });
      await expect(api.closeOrder({ out_trade_no: no, sign_type: signType })).rejects.toThrow('ORDERCLOSED');
      await expect(api.orderQuery({ out_trade_no: `${no}-none`, sign_type: signType })).rejects.toThrow('ORDERNOTEXIST');
    });
  });

  it('downloadBill (MD5) has the day\'s paid order; downloadFundflow (HMAC-SHA256, with the certificate) answers a fund-flow bill', async () => {
    const no = tradeNo('TPB');
    const params = await api.getPayParams({ out_trade_no: no, body: 'SDK 账单 v2', total_fee: 66, openid: 'o_sdk_tenpay' });
    await sandbox.control.pay(params.package.slice('prepay_id='.length));
    const date = today().replace(/-/g, '');
    const bill: string = await api.downloadBill({ bill_date: date });
    expect(bill).toContain(no);
    const formatted = await api.downloadBill({ bill_date: date }, true);
    expect(formatted.list_title.length).toBeGreaterThan(5);
    expect(formatted.list_data.some((row: string[]) => row.includes(no))).toBe(true);
    const fund: string = await api.downloadFundflow({ bill_date: date });
    expect(fund.split(/\r?\n/)[0]).toMatch(/记账时间/);
  });

  it('refuses what it cannot verify: an answer to a client with another key, and a notification signed with another key', async () => {
    const wrongKey = new Tenpay({ appid: sandbox.keystore.appid, mchid: sandbox.keystore.mchid, partnerKey: 'x'.repeat(32) });
    // The sandbox refuses the request's sign (return_code FAIL), and tenpay reports its return_msg.
    await expect(wrongKey.orderQuery({ out_trade_no: 'TP-WRONG-KEY' })).rejects.toThrow(/签名错误/);
    await expect(wrongKey.orderQuery({ out_trade_no: 'TP-WRONG-KEY', sign_type: 'HMAC-SHA256' })).rejects.toThrow(/签名错误/);
    // A notification forged with another key, sent to the middleware: answered FAIL, nothing handed on.
    const forged = `<xml><return_code><![CDATA[SUCCESS]]></return_code><appid><![CDATA[${sandbox.keystore.appid}]]></appid><mch_id><![CDATA[${sandbox.keystore.mchid}]]></mch_id><result_code><![CDATA[SUCCESS]]></result_code><out_trade_no><![CDATA[TP-FORGED]]></out_trade_no><total_fee><![CDATA[1]]></total_fee><sign><![CDATA[${wrongKey._getSign({ return_code: 'SUCCESS', appid: sandbox.keystore.appid, mch_id: sandbox.keystore.mchid, result_code: 'SUCCESS', out_trade_no: 'TP-FORGED', total_fee: '1' })}]]></sign></xml>`;
    const res = await fetch(`${notifyBase}/wxpay/notify`, { method: 'POST', headers: { 'Content-Type': 'text/xml' }, body: forged });
    expect(await res.text()).toContain('FAIL');
    expect(verified.pay.some((n) => n.out_trade_no === 'TP-FORGED')).toBe(false);
  });
});
