/**
 * Five independent WeChat SDKs from npm (test/sdk-interop/package.json: wechatpay-node-v3,
 * wechatpay-axios-plugin, wechat-oauth, wechat-api, wechat-jssdk) against the standalone sandbox
 * (`npm run sandbox`), used exactly as their READMEs show with only the host changed:
 *
 * - wechatpay-axios-plugin and wechat-jssdk take WeChat's addresses as options (`baseURL`; `apiUrl`,
 *   `accessTokenUrl`, `ticketUrl`, `oAuthUrl`): those point at the sandbox's root.
 * - wechatpay-node-v3, wechat-oauth and wechat-api write `https://api.mch.weixin.qq.com`,
 *   `https://api.weixin.qq.com` and `https://open.weixin.qq.com` into their code. For them WeChat's hosts
 *   are mapped to the sandbox at the connection, which is what a hosts-file entry plus a TLS-terminating
 *   proxy in front of the sandbox do: their URLs, host names and signatures stay WeChat's own.
 *
 * Needs `npm ci --prefix test/sdk-interop` (its own node_modules). Skipped without it, unless
 * REQUIRE_SDK_INTEROP=1 (CI), where a missing install fails. The APIv2 SDK (tenpay) is in tenpay-v2.e2e-spec.ts.
 */
import { createPublicKey, sign, verify, X509Certificate } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { today } from '../helpers/dates';
import { NotifyReceiver } from '../helpers/receiver';
import { tempDir } from '../helpers/test-app';
import { Sandbox, describeSdks, sdk, startSandbox, wechatHostsAgent } from './interop-sandbox';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- WeChat answers of every shape
type Json = any;

/** Plays the WeChat user opening an authorize URL and consenting as `openid` (the sandbox's test hook). */
async function consent(authorizeUrl: string, openid: string, agent?: https.Agent): Promise<URL> {
  const url = new URL(authorizeUrl.split('#')[0]);
  url.searchParams.set('sandbox_openid', openid);
  const location = await new Promise<string>((resolve, reject) => {
    const get = url.protocol === 'https:' ? https.get : http.get;
    get(url, { agent }, (res) => {
      res.resume();
      if (res.statusCode !== 302) reject(new Error(`authorize answered ${res.statusCode}`));
      else resolve(String(res.headers.location));
    }).on('error', reject);
  });
  return new URL(location);
}

/** A JS-SDK signature checked by the sandbox's wx.config, as the WeChat browser checks it. */
async function wxConfig(sandbox: Sandbox, body: Record<string, unknown>): Promise<{ ok: boolean; errMsg: string }> {
  const res = await fetch(`${sandbox.base}/sandbox/jsbridge/config`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  return (await res.json()) as { ok: boolean; errMsg: string };
}

function isPng(bytes: Buffer): boolean {
  return bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
}

describeSdks('five WeChat SDKs from npm against the standalone sandbox, only the host changed', () => {
  /** Default sign mode (WeChat Pay public key). */
  let sandbox: Sandbox;
  /** SANDBOX_SIGN_MODE=certificate: for wechatpay-node-v3, which verifies with downloaded platform certificates only. */
  let certSandbox: Sandbox;
  let receiver: NotifyReceiver;
  let notifyUrl: string;

  beforeAll(async () => {
    [sandbox, certSandbox] = await Promise.all([startSandbox({}), startSandbox({ SANDBOX_SIGN_MODE: 'certificate' })]);
    receiver = new NotifyReceiver();
    notifyUrl = await receiver.start();
  }, 120_000);
  afterAll(async () => {
    sandbox?.stop();
    certSandbox?.stop();
    await receiver?.stop();
  });

  const tradeNo = (prefix: string) => `${prefix}${Date.now()}${Math.floor(Math.random() * 1000)}`;

  describe('wechatpay-axios-plugin (baseURL = the sandbox root, WeChat Pay public key)', () => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the plugin's chained client is untyped
    let wxpay: any;
    let plugin: Json;

    beforeAll(() => {
      plugin = sdk('wechatpay-axios-plugin');
      const { Wechatpay } = plugin;
      // The README's 「微信支付公钥」 mode: the serial of apiclient_cert.pem, apiclient_key.pem and the WeChat
      // Pay public key as file:// paths, the public key under its PUB_KEY_ID_….
      const serial = new X509Certificate(readFileSync(sandbox.files.cert)).serialNumber;
      wxpay = new Wechatpay({
        mchid: sandbox.keystore.mchid,
        serial,
        privateKey: `file://${sandbox.files.key}`,
        certs: { [sandbox.keystore.publicKey.id]: `file://${sandbox.files.publicKey}` },
        merchant: { cert: readFileSync(sandbox.files.cert), key: readFileSync(sandbox.files.key) },
        baseURL: `${sandbox.base}/`,
      });
    });

    it('prepays, queries by out_trade_no and by transaction_id, refunds, queries the refund and closes, every answer verified by the plugin', async () => {
      const no = tradeNo('AXP');
      const prepay = await wxpay.v3.pay.transactions.jsapi.post({
        appid: sandbox.keystore.appid,
        mchid: sandbox.keystore.mchid,
        description: 'SDK 互通测试',
        out_trade_no: no,
        notify_url: notifyUrl,
        amount: { total: 188, currency: 'CNY' },
        payer: { openid: 'o_sdk_axios' },
      });
      expect(prepay.status).toBe(200);
      expect(prepay.data.prepay_id).toMatch(/^wx/);

      const unpaid = await wxpay.v3.pay.transactions['out-trade-no']['{out_trade_no}'].get({ params: { mchid: sandbox.keystore.mchid }, out_trade_no: no });
      expect(unpaid.data).toMatchObject({ out_trade_no: no, trade_state: 'NOTPAY' });
      // Without ?mchid: PARAM_ERROR saying it is missing, located in the query.
      await expect(wxpay.v3.pay.transactions['out-trade-no']['{out_trade_no}'].get({ out_trade_no: no })).rejects.toMatchObject({
        response: { status: 400, data: { code: 'PARAM_ERROR', detail: { field: 'mchid', location: 'query' } } },
      });

      const paid = await sandbox.control.pay(prepay.data.prepay_id);
      expect(paid.result).toBe('ok');
      const byId = await wxpay.v3.pay.transactions.id._transaction_id_.get({ params: { mchid: sandbox.keystore.mchid }, transaction_id: paid.transactionId });
      expect(byId.data).toMatchObject({ out_trade_no: no, trade_state: 'SUCCESS', amount: { total: 188 } });

      const refund = await wxpay.v3.refund.domestic.refunds.post({ out_trade_no: no, out_refund_no: `${no}R`, amount: { refund: 88, total: 188, currency: 'CNY' } });
      expect(refund.status).toBe(200);
      expect(refund.data).toMatchObject({ out_refund_no: `${no}R`, amount: { refund: 88, total: 188 } });
      const refundQuery = await wxpay.v3.refund.domestic.refunds['{out_refund_no}'].get({ out_refund_no: `${no}R` });
      expect(refundQuery.data).toMatchObject({ out_refund_no: `${no}R`, status: expect.stringMatching(/^(PROCESSING|SUCCESS)$/) });

      // More than is left: WeChat's current error table, as the plugin surfaces an error answer.
      await expect(wxpay.v3.refund.domestic.refunds.post({ out_trade_no: no, out_refund_no: `${no}R2`, amount: { refund: 101, total: 188, currency: 'CNY' } })).rejects.toMatchObject({
        response: { status: 400, data: { code: 'INVALID_REQUEST' } },
      });

      const other = tradeNo('AXC');
      await wxpay.v3.pay.transactions.jsapi.post({
        appid: sandbox.keystore.appid,
        mchid: sandbox.keystore.mchid,
        description: 'SDK 关单',
        out_trade_no: other,
        notify_url: notifyUrl,
        amount: { total: 1 },
        payer: { openid: 'o_sdk_axios' },
      });
      const close = await wxpay.v3.pay.transactions.outTradeNo.$out_trade_no$.close.post({ mchid: sandbox.keystore.mchid }, { out_trade_no: other });
      expect(close.status).toBe(204);
      const closed = await wxpay.v3.pay.transactions['out-trade-no']['{out_trade_no}'].get({ params: { mchid: sandbox.keystore.mchid }, out_trade_no: other });
      expect(closed.data.trade_state).toBe('CLOSED');
    });

    it('applies for the trade bill and downloads it from download_url as given', async () => {
      const no = tradeNo('AXB');
      const prepay = await wxpay.v3.pay.transactions.jsapi.post({
        appid: sandbox.keystore.appid,
        mchid: sandbox.keystore.mchid,
        description: 'SDK 账单',
        out_trade_no: no,
        notify_url: notifyUrl,
        amount: { total: 66 },
        payer: { openid: 'o_sdk_axios' },
      });
      await sandbox.control.pay(prepay.data.prepay_id);
      const bill = await wxpay.v3.bill.tradebill.get({ params: { bill_date: today(), bill_type: 'ALL' } });
      expect(bill.data).toMatchObject({ hash_type: 'SHA1', download_url: expect.stringMatching(new RegExp(`^${sandbox.base}/v3/billdownload/file\\?`)) });
      // The file is GET /v3/billdownload/file with download_url's query, signed like any call.
      const download = new URL(bill.data.download_url);
      const file = await wxpay.v3.billdownload.file.get({ params: Object.fromEntries(download.searchParams), responseType: 'arraybuffer' });
      expect(file.status).toBe(200);
      expect(Buffer.from(file.data).toString('utf8')).toContain(no);
    });

    it('verifies and decrypts a payment notification with the plugin\'s Rsa and Aes', async () => {
      const { Rsa, Aes, Formatter } = plugin;
      const no = tradeNo('AXN');
      const prepay = await wxpay.v3.pay.transactions.jsapi.post({
        appid: sandbox.keystore.appid,
        mchid: sandbox.keystore.mchid,
        description: 'SDK 通知',
        out_trade_no: no,
        notify_url: notifyUrl,
        amount: { total: 9 },
        payer: { openid: 'o_sdk_axios' },
      });
      await sandbox.control.pay(prepay.data.prepay_id);
      await sandbox.control.waitForNotification({ outTradeNo: no });
      const r = receiver.received.find((x) => x.body.toString().includes('TRANSACTION.SUCCESS') && x.headers['wechatpay-serial'] === sandbox.keystore.publicKey.id && decrypts(x, no))!;
      expect(r).toBeDefined();
      const ok = Rsa.verify(
        Formatter.response(String(r.headers['wechatpay-timestamp']), String(r.headers['wechatpay-nonce']), r.body.toString('utf8')),
        String(r.headers['wechatpay-signature']),
        Rsa.from(`file://${sandbox.files.publicKey}`, Rsa.KEY_TYPE_PUBLIC),
      );
      expect(ok).toBe(true);

      function decrypts(x: { body: Buffer }, outTradeNo: string): boolean {
        const { resource } = JSON.parse(x.body.toString());
        try {
          return JSON.parse(Aes.AesGcm.decrypt(resource.ciphertext, sandbox.keystore.apiv3Key, resource.nonce, resource.associated_data)).out_trade_no === outTradeNo;
        } catch {
          return false;
        }
      }
    });

    it('gets WeChat\'s signed 404 JSON for a path the sandbox does not serve, and the plugin verifies it', async () => {
      await expect(wxpay.v3.marketing.favor.stocks.get({ params: { offset: 0, limit: 10, stock_creator_mchid: sandbox.keystore.mchid } })).rejects.toMatchObject({
        response: { status: 404, data: { code: 'NOT_FOUND' } },
      });
    });
  });

  describe('wechatpay-node-v3 (WeChat Pay\'s host mapped to the sandbox, platform certificates)', () => {
    let pay: Json;
    let original: https.Agent;

    beforeAll(() => {
      // superagent, under the SDK, connects through https.globalAgent: map api.mch.weixin.qq.com there.
      original = https.globalAgent;
      https.globalAgent = wechatHostsAgent(certSandbox.port);
      const WxPay = sdk('wechatpay-node-v3');
      // The README: appid, mchid, apiclient_cert.pem as publicKey (its serial is read from it), apiclient_key.pem.
      pay = new (WxPay.default ?? WxPay)({
        appid: certSandbox.keystore.appid,
        mchid: certSandbox.keystore.mchid,
        publicKey: readFileSync(certSandbox.files.cert),
        privateKey: readFileSync(certSandbox.files.key),
        key: certSandbox.keystore.apiv3Key,
      });
    });
    afterAll(() => {
      if (original) https.globalAgent = original;
    });

    it('reads the merchant serial from apiclient_cert.pem as the sandbox expects it', () => {
      // fidm/x509 gives it in lower case; serial numbers are hex, WeChat (and the sandbox) compare them regardless of case.
      expect(pay.getSN().toUpperCase()).toBe(certSandbox.keystore.merchant.certSerial);
    });

    it('prepays (JSAPI pay parameters signed by the SDK), queries, refunds, finds the refund and closes', async () => {
      const no = tradeNo('NV3');
      const prepay = await pay.transactions_jsapi({
        description: 'SDK 互通测试',
        out_trade_no: no,
        notify_url: notifyUrl,
        amount: { total: 233 },
        payer: { openid: 'o_sdk_node_v3' },
      });
      expect(prepay).toMatchObject({ status: 200 });
      expect(prepay.data).toMatchObject({ appId: certSandbox.keystore.appid, package: expect.stringMatching(/^prepay_id=wx/), signType: 'RSA' });
      // The paySign the SDK made is what the sandbox's getBrandWCPayRequest accepts.
      const check = await fetch(`${certSandbox.base}/sandbox/jsbridge/pay`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ url: 'http://localhost/shop/', params: prepay.data }),
      }).then((r) => r.json() as Promise<Json>);
      expect(check).toMatchObject({ ok: true, prepayId: prepay.data.package.slice('prepay_id='.length) });

      const unpaid = await pay.query({ out_trade_no: no });
      expect(unpaid.status).toBe(200);
      expect(unpaid.data).toMatchObject({ out_trade_no: no, trade_state: 'NOTPAY' });

      const paid = await certSandbox.control.pay(check.prepayId);
      expect(paid.result).toBe('ok');
      const byId = await pay.query({ transaction_id: paid.transactionId });
      expect(byId.data).toMatchObject({ out_trade_no: no, trade_state: 'SUCCESS' });

      const refund = await pay.refunds({ out_trade_no: no, out_refund_no: `${no}R`, reason: '互通', amount: { refund: 33, total: 233, currency: 'CNY' } });
      expect(refund.status).toBe(200);
      expect(refund.data).toMatchObject({ out_refund_no: `${no}R`, amount: { refund: 33 } });
      const found = await pay.find_refunds(`${no}R`);
      expect(found.status).toBe(200);
      expect(found.data).toMatchObject({ out_refund_no: `${no}R`, status: expect.stringMatching(/^(PROCESSING|SUCCESS)$/) });

      const other = tradeNo('NVC');
      await pay.transactions_jsapi({ description: 'SDK 关单', out_trade_no: other, notify_url: notifyUrl, amount: { total: 1 }, payer: { openid: 'o_sdk_node_v3' } });
      const close = await pay.close(other);
      expect(close.status).toBe(204);
      expect((await pay.query({ out_trade_no: other })).data.trade_state).toBe('CLOSED');
      // An order that does not exist: WeChat's 404, as the SDK reports errors.
      const missing = await pay.query({ out_trade_no: 'NO_SUCH_ORDER_123' });
      expect(missing.status).toBe(404);
      expect(JSON.parse(missing.error)).toMatchObject({ code: 'ORDER_NOT_EXIST' });
    });

    it('applies for trade and fund-flow bills and downloads the trade bill from download_url (WeChat\'s host, so the SDK signs its path)', async () => {
      const no = tradeNo('NVB');
      const prepay = await pay.transactions_jsapi({ description: 'SDK 账单', out_trade_no: no, notify_url: notifyUrl, amount: { total: 77 }, payer: { openid: 'o_sdk_node_v3' } });
      await certSandbox.control.pay(prepay.data.package.slice('prepay_id='.length));
      const bill = await pay.tradebill({ bill_date: today(), bill_type: 'ALL' });
      expect(bill.status).toBe(200);
      expect(bill.data.download_url).toMatch(/^https:\/\/api\.mch\.weixin\.qq\.com\/v3\/billdownload\/file\?/);
      const file = await pay.downloadBill(bill.data.download_url);
      expect(file.status).toBe(200);
      expect(String(file.data)).toContain(no);
      const fund = await pay.fundflowbill({ bill_date: today() });
      expect(fund.status).toBe(200);
      expect(fund.data).toMatchObject({ hash_type: 'SHA1', download_url: expect.stringMatching(/^https:\/\/api\.mch\.weixin\.qq\.com\//) });
    });

    it('verifies a notification with verifySign (platform certificates fetched from /v3/certificates) and decrypts it with decipher_gcm', async () => {
      const no = tradeNo('NVN');
      const prepay = await pay.transactions_jsapi({ description: 'SDK 通知', out_trade_no: no, notify_url: notifyUrl, amount: { total: 5 }, payer: { openid: 'o_sdk_node_v3' } });
      await certSandbox.control.pay(prepay.data.package.slice('prepay_id='.length));
      await certSandbox.control.waitForNotification({ outTradeNo: no });
      const found = receiver.received
        .map((r) => ({ r, body: JSON.parse(r.body.toString()) }))
        .map(({ r, body }) => {
          try {
            return { r, body, plain: pay.decipher_gcm(body.resource.ciphertext, body.resource.associated_data, body.resource.nonce, certSandbox.keystore.apiv3Key) };
          } catch {
            return undefined;
          }
        })
        .find((x) => x?.plain?.out_trade_no === no)!;
      expect(found.plain).toMatchObject({ out_trade_no: no, trade_state: 'SUCCESS', amount: { total: 5 }, payer: { openid: 'o_sdk_node_v3' } });
      const verified = await pay.verifySign({
        timestamp: found.r.headers['wechatpay-timestamp'],
        nonce: found.r.headers['wechatpay-nonce'],
        serial: found.r.headers['wechatpay-serial'],
        signature: found.r.headers['wechatpay-signature'],
        body: found.r.body.toString('utf8'),
      });
      expect(verified).toBe(true);
    });
  });

  describe('wechat-oauth (WeChat\'s hosts mapped to the sandbox)', () => {
    let client: Json;
    const redirect = 'http://127.0.0.1/wechat/oauth-callback';
    let agent: https.Agent;

    beforeAll(() => {
      const OAuth = sdk('wechat-oauth');
      client = new OAuth(sandbox.keystore.appid, sandbox.keystore.appsecret);
      agent = wechatHostsAgent(sandbox.port);
      // urllib's default options (OAuth#setOpts): its https agent is the host mapping.
      client.setOpts({ httpsAgent: agent, timeout: 10_000 });
    });

    it('authorizes (snsapi_userinfo), exchanges the code once, reads the user, verifies and refreshes the token', async () => {
      const url: string = client.getAuthorizeURL(redirect, 'st8', 'snsapi_userinfo');
      expect(url).toMatch(/^https:\/\/open\.weixin\.qq\.com\/connect\/oauth2\/authorize\?appid=.+#wechat_redirect$/);
      const back = await consent(url, 'o_sdk_oauth', agent);
      expect(back.origin + back.pathname).toBe(redirect);
      expect(back.searchParams.get('state')).toBe('st8');
      const code = back.searchParams.get('code')!;

      const token = await promisify(client.getAccessToken.bind(client))(code);
      expect(token.data).toMatchObject({ openid: 'o_sdk_oauth', scope: 'snsapi_userinfo', access_token: expect.any(String), refresh_token: expect.any(String) });
      await expect(promisify(client.getAccessToken.bind(client))(code)).rejects.toMatchObject({ code: 40163 });

      const user = await promisify(client.getUser.bind(client))('o_sdk_oauth');
      expect(user).toMatchObject({ openid: 'o_sdk_oauth', nickname: expect.any(String), headimgurl: expect.stringMatching(/^http:\/\/localhost:\d+\/sandbox\/mmopen\//) });
      const avatar = await fetch(user.headimgurl.replace('localhost', '127.0.0.1'));
      expect(avatar.headers.get('content-type')).toBe('image/png');
      expect(isPng(Buffer.from(await avatar.arrayBuffer()))).toBe(true);

      const verified = await promisify(client.verifyToken.bind(client))('o_sdk_oauth', token.data.access_token);
      expect(verified).toEqual({ errcode: 0, errmsg: 'ok' });
      await expect(promisify(client.verifyToken.bind(client))('o_sdk_oauth', 'not-a-token')).rejects.toMatchObject({ code: 40001 });
      await expect(promisify(client.verifyToken.bind(client))('o_someone_else', token.data.access_token)).rejects.toMatchObject({ code: 40003 });

      const refreshed = await promisify(client.refreshAccessToken.bind(client))(token.data.refresh_token);
      expect(refreshed.data).toMatchObject({ openid: 'o_sdk_oauth' });
      expect(refreshed.data.access_token).not.toBe(token.data.access_token);
    });
  });

  describe('wechat-api (api.weixin.qq.com mapped to the sandbox)', () => {
    it('gets the access_token and the jsapi ticket, and builds a JS-SDK config that the sandbox\'s wx.config accepts', async () => {
      const WechatAPI = sdk('wechat-api');
      const api = new WechatAPI(sandbox.keystore.appid, sandbox.keystore.appsecret);
      api.setOpts({ httpsAgent: wechatHostsAgent(sandbox.port), timeout: 10_000 });
      const token = await promisify(api.getLatestToken.bind(api))();
      expect(token).toMatchObject({ accessToken: expect.any(String), expireTime: expect.any(Number) });
      const ticket = await promisify(api.getTicket.bind(api))('jsapi');
      expect(ticket).toMatchObject({ ticket: expect.any(String), expireTime: expect.any(Number) });
      const url = 'http://localhost/shop/?from=sdk';
      const config = await promisify(api.getJsConfig.bind(api))({ debug: false, jsApiList: ['chooseWXPay'], url });
      expect(config).toMatchObject({ appId: sandbox.keystore.appid, signature: expect.stringMatching(/^[0-9a-f]{40}$/) });
      expect(await wxConfig(sandbox, { ...config, url })).toEqual({ ok: true, errMsg: 'config:ok' });
    });

    it('sees the SDK report the sandbox\'s errcode for a wrong secret', async () => {
      const WechatAPI = sdk('wechat-api');
      const api = new WechatAPI(sandbox.keystore.appid, 'wrong-secret');
      api.setOpts({ httpsAgent: wechatHostsAgent(sandbox.port), timeout: 10_000 });
      await expect(promisify(api.getLatestToken.bind(api))()).rejects.toMatchObject({ code: 40125 });
    });
  });

  describe('wechat-jssdk (its WeChat URL options pointed at the sandbox root)', () => {
    let wx: Json;
    let storeDir: string;

    beforeAll(() => {
      const { Wechat, FileStore } = sdk('wechat-jssdk');
      storeDir = tempDir();
      const wechatConfig = {
        wechatRedirectUrl: 'http://127.0.0.1/wechat/oauth-callback',
        appId: sandbox.keystore.appid,
        appSecret: sandbox.keystore.appsecret,
        ticketUrl: `${sandbox.base}/cgi-bin/ticket/getticket`,
        accessTokenUrl: `${sandbox.base}/cgi-bin/token`,
        oAuthUrl: `${sandbox.base}/connect/oauth2/authorize`,
        apiUrl: sandbox.base,
      };
      // The SDK starts a 2-hour counter reset with setInterval and never clears it: unref that timer so
      // the test process can exit (the SDK itself is used unchanged).
      const realSetInterval = global.setInterval;
      global.setInterval = ((...args: Parameters<typeof setInterval>) => realSetInterval(...args).unref()) as typeof setInterval;
      try {
        wx = new Wechat({ ...wechatConfig, store: new FileStore({ fileStorePath: join(storeDir, 'wechat-info.json') }, wechatConfig) });
      } finally {
        global.setInterval = realSetInterval;
      }
    });
    afterAll(() => {
      wx?.store?.destroy();
      if (storeDir) rmSync(storeDir, { recursive: true, force: true });
    });

    it('signs a page URL with the ticket it fetched, and the sandbox\'s wx.config accepts the signature', async () => {
      const url = 'http://127.0.0.1/shop/checkout';
      const signature = await wx.jssdk.getSignature(url);
      expect(signature).toMatchObject({ nonceStr: expect.any(String), timestamp: expect.anything(), signature: expect.stringMatching(/^[0-9a-f]{40}$/) });
      expect(await wxConfig(sandbox, { appId: sandbox.keystore.appid, nonceStr: signature.nonceStr, timestamp: signature.timestamp, signature: signature.signature, url })).toEqual({ ok: true, errMsg: 'config:ok' });
    });

    it('builds the OAuth URLs, and reads the user info and the base info with the codes the sandbox issues', async () => {
      expect(wx.oauth.snsUserInfoUrl.startsWith(`${sandbox.base}/connect/oauth2/authorize?`)).toBe(true);
      const back = await consent(wx.oauth.snsUserInfoUrl, 'o_sdk_jssdk');
      const profile = await wx.oauth.getUserInfo(back.searchParams.get('code'));
      expect(profile).toMatchObject({ openid: 'o_sdk_jssdk', nickname: expect.any(String), headimgurl: expect.stringMatching(/^https?:\/\//) });
      const base = await consent(wx.oauth.snsUserBaseUrl, 'o_sdk_jssdk_base');
      const info = await wx.oauth.getUserBaseInfo(base.searchParams.get('code'));
      expect(info).toMatchObject({ openid: 'o_sdk_jssdk_base', scope: 'snsapi_base', access_token: expect.any(String) });
    });
  });

  it('the merchant certificate the sandbox wrote certifies the merchant key it signs with', () => {
    for (const s of [sandbox, certSandbox]) {
      const cert = new X509Certificate(readFileSync(s.files.cert));
      expect(cert.serialNumber).toBe(s.keystore.merchant.certSerial);
      const signature = sign('sha256', Buffer.from('probe'), readFileSync(s.files.key));
      expect(verify('sha256', Buffer.from('probe'), createPublicKey(cert.publicKey.export({ type: 'spki', format: 'pem' })), signature)).toBe(true);
    }
  });
});

