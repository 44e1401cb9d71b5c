// Every way to pay one order (issue 13): jsapi, h5, native, miniprogram through POST /orders/:no/pay
// { channel }, each a payment attempt with its own out_trade_no at the sandbox; switching channel
// closes the old attempt at WeChat first; a second attempt that is paid too is refunded in full.
import { createHash, createHmac, createPublicKey, verify } from 'node:crypto';
import { DataSource } from 'typeorm';
import { PaymentJobs } from '../../src/payment/payment.jobs';
import { AppConfig } from '../../src/config/app-config';
import { loadOrCreateSandboxKeystore, sandboxApiV2Key, sandboxMerchantCredentials } from '../../src/sandbox/keystore';
import { WechatCredentials } from '../../src/wechat/wechat-credentials';
import { WechatPayHttp } from '../../src/wechat/pay/wechat-pay.http';
import { v2Sign, v2Xml } from '../helpers/craft-notification';
import { guestLogin, Login } from '../helpers/login';
import { Shop } from '../helpers/shop';
import { freePort } from '../helpers/test-app';
import { WechatProxy } from './wechat-proxy';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Payment {
  outTradeNo: string;
  channel: string;
  status: string;
  createdAt: string;
}

// Run once per merchant type and API version (issues 15 and 14): a direct merchant over APIv3
// (/v3/pay/transactions/…), a service provider for its default sub-merchant 1900000201
// (/v3/pay/partner/transactions/…, sp_* and sub_* fields), and a direct merchant over APIv2 (XML POSTs
// to /pay/unifiedorder, /pay/orderquery, /pay/closeorder naming the order in the body), one suite.
const RUNS = [
  { merchantType: 'direct', version: 'v3' },
  { merchantType: 'partner', version: 'v3' },
  { merchantType: 'direct', version: 'v2' },
] as const;

describe.each(RUNS)('payment channels and attempts ($merchantType merchant, WECHATPAY_API_VERSION=$version)', ({ merchantType, version }) => {
  const partner = merchantType === 'partner';
  const SUB_MCHID = '1900000201';
  let shop: Shop;
  let proxy: WechatProxy;
  let jobs: PaymentJobs;
  let wechatShopper: Login;
  let guest: Login;
  let productId: number;

  beforeAll(async () => {
    proxy = await new WechatProxy().start();
    // The v2 calls needing the merchant certificate cannot pass the plain-http proxy: they go straight to
    // the sandbox's mutual-TLS port (WECHATPAY_API_BASE names another server, so the app must be told where).
    const secapiPort = await freePort();
    shop = await Shop.start({
      env: {
        WECHATPAY_API_BASE: `${proxy.baseUrl}/sandbox`,
        SANDBOX_SECAPI_PORT: String(secapiPort),
        WECHATPAY_SECAPI_BASE: `https://127.0.0.1:${secapiPort}/sandbox`,
        ORDER_CLOSE_AFTER: '3s',
        PAYMENT_RECONCILE_AFTER: '0s',
        PAYMENT_QUERY_ON_READ_AFTER: '0s',
        WECHATPAY_H5_APP_NAME: '演示商城H5',
        SANDBOX_MERCHANT_TYPE: merchantType,
        WECHATPAY_API_VERSION: version,
      },
    });
    proxy.target = shop.baseUrl;
    jobs = shop.t.app.get(PaymentJobs);
    wechatShopper = await shop.login('o_channels_wechat');
    guest = await guestLogin(shop.baseUrl);
    productId = (await shop.product('渠道测试', 990)).id;
  });
  afterAll(async () => {
    await shop?.close();
    await proxy?.close();
  });
  beforeEach(async () => {
    jobs.resetBackoff();
    proxy.resetStats();
    await shop.sandbox.dropNotifications(false);
  });

  const pay = (login: Login, no: string, body?: unknown) => {
    const req = shop.http().post(`/orders/${no}/pay`).set(login.headers);
    return body === undefined ? req : req.send(body as object);
  };
  const order = (login: Login) => shop.placeOrder(login, [{ productId, quantity: 1 }]);
  const payments = async (no: string): Promise<Payment[]> => (await shop.admin().get(`/admin/orders/${no}`).expect(200)).body.payments;
  const timeline = async (no: string): Promise<string[]> =>
    (await shop.admin().get(`/admin/orders/${no}`).expect(200)).body.timeline.map((e: { type: string }) => e.type);
  const prepayIdOfH5 = (h5Url: string) => new URL(h5Url).searchParams.get('prepay_id')!;
  const count = async (table: string) => Number((await shop.t.app.get(DataSource).query(`SELECT COUNT(*) AS n FROM ${table}`))[0].n);
  /** The prepay route a channel went to: the direct one, or the provider's (mini-program = partner jsapi). */
  const prepayRoute = (channel: string) =>
    version === 'v2'
      ? '/sandbox/pay/unifiedorder'
      : partner
        ? `/sandbox/v3/pay/partner/transactions/${channel === 'miniprogram' ? 'jsapi' : channel}`
        : `/sandbox/v3/pay/transactions/${channel === 'miniprogram' ? 'jsapi' : channel}`;
  const prepaysSent = () =>
    proxy.calls.filter((c) => c.method === 'POST' && (version === 'v2' ? c.path === '/sandbox/pay/unifiedorder' : !c.path.includes('/out-trade-no/'))).map((c) => c.path);
  /** The proxied calls of WeChat Pay, as `METHOD what`: v3 `GET out-trade-no/<no>`, v2 `POST pay/orderquery`. */
  const wechatCalls = () =>
    proxy.calls.map((c) => `${c.method} ${c.path.replace(/\?.*$/, '').replace(version === 'v3' ? /^.*\/v3\/pay\/(partner\/)?transactions\// : /^\/sandbox\//, '')}`);
  /** Whether a proxied request is the query (or the close) of exactly the attempt `no`, in the version's words (v2 names it in the XML). */
  const namesOrder = (xml: string, no: string) => new RegExp(`<out_trade_no>(<!\\[CDATA\\[)?${no}(\\]\\]>)?</out_trade_no>`).test(xml);
  const isQuery = (no: string) => (method: string, path: string, body: string) =>
    version === 'v3' ? method === 'GET' && path.includes(`/out-trade-no/${no}?`) : path.endsWith('/pay/orderquery') && namesOrder(body, no);
  const isClose = (no: string) => (method: string, path: string, body: string) =>
    version === 'v3' ? method === 'POST' && path.includes(`/out-trade-no/${no}/close`) : path.endsWith('/pay/closeorder') && namesOrder(body, no);
  /** WeChat's "no such order" for a query, in the version's shape (v2: signed with the API key, as WeChat signs it). */
  const orderNotExist = async () => {
    if (version === 'v3') return { status: 404, code: 'ORDER_NOT_EXIST', message: '订单不存在' };
    const keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
    const fields = { return_code: 'SUCCESS', return_msg: 'OK', appid: keystore.appid, mch_id: keystore.mchid, nonce_str: 'proxy0nce', result_code: 'FAIL', err_code: 'ORDERNOTEXIST', err_code_des: '此交易订单号不存在' };
    return { status: 200, code: 'ORDERNOTEXIST', xml: v2Xml({ ...fields, sign: v2Sign(fields, sandboxApiV2Key(keystore), 'HMAC-SHA256') }) };
  };
  /** paySign of invoke parameters over `appId`: v3 RSA with the merchant key; v2 HMAC-SHA256 with the API key over the sorted fields. */
  const expectPaySign = async (params: Record<string, string>, appId: string) => {
    const keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
    if (version === 'v3') {
      const message = `${appId}\n${params.timeStamp}\n${params.nonceStr}\n${params.package}\n`;
      expect(verify('sha256', Buffer.from(message), createPublicKey(keystore.merchant.publicKeyPem), Buffer.from(params.paySign, 'base64'))).toBe(true);
      return;
    }
    const key = sandboxApiV2Key(keystore);
    const text = `appId=${appId}&nonceStr=${params.nonceStr}&package=${params.package}&signType=${params.signType}&timeStamp=${params.timeStamp}&key=${key}`;
    expect(params).toMatchObject({ signType: 'HMAC-SHA256', paySign: createHmac('sha256', key).update(text).digest('hex').toUpperCase() });
    expect(createHash('md5').update(text).digest('hex').toUpperCase()).not.toBe(params.paySign);
  };
  /** A provider's view of the trade (partner query: sp_*, sub_* fields); the direct view for a direct merchant. */
  const atWechatAsMerchant = async (no: string): Promise<Record<string, unknown>> => {
    const merchant = await shop.sandbox.merchant();
    const http = shop.t.app.get(WechatPayHttp);
    const res = partner
      ? await http.request<Record<string, unknown>>({ method: 'GET', path: `/v3/pay/partner/transactions/out-trade-no/${no}`, query: { sp_mchid: merchant.mchid, sub_mchid: SUB_MCHID } })
      : await http.request<Record<string, unknown>>({ method: 'GET', path: `/v3/pay/transactions/out-trade-no/${no}`, query: { mchid: merchant.mchid } });
    return res.body as Record<string, unknown>;
  };
  /** What the trade names as merchant and payer, in the merchant type's own shape. */
  const merchantFields = async (appid: string, openid?: string) => {
    const merchant = await shop.sandbox.merchant();
    if (!partner) return { appid, mchid: merchant.mchid, ...(openid ? { payer: { openid } } : {}) };
    const payer = openid ? { payer: appid === merchant.appid ? { sp_openid: openid } : { sub_openid: openid } } : {};
    return { sp_appid: merchant.appid, sp_mchid: merchant.mchid, sub_mchid: SUB_MCHID, ...(appid !== merchant.appid ? { sub_appid: appid } : {}), ...payer };
  };

  it('jsapi (no body, or { channel: "jsapi" }): getBrandWCPayRequest parameters plus channel and the attempt number, which is the order number', async () => {
    const no = await order(wechatShopper);
    const res = await pay(wechatShopper, no).expect(200);
    expect(res.body).toMatchObject({ channel: 'jsapi', outTradeNo: no, signType: version === 'v3' ? 'RSA' : 'HMAC-SHA256', package: expect.stringMatching(/^prepay_id=wx/) });
    await expectPaySign(res.body, res.body.appId);
    const again = await pay(wechatShopper, no, { channel: 'jsapi' }).expect(200);
    expect(again.body.package).toBe(res.body.package); // the same attempt, its prepay reused
    expect(await payments(no)).toEqual([{ outTradeNo: no, channel: 'jsapi', status: 'NOTPAY', createdAt: expect.any(String) }]);
    expect(prepaysSent()).toEqual([prepayRoute('jsapi')]);
    expect(await atWechatAsMerchant(no)).toMatchObject({ ...(await merchantFields((await shop.sandbox.merchant()).appid, 'o_channels_wechat')), trade_state: 'NOTPAY' });
  });

  it('h5 for a guest: WeChat h5_url + &redirect_url= the result page; the shopper IP goes to WeChat; paid at the sandbox → PAID, trade_type MWEB', async () => {
    const no = await order(guest);
    const res = await pay(guest, no, { channel: 'h5' }).expect(200);
    expect(res.body).toEqual({ channel: 'h5', outTradeNo: no, h5Url: expect.any(String) });
    const [wechatUrl, redirect] = res.body.h5Url.split('&redirect_url=');
    expect(wechatUrl).toMatch(/\/sandbox\/h5pay\?prepay_id=wx/);
    expect(decodeURIComponent(redirect)).toBe(`${shop.t.config.publicBaseUrl}/?result=${no}`);
    const atWechat = await shop.sandbox.transaction(no);
    expect(atWechat.payer_client_ip).toBe('127.0.0.1');
    expect(prepaysSent()).toEqual([prepayRoute('h5')]);
    expect(await atWechatAsMerchant(no)).toMatchObject({ ...(await merchantFields((await shop.sandbox.merchant()).appid)), trade_state: 'NOTPAY' });
    expect((await shop.sandbox.pay(prepayIdOfH5(res.body.h5Url), { openid: 'o_h5_payer' })).result).toBe('ok');
    await shop.waitForStatus(no, 'PAID');
    expect((await shop.sandbox.transaction(no)).trade_type).toBe('MWEB');
    expect(await payments(no)).toEqual([expect.objectContaining({ outTradeNo: no, channel: 'h5', status: 'PAID' })]);
    // the shopper's own view has the attempts too
    const mine = await shop.http().get(`/orders/${no}`).set(guest.headers).expect(200);
    expect(mine.body.payments).toEqual([{ outTradeNo: no, channel: 'h5', status: 'PAID', createdAt: expect.any(String) }]);
  });

  it('native: codeUrl weixin://wxpay/bizpayurl?pr=…; "scanned" through the sandbox control API → PAID, trade_type NATIVE', async () => {
    const no = await order(guest);
    const res = await pay(guest, no, { channel: 'native' }).expect(200);
    expect(res.body).toEqual({ channel: 'native', outTradeNo: no, codeUrl: expect.stringMatching(/^weixin:\/\/wxpay\/bizpayurl\?pr=[0-9A-Za-z]+$/) });
    expect(prepaysSent()).toEqual([prepayRoute('native')]);
    expect(await atWechatAsMerchant(no)).toMatchObject({ ...(await merchantFields((await shop.sandbox.merchant()).appid)), trade_state: 'NOTPAY' });
    const scanned = await fetch(`${shop.baseUrl}/sandbox/control/pay`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...(shop.t.config.sandbox.controlToken ? { Authorization: `Bearer ${shop.t.config.sandbox.controlToken}` } : {}) },
      body: JSON.stringify({ codeUrl: res.body.codeUrl, openid: 'o_native_scanner' }),
    });
    expect(scanned.status).toBe(200);
    await shop.waitForStatus(no, 'PAID');
    const tx = await shop.sandbox.transaction(no);
    expect(tx).toMatchObject({ trade_type: 'NATIVE', trade_state: 'SUCCESS' });
  });

  it('miniprogram: wx.requestPayment parameters (no appId) signed over the mini-program appid, prepaid with the mini-program appid and openid', async () => {
    const { code } = await shop.sandbox.miniprogramCode({ openid: 'o_mp_channel' });
    const token = (await shop.http().post('/auth/miniprogram/login').send({ code }).expect(200)).body.token as string;
    const mp: Login = { cookie: '', token, location: '', headers: { Authorization: `Bearer ${token}` } };
    const no = await order(mp);
    const res = await pay(mp, no, { channel: 'miniprogram' }).expect(200);
    expect(Object.keys(res.body).sort()).toEqual(['channel', 'nonceStr', 'outTradeNo', 'package', 'paySign', 'signType', 'timeStamp']);
    const appid = await shop.sandbox.miniprogramAppid();
    await expectPaySign(res.body, appid);
    const atWechat = await shop.sandbox.transaction(no);
    expect(atWechat).toMatchObject({ appid, payer: { openid: 'o_mp_channel' } });
    // A provider names the mini-program as sub_appid and its openid as payer.sub_openid.
    expect(prepaysSent()).toEqual([prepayRoute('miniprogram')]);
    expect(await atWechatAsMerchant(no)).toMatchObject({ ...(await merchantFields(appid, 'o_mp_channel')), trade_state: 'NOTPAY' });
    await shop.sandbox.pay(String(res.body.package).replace('prepay_id=', ''));
    await shop.waitForStatus(no, 'PAID');
  });

  const miniprogramLogin = async (openid: string): Promise<Login> => {
    const { code } = await shop.sandbox.miniprogramCode({ openid });
    const token = (await shop.http().post('/auth/miniprogram/login').send({ code }).expect(200)).body.token as string;
    return { cookie: '', token, location: '', headers: { Authorization: `Bearer ${token}` } };
  };
  /** Pays the answer of POST /orders/:no/pay at the sandbox, whatever its channel. */
  const payAtSandbox = (body: { channel: string; package?: string; h5Url?: string; codeUrl?: string }) =>
    shop.sandbox.pay(
      body.channel === 'h5'
        ? prepayIdOfH5(body.h5Url!)
        : body.channel === 'native'
          ? new URL(body.codeUrl!.replace('weixin://', 'http://')).searchParams.get('pr')!
          : String(body.package).replace('prepay_id=', ''),
    );

  it.each(['jsapi', 'h5', 'native', 'miniprogram'])('%s: a lost notification is found by GET /orders/:no (query-on-read) and, for another order, by the reconcile sweep', async (channel) => {
    const shopper = channel === 'jsapi' ? wechatShopper : channel === 'miniprogram' ? await miniprogramLogin(`o_mp_lost_${Date.now()}`) : guest;
    await shop.sandbox.dropNotifications(true);
    const read = await order(shopper);
    const swept = await order(shopper);
    for (const no of [read, swept]) {
      const res = await pay(shopper, no, { channel }).expect(200);
      expect((await payAtSandbox(res.body)).result).toBe('ok');
    }
    expect(await shop.status(read)).toBe('NOTPAY');
    const mine = await shop.http().get(`/orders/${read}`).set(shopper.headers).expect(200);
    expect(mine.body.status).toBe('PAID');
    expect(await timeline(read)).toContain('query:applied');
    const result = await jobs.reconcile();
    expect(result.paid).toBeGreaterThanOrEqual(1);
    expect(await shop.status(swept)).toBe('PAID');
    expect(await timeline(swept)).toContain('reconcile:applied');
  });

  it('auto-close closes an h5 and a native attempt at WeChat and here', async () => {
    const h5 = await order(guest);
    const native = await order(guest);
    await pay(guest, h5, { channel: 'h5' }).expect(200);
    await pay(guest, native, { channel: 'native' }).expect(200);
    await sleep(3300);
    const result = await jobs.closeExpired();
    expect(result.closed).toBeGreaterThanOrEqual(2);
    for (const no of [h5, native]) {
      expect(await shop.status(no)).toBe('CLOSED');
      expect((await shop.sandbox.transaction(no)).trade_state).toBe('CLOSED');
      expect((await payments(no))[0].status).toBe('CLOSED');
    }
  });

  it('switching channel queries, then closes the old attempt at WeChat before the new prepay; the new attempt is <no>_2 and pays the order', async () => {
    const no = await order(wechatShopper);
    await pay(wechatShopper, no).expect(200);
    proxy.resetStats();
    const res = await pay(wechatShopper, no, { channel: 'native' }).expect(200);
    expect(res.body).toMatchObject({ channel: 'native', outTradeNo: `${no}_2` });
    if (version === 'v3') {
      expect(proxy.calls.every((c) => c.path.includes(partner ? '/v3/pay/partner/transactions/' : '/v3/pay/transactions/'))).toBe(true);
      expect(wechatCalls()).toEqual([`GET out-trade-no/${no}`, `POST out-trade-no/${no}/close`, 'POST native']);
    } else expect(wechatCalls()).toEqual(['POST pay/orderquery', 'POST pay/closeorder', 'POST pay/unifiedorder']);
    expect((await shop.sandbox.transaction(no)).trade_state).toBe('CLOSED');
    expect(await payments(no)).toEqual([
      expect.objectContaining({ outTradeNo: no, channel: 'jsapi', status: 'CLOSED' }),
      expect.objectContaining({ outTradeNo: `${no}_2`, channel: 'native', status: 'NOTPAY' }),
    ]);
    await shop.sandbox.pay(new URL(res.body.codeUrl.replace('weixin://', 'http://')).searchParams.get('pr')!);
    await shop.waitForStatus(no, 'PAID');
    expect((await payments(no)).map((p) => p.status)).toEqual(['CLOSED', 'PAID']);
    // The timeline in the order things happened: each attempt's 'prepay' (and the second's
    // 'attempt_opened') between the switch's query and close of the first and the payment.
    const entries = (await shop.admin().get(`/admin/orders/${no}`).expect(200)).body.timeline as Array<{ type: string; at: string; detail: Record<string, unknown> }>;
    expect(entries.map((e) => e.type)).toEqual(['created', 'prepay', 'switch-check:NOTPAY', 'attempt_closed', 'attempt_opened', 'prepay', 'notification:applied']);
    const timeExpire = expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$/);
    expect(entries[1].detail).toEqual({ channel: 'jsapi', attempt: no, prepayId: expect.any(String), reused: false, timeExpire });
    expect(entries[3].detail).toEqual({ attempt: no, channel: 'jsapi', reason: 'channel_switch' });
    expect(entries[4].detail).toEqual({ attempt: `${no}_2`, channel: 'native', previous: no });
    expect(entries[5].detail).toEqual({ channel: 'native', attempt: `${no}_2`, reused: false, timeExpire });
    expect([...entries].sort((a, b) => Date.parse(a.at) - Date.parse(b.at))).toEqual(entries);
  });

  it('a switch when the old attempt was paid meanwhile (WeChat refuses the close) answers ORDER_PAID and opens no attempt', async () => {
    await shop.sandbox.dropNotifications(true);
    const no = await order(wechatShopper);
    const prepayId = String((await pay(wechatShopper, no).expect(200)).body.package).replace('prepay_id=', '');
    proxy.on(isClose(no), { before: async () => void (await shop.sandbox.pay(prepayId)) });
    const res = await pay(wechatShopper, no, { channel: 'h5' }).expect(409);
    expect(res.body).toMatchObject({ code: 'ORDER_PAID' });
    expect(await shop.status(no)).toBe('PAID');
    expect(await payments(no)).toEqual([expect.objectContaining({ outTradeNo: no, status: 'PAID' })]);
  });

  it('both attempts paid (the race closing narrows): one PAID with the first payment, the second refunded in full automatically and on the timeline', async () => {
    const no = await order(wechatShopper);
    const first = String((await pay(wechatShopper, no).expect(200)).body.package).replace('prepay_id=', '');
    // The switch's query is lost on the way (WeChat "does not know" the number), so the old attempt stays open at WeChat.
    proxy.on(isQuery(no), { answer: await orderNotExist() });
    const second = await pay(wechatShopper, no, { channel: 'native' }).expect(200);
    expect(second.body.outTradeNo).toBe(`${no}_2`);
    expect((await shop.sandbox.pay(first)).result).toBe('ok');
    await shop.waitForStatus(no, 'PAID');
    const firstTx = (await shop.sandbox.transaction(no)).transaction_id;
    expect((await shop.sandbox.pay(new URL(second.body.codeUrl.replace('weixin://', 'http://')).searchParams.get('pr')!)).result).toBe('ok');
    const deadline = Date.now() + 15_000;
    let refunds: Array<{ outRefundNo: string; status: string; paymentOutTradeNo: string; amount: number }> = [];
    while (Date.now() < deadline) {
      refunds = (await shop.admin().get(`/admin/refunds?outTradeNo=${no}`).expect(200)).body;
      if (refunds.some((r) => r.status === 'SUCCESS')) break;
      await sleep(100);
    }
    expect(refunds).toEqual([expect.objectContaining({ outRefundNo: `DP${no}_2`, paymentOutTradeNo: `${no}_2`, amount: 990, status: 'SUCCESS' })]);
    const admin = (await shop.admin().get(`/admin/orders/${no}`).expect(200)).body;
    expect(admin).toMatchObject({ status: 'PAID', transactionId: firstTx, refundedTotal: 0, paidOutTradeNo: no });
    expect(admin.payments.map((p: Payment) => p.status)).toEqual(['PAID', 'REFUNDED']);
    expect(admin.timeline.map((e: { type: string }) => e.type)).toEqual(expect.arrayContaining(['notification:duplicate_payment', 'refund_success']));
    expect((await shop.sandbox.transaction(`${no}_2`)).trade_state).toBe('REFUND');
  });

  it('a duplicate payment whose automatic refund WeChat refused (NOT_ENOUGH) is refunded by the payment jobs\' sweep under the next number', async () => {
    const no = await order(wechatShopper);
    const first = String((await pay(wechatShopper, no).expect(200)).body.package).replace('prepay_id=', '');
    proxy.on(isQuery(no), { answer: await orderNotExist() });
    const second = await pay(wechatShopper, no, { channel: 'native' }).expect(200);
    await shop.sandbox.pay(first);
    await shop.waitForStatus(no, 'PAID');
    await shop.sandbox.setInsufficientBalance(true);
    type R = { outRefundNo: string; status: string };
    const refundsOf = async (): Promise<R[]> => (await shop.admin().get(`/admin/refunds?outTradeNo=${no}`).expect(200)).body;
    const until = async (check: (rows: R[]) => boolean) => {
      const deadline = Date.now() + 15_000;
      let rows: R[] = [];
      while (Date.now() < deadline && !check((rows = await refundsOf()))) await sleep(100);
      return rows;
    };
    try {
      await shop.sandbox.pay(new URL(second.body.codeUrl.replace('weixin://', 'http://')).searchParams.get('pr')!);
      expect(await until((rows) => rows.some((r) => r.status === 'FAILED'))).toEqual([expect.objectContaining({ outRefundNo: `DP${no}_2`, status: 'FAILED' })]);
    } finally {
      await shop.sandbox.setInsufficientBalance(false);
    }
    const sweep = await jobs.resolvePaidAfterClose({ olderThanMs: 0 });
    expect(sweep.retried).toBeGreaterThanOrEqual(1);
    const rows = await until((list) => list.some((r) => r.status === 'SUCCESS'));
    expect(rows).toEqual(expect.arrayContaining([expect.objectContaining({ outRefundNo: `DP${no}_2-2`, status: 'SUCCESS' })]));
    expect((await payments(no)).map((p) => p.status)).toEqual(['PAID', 'REFUNDED']);
    // settled: the next sweep leaves it alone
    await jobs.resolvePaidAfterClose({ olderThanMs: 0 });
    expect((await refundsOf()).length).toBe(2);
  });

  it('refunds a paid h5 order to its attempt', async () => {
    const no = await order(guest);
    const res = await pay(guest, no, { channel: 'h5' }).expect(200);
    await shop.sandbox.pay(prepayIdOfH5(res.body.h5Url));
    await shop.waitForStatus(no, 'PAID');
    const refund = await shop.admin().post('/admin/refunds').send({ outTradeNo: no, amount: 990, reason: '测试退款' }).expect(201);
    expect(refund.body).toMatchObject({ outTradeNo: no, paymentOutTradeNo: no, amount: 990 });
    await shop.waitForStatus(no, 'REFUNDED', 20_000);
    expect((await payments(no))[0].status).toBe('REFUNDED');
  });

  it('reconciles a bill with all four trade types (JSAPI, mini-program JSAPI, MWEB, NATIVE) and a second attempt: no differences for them', async () => {
    const numbers: string[] = [];
    // jsapi
    const jsapi = await order(wechatShopper);
    await shop.sandbox.pay(String((await pay(wechatShopper, jsapi).expect(200)).body.package).replace('prepay_id=', ''));
    // h5
    const h5 = await order(guest);
    await shop.sandbox.pay(prepayIdOfH5((await pay(guest, h5, { channel: 'h5' }).expect(200)).body.h5Url));
    // native, on the second attempt (first jsapi, then switched)
    const switched = await order(wechatShopper);
    await pay(wechatShopper, switched).expect(200);
    const codeUrl = (await pay(wechatShopper, switched, { channel: 'native' }).expect(200)).body.codeUrl as string;
    await shop.sandbox.pay(new URL(codeUrl.replace('weixin://', 'http://')).searchParams.get('pr')!);
    // miniprogram
    const { code } = await shop.sandbox.miniprogramCode({ openid: 'o_mp_bill' });
    const token = (await shop.http().post('/auth/miniprogram/login').send({ code }).expect(200)).body.token as string;
    const mp: Login = { cookie: '', token, location: '', headers: { Authorization: `Bearer ${token}` } };
    const mini = await order(mp);
    await shop.sandbox.pay(String((await pay(mp, mini, { channel: 'miniprogram' }).expect(200)).body.package).replace('prepay_id=', ''));
    for (const no of [jsapi, h5, switched, mini]) await shop.waitForStatus(no, 'PAID');
    numbers.push(jsapi, h5, `${switched}_2`, switched, mini);

    const date = new Date(Date.now() + 8 * 3600_000).toISOString().slice(0, 10);
    const result = (await shop.admin().post(`/admin/reconciliations?date=${date}`).expect(200)).body;
    const ours = (result.differences as Array<{ outTradeNo: string; type: string }>).filter((d) => numbers.some((n) => d.outTradeNo === n || d.outTradeNo.startsWith(`${n}_`)));
    expect(ours).toEqual([]);
    // what the bill itself says about each of them
    let csv = '';
    if (version === 'v3') {
      const { WechatPayClient } = await import('../../src/wechat/pay/wechat-pay.client');
      const client = shop.t.app.get(WechatPayClient);
      const stream = await client.downloadBill(await client.applyTradeBill({ billDate: date, billType: 'SUCCESS' }));
      for await (const chunk of stream) csv += chunk.toString();
    } else csv = (await shop.admin().get(`/admin/bills/trade?date=${date}&type=SUCCESS`).expect(200)).text; // v2 downloadbill through the port
    const typeOf = (no: string) => csv.split('\n').find((line) => line.includes(`\`${no},`))?.split(',')[8]?.replace('`', '');
    expect({ jsapi: typeOf(jsapi), h5: typeOf(h5), native: typeOf(`${switched}_2`), mini: typeOf(mini) }).toEqual({ jsapi: 'JSAPI', h5: 'MWEB', native: 'NATIVE', mini: 'JSAPI' });
    expect(csv.split('\n').find((line) => line.includes(`\`${mini},`))).toContain(await shop.sandbox.miniprogramAppid());
  });

  describe('bad input: 400 with a clear message, nothing written', () => {
    it('an unknown channel names the valid ones', async () => {
      const no = await order(wechatShopper);
      const before = await count('payment_attempts');
      const res = await pay(wechatShopper, no, { channel: 'alipay' }).expect(400);
      expect(res.body).toMatchObject({ code: 'INVALID_CHANNEL' });
      expect(res.body.message).toBe('channel must be one of jsapi, h5, native, miniprogram');
      expect(await count('payment_attempts')).toBe(before);
      expect(await pay(wechatShopper, no, { channel: 7 }).expect(400)).toBeTruthy();
    });

    it('jsapi (also by default) and miniprogram for a guest say to open the shop in WeChat / the mini-program', async () => {
      const no = await order(guest);
      const before = await count('payment_attempts');
      const jsapi = await pay(guest, no).expect(400);
      expect(jsapi.body.message).toContain('open the shop in WeChat');
      const mini = await pay(guest, no, { channel: 'miniprogram' }).expect(400);
      expect(mini.body.message).toContain('open the shop in the mini-program');
      expect(await count('payment_attempts')).toBe(before);
      expect(proxy.calls).toEqual([]);
    });
  });
});

describe.each(['v3', 'v2'] as const)('payment channels without a mini-program configured (WECHATPAY_API_VERSION=%s)', (version) => {
  let shop: Shop;

  beforeAll(async () => {
    // As a live merchant without WECHAT_MINIPROGRAM_APPID / _APPSECRET: the sandbox's merchant credentials minus the mini-program.
    shop = await Shop.start({
      env: { WECHATPAY_API_VERSION: version },
      override: (builder) =>
        builder.overrideProvider(WechatCredentials).useFactory({
          inject: [AppConfig],
          factory: async (config: AppConfig) => {
            const credentials = sandboxMerchantCredentials(await loadOrCreateSandboxKeystore(config.sandbox.dataDir), config.sandbox.signMode);
            delete credentials.miniprogram;
            return credentials;
          },
        }),
    });
  });
  afterAll(() => shop?.close());

  it('miniprogram is 400 CHANNEL_UNAVAILABLE naming the variables, and nothing is written', async () => {
    const { id } = await shop.product('无小程序', 100);
    const user = await shop.login('o_no_mp');
    const no = await shop.placeOrder(user, [{ productId: id, quantity: 1 }]);
    const res = await shop.http().post(`/orders/${no}/pay`).set(user.headers).send({ channel: 'miniprogram' }).expect(400);
    expect(res.body).toMatchObject({ code: 'CHANNEL_UNAVAILABLE' });
    expect(res.body.message).toContain('WECHAT_MINIPROGRAM_APPID');
    const order = (await shop.admin().get(`/admin/orders/${no}`).expect(200)).body;
    expect(order.payments).toEqual([]);
    expect(order.timeline.map((e: { type: string }) => e.type)).toEqual(['created']);
  });
});
