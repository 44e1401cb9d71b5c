import { getDataSourceToken } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { WechatPayApiError } from '../../src/wechat/pay/errors';
import { WechatPayHttp } from '../../src/wechat/pay/wechat-pay.http';
import { loadOrCreateSandboxKeystore } from '../../src/sandbox/keystore';
import { PAYMENT_GATEWAY, PaymentGateway } from '../../src/wechat/pay/payment-gateway';
import { craftNotification } from '../helpers/craft-notification';
import { Shop } from '../helpers/shop';
import { postXml, v2Call, v2RefundNotification } from '../helpers/v2-wire';

/**
 * Service-provider mode end to end against the sandbox (issue 15), once per API version: the app as
 * a provider (WECHATPAY_SUB_MCHID) through the one payment port — APIv3's partner routes, or APIv2's
 * paths with sub_mch_id / sub_appid / sub_openid — over the sandbox's one transaction core. What only
 * one version can show (its raw answers) is asked in that version's own terms.
 */
const VERSIONS = ['v3', 'v2'] as const;

describe.each(VERSIONS)('service-provider mode (%s) against the sandbox: login, order, pay (sp_openid), notification, query-on-read', (version) => {
  const A = '1900000201';
  const B = '1900000202';
  let shop: Shop;
  let productOfA: number;
  let productOfB: number;

  beforeAll(async () => {
    shop = await Shop.start({ env: { WECHATPAY_SUB_MCHID: A, PAYMENT_QUERY_ON_READ_AFTER: '0s', WECHATPAY_API_VERSION: version } });
    await shop.admin().post('/admin/sub-merchants').send({ subMchid: B, name: '二号店' }).expect(201);
    productOfA = (await shop.product('A 店杯子', 990)).id;
    productOfB = (await shop.admin().post('/admin/products').send({ name: 'B 店杯子', price: 880, subMchid: B }).expect(201)).body.id;
  });
  afterAll(() => shop?.close());

  it("pays sub-merchant B's order through the provider's JSAPI prepay; the notification names the provider and B; the order is PAID", async () => {
    const alice = await shop.login('o_partner_alice');
    const no = await shop.placeOrder(alice, [{ productId: productOfB, quantity: 1 }]);
    const prepayId = await shop.prepay(alice, no);
    const atWechat = await shop.sandbox.transaction(no);
    expect(atWechat).toMatchObject({ trade_state: 'NOTPAY' });
    await shop.sandbox.pay(prepayId);
    // PAID proves the notification carried sub_mchid B: a direct-shaped or another sub-merchant's one is ANOMALY.
    await shop.waitForStatus(no, 'PAID');
    const order = (await shop.admin().get(`/admin/orders/${no}`).expect(200)).body;
    expect(order).toMatchObject({ status: 'PAID', subMchid: B, payerOpenid: 'o_partner_alice', paidTotal: 880 });
    const [event] = await shop.t.app
      .get<DataSource>(getDataSourceToken())
      .query("SELECT raw_body FROM payment_events WHERE out_trade_no = ? AND kind = 'transaction' AND verified = 1", [no]);
    if (version === 'v2') {
      // unifiedorder with sub_mch_id (no APIv3 call), and WeChat's v2 XML notification naming the provider and B.
      expect(await shop.sandbox.callsTo('v3/pay/transactions/jsapi')).toBe(0);
      expect(event.raw_body).toMatch(/^<xml>/);
      expect(event.raw_body).toContain(`<sub_mch_id><![CDATA[${B}]]></sub_mch_id>`);
      expect(event.raw_body).toContain('<openid><![CDATA[o_partner_alice]]></openid>');
    } else {
      expect(event.raw_body.startsWith('{')).toBe(true);
    }
  });

  it("finds a lost notification of A's order by querying the partner route (query-on-read)", async () => {
    await shop.sandbox.dropNotifications(true);
    try {
      const bob = await shop.login('o_partner_bob');
      const no = await shop.placeOrder(bob, [{ productId: productOfA, quantity: 1 }]);
      await shop.sandbox.pay(await shop.prepay(bob, no));
      expect(await shop.status(no)).toBe('NOTPAY');
      const read = await shop.http().get(`/orders/${no}`).set(bob.headers).expect(200);
      expect(read.body).toMatchObject({ status: 'PAID', subMchid: A });
    } finally {
      await shop.sandbox.dropNotifications(false);
    }
  });

  it('a sub-merchant registered here but not bound to the provider at WeChat cannot prepay (INVALID_REQUEST), and the order stays NOTPAY', async () => {
    await shop.admin().post('/admin/sub-merchants').send({ subMchid: '1900000299', name: '未绑定' }).expect(201);
    const pid = (await shop.admin().post('/admin/products').send({ name: '未绑定商品', price: 100, subMchid: '1900000299' }).expect(201)).body.id;
    const carol = await shop.login('o_partner_carol');
    const no = await shop.placeOrder(carol, [{ productId: pid, quantity: 1 }]);
    const res = await shop.http().post(`/orders/${no}/pay`).set(carol.headers);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(JSON.stringify(res.body)).toContain('INVALID_REQUEST');
    expect(await shop.status(no)).toBe('NOTPAY');
  });

  it("refunds sub-merchant B's order naming sub_mchid B (refund body and refund query); the partner refund notification (sp_mchid, sub_mchid B) settles it", async () => {
    const hank = await shop.login('o_partner_hank');
    const no = await shop.paidOrder(hank, [{ productId: productOfB, quantity: 1 }]);
    const created = await shop.admin().post('/admin/refunds').send({ outTradeNo: no, amount: 880, reason: 'B 店全额退款' }).expect(201);
    const outRefundNo = created.body.outRefundNo as string;
    // The sandbox, as WeChat, finds a partner trade's refund only under its own sub_mchid: the refund was created with B.
    if (version === 'v3') {
      const http = shop.t.app.get(WechatPayHttp);
      const path = `/v3/refund/domestic/refunds/${outRefundNo}`;
      const withoutSub = (await http.request({ method: 'GET', path }).catch((e: WechatPayApiError) => e)) as WechatPayApiError;
      expect([withoutSub.httpStatus, withoutSub.wechatCode]).toEqual([400, 'PARAM_ERROR']);
      const underA = (await http.request({ method: 'GET', path, query: { sub_mchid: A } }).catch((e: WechatPayApiError) => e)) as WechatPayApiError;
      expect(underA.httpStatus).toBe(404);
      const underB = await http.request<Record<string, unknown>>({ method: 'GET', path, query: { sub_mchid: B } });
      expect(underB.body).toMatchObject({ out_refund_no: outRefundNo, out_trade_no: no, amount: expect.objectContaining({ refund: 880 }) });
    } else {
      const keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
      const query = (extra: Record<string, string>) => v2Call(shop.baseUrl, keystore, '/pay/refundquery', { out_refund_no: outRefundNo, ...extra });
      expect(await query({})).toMatchObject({ return_code: 'SUCCESS', result_code: 'FAIL', err_code: 'PARAM_ERROR', err_code_des: expect.stringContaining('受理机构必须传入sub_mch_id') });
      expect(await query({ sub_mch_id: A })).toMatchObject({ result_code: 'FAIL', err_code: 'REFUNDNOTEXIST' });
      expect(await query({ sub_mch_id: B })).toMatchObject({ result_code: 'SUCCESS', sub_mch_id: B, out_trade_no: no, out_refund_no_0: outRefundNo, refund_fee_0: '880' });
      // The refund itself went to /secapi/pay/refund naming B.
      expect(await shop.sandbox.callsTo('v3/refund/domestic/refunds')).toBe(0);
    }
    await shop.sandbox.waitForNotification({ outRefundNo });
    // Applied from the notification (the list does not ask WeChat): sp_mchid ours, sub_mchid the order's.
    const listed = (await shop.admin().get(`/admin/refunds?outTradeNo=${no}`).expect(200)).body as Array<{ outRefundNo: string; status: string }>;
    expect(listed).toEqual([expect.objectContaining({ outRefundNo, status: 'SUCCESS' })]);
    expect((await shop.admin().get(`/admin/orders/${no}`).expect(200)).body).toMatchObject({ status: 'REFUNDED', refundedTotal: 880, subMchid: B });
    // The refund query goes out with ?sub_mchid=B too (GET /admin/refunds/:no of a settled refund answers from here; the gateway's query is what the sweep uses).
    const gateway = shop.t.app.get<PaymentGateway>(PAYMENT_GATEWAY);
    expect(await gateway.queryRefund(outRefundNo, { subMchid: B })).toMatchObject({ outRefundNo, status: 'SUCCESS' });
    await expect(gateway.queryRefund(outRefundNo, { subMchid: A })).rejects.toMatchObject({ httpStatus: 404 });
  });

  it("a refund notification of sub-merchant A's refund claiming sub-merchant B (or another sp_mchid) is not ours and changes nothing; A's own settles it", async () => {
    const keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
    const ivy = await shop.login('o_partner_ivy');
    const no = await shop.paidOrder(ivy, [{ productId: productOfA, quantity: 1 }]);
    // The sandbox's own refund notification is dropped for the whole test: only the crafted ones reach the app.
    await shop.sandbox.dropNotifications(true);
    try {
      const outRefundNo: string = (await shop.admin().post('/admin/refunds').send({ outTradeNo: no, amount: 990, reason: 'A 店退款' }).expect(201)).body.outRefundNo;
      const refundAtWechat = await shop.sandbox.refund(outRefundNo);
      const resource = (overrides: Record<string, unknown>) => ({
        sp_mchid: keystore.mchid,
        sub_mchid: A,
        transaction_id: refundAtWechat.transaction_id,
        out_trade_no: no,
        refund_id: refundAtWechat.refund_id,
        out_refund_no: outRefundNo,
        refund_status: 'SUCCESS',
        success_time: '2026-11-24T10:00:00+08:00',
        user_received_account: '支付用户零钱',
        amount: { total: 990, refund: 990, payer_total: 990, payer_refund: 990 },
        ...overrides,
      });
      const post = (r: Record<string, unknown>) => {
        if (version === 'v2') {
          // v2: the envelope names mch_id (the provider) and sub_mch_id; req_info the refund result.
          const { sp_mchid, sub_mchid, amount, success_time: _t, user_received_account: _u, ...rest } = r as Record<string, unknown> & { amount: { total: number; refund: number } };
          const xml = v2RefundNotification(keystore, { mch_id: sp_mchid as string, sub_mch_id: sub_mchid as string | undefined }, {
            ...(rest as Record<string, string>),
            total_fee: amount.total,
            refund_fee: amount.refund,
            success_time: '2026-11-24 10:00:00',
          });
          return postXml(`${shop.baseUrl}/notify/wechatpay/v2/refund`, xml);
        }
        const crafted = craftNotification(keystore, r, { eventType: 'REFUND.SUCCESS' });
        return fetch(`${shop.baseUrl}/notify/wechatpay/refund`, { method: 'POST', headers: crafted.headers, body: crafted.body });
      };
      const status = async () => ((await shop.admin().get(`/admin/refunds?outTradeNo=${no}`).expect(200)).body as Array<{ status: string }>)[0].status;
      await post(resource({ sub_mchid: B }));
      // v2 refuses another mch_id outright (FAIL, as issue 14's notification checks); v3 leaves it to the refund module.
      const otherProvider = await post(resource({ sp_mchid: '1900009999' }));
      if (version === 'v2') expect(otherProvider.status).toBe(400);
      await post(resource({ sub_mchid: undefined }));
      expect(await status()).toBe('PROCESSING');
      expect((await shop.admin().get(`/admin/orders/${no}`).expect(200)).body).toMatchObject({ status: 'PAID', refundedTotal: 0 });
      expect((await post(resource({}))).status).toBeLessThan(300);
      expect(await status()).toBe('SUCCESS');
    } finally {
      await shop.sandbox.dropNotifications(false);
    }
  });

  if (version === 'v2') it("answers a provider's v2 calls with WeChat's errors: sub_mch_id unbound → INVALID_REQUEST, sub_openid without sub_appid or sub_appid without sub_mch_id → PARAM_ERROR, a partner trade without its sub_mch_id → PARAM_ERROR, under another → ORDERNOTEXIST", async () => {
    const keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
    const order = (extra: Record<string, string>, outTradeNo = `P${Date.now()}${Math.floor(Math.random() * 1000)}`) =>
      v2Call(shop.baseUrl, keystore, '/pay/unifiedorder', {
        body: '测试',
        out_trade_no: outTradeNo,
        total_fee: 1,
        spbill_create_ip: '127.0.0.1',
        notify_url: `${shop.baseUrl}/notify/wechatpay/v2/transaction`,
        trade_type: 'JSAPI',
        ...extra,
      });
    expect(await order({ sub_mch_id: '1900000299', openid: 'o_x' })).toMatchObject({ return_code: 'SUCCESS', result_code: 'FAIL', err_code: 'INVALID_REQUEST' });
    expect(await order({ sub_mch_id: A, sub_openid: 'o_sub' })).toMatchObject({ result_code: 'FAIL', err_code: 'PARAM_ERROR' });
    expect(await order({ sub_appid: 'wx8888888888888888', sub_openid: 'o_sub' })).toMatchObject({ result_code: 'FAIL', err_code: 'PARAM_ERROR', err_code_des: expect.stringContaining('受理机构必须传入sub_mch_id') });
    const no = `PV2RAW${Date.now()}`;
    const ok = await order({ sub_mch_id: B, openid: 'o_partner_v2_raw' }, no);
    expect(ok).toMatchObject({ result_code: 'SUCCESS', appid: keystore.appid, mch_id: keystore.mchid, sub_mch_id: B, prepay_id: expect.stringMatching(/^wx/) });
    const query = (extra: Record<string, string>) => v2Call(shop.baseUrl, keystore, '/pay/orderquery', { out_trade_no: no, ...extra });
    expect(await query({})).toMatchObject({ result_code: 'FAIL', err_code: 'PARAM_ERROR', err_code_des: expect.stringContaining('受理机构必须传入sub_mch_id') });
    expect(await query({ sub_mch_id: A })).toMatchObject({ result_code: 'FAIL', err_code: 'ORDERNOTEXIST' });
    expect(await query({ sub_mch_id: B })).toMatchObject({ result_code: 'SUCCESS', sub_mch_id: B, trade_state: 'NOTPAY', openid: 'o_partner_v2_raw' });
    expect(await v2Call(shop.baseUrl, keystore, '/pay/closeorder', { out_trade_no: no, sub_mch_id: A })).toMatchObject({ result_code: 'FAIL', err_code: 'ORDERNOTEXIST' });
  });

  if (version === 'v3') it("answers a provider's partner calls with WeChat's errors: sub_mchid omitted → PARAM_ERROR, unbound → INVALID_REQUEST, sub_openid without sub_appid → PARAM_ERROR", async () => {
    const http = shop.t.app.get(WechatPayHttp);
    const merchant = await shop.sandbox.merchant();
    const body = (extra: Record<string, unknown>) => ({
      sp_appid: merchant.appid,
      sp_mchid: merchant.mchid,
      description: '测试',
      out_trade_no: `P${Date.now()}`,
      notify_url: `${shop.baseUrl}/notify/wechatpay/transaction`,
      amount: { total: 1, currency: 'CNY' },
      payer: { sp_openid: 'o_x' },
      ...extra,
    });
    const errorOf = async (path: string, payload: Record<string, unknown>) => {
      try {
        await http.request({ method: 'POST', path, body: payload });
      } catch (error) {
        return error as WechatPayApiError;
      }
      throw new Error('expected a refusal');
    };
    const omitted = await errorOf('/v3/pay/partner/transactions/jsapi', body({}));
    expect([omitted.httpStatus, omitted.wechatCode, omitted.wechatMessage]).toEqual([400, 'PARAM_ERROR', expect.stringContaining('受理机构必须传入sub_mch_id')]);
    const unbound = await errorOf('/v3/pay/partner/transactions/jsapi', body({ sub_mchid: '1900000299' }));
    expect([unbound.httpStatus, unbound.wechatCode]).toEqual([400, 'INVALID_REQUEST']);
    const subOpenid = await errorOf('/v3/pay/partner/transactions/jsapi', body({ sub_mchid: A, payer: { sub_openid: 'o_sub' } }));
    expect([subOpenid.httpStatus, subOpenid.wechatCode]).toEqual([400, 'PARAM_ERROR']);
    const query = await http.request({ method: 'GET', path: '/v3/pay/partner/transactions/out-trade-no/NOPE123', query: { sp_mchid: merchant.mchid } }).catch((e: WechatPayApiError) => e);
    expect((query as WechatPayApiError).wechatCode).toBe('PARAM_ERROR');
  });

  it('GET /admin/orders?subMchid= lists only that sub-merchant\'s orders; a malformed subMchid is a 400', async () => {
    const ofB = (await shop.admin().get(`/admin/orders?subMchid=${B}`).expect(200)).body;
    expect(ofB.total).toBeGreaterThanOrEqual(1);
    expect(ofB.items.every((o: { subMchid: string }) => o.subMchid === B)).toBe(true);
    const ofA = (await shop.admin().get(`/admin/orders?subMchid=${A}`).expect(200)).body;
    expect(ofA.items.length).toBeGreaterThanOrEqual(1);
    expect(ofA.items.every((o: { subMchid: string }) => o.subMchid === A)).toBe(true);
    const bad = await shop.admin().get('/admin/orders?subMchid=abc');
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body.message)).toContain('subMchid must be');
  });

  it("GET /admin/refunds?subMchid= lists only refunds of that sub-merchant's orders; a malformed subMchid is a 400 naming it", async () => {
    const erin = await shop.login('o_partner_erin');
    const paid = async (productId: number) => {
      const no = await shop.placeOrder(erin, [{ productId, quantity: 1 }]);
      await shop.sandbox.pay(await shop.prepay(erin, no));
      await shop.waitForStatus(no, 'PAID');
      return no;
    };
    const ofA = await paid(productOfA);
    const ofB = await paid(productOfB);
    await shop.admin().post('/admin/refunds').send({ outTradeNo: ofA, amount: 100, reason: 'A 店退款' }).expect(201);
    await shop.admin().post('/admin/refunds').send({ outTradeNo: ofB, amount: 100, reason: 'B 店退款' }).expect(201);
    const listB = (await shop.admin().get(`/admin/refunds?subMchid=${B}`).expect(200)).body as Array<{ outTradeNo: string }>;
    expect(listB.map((r) => r.outTradeNo)).toContain(ofB);
    expect(listB.map((r) => r.outTradeNo)).not.toContain(ofA);
    const listA = (await shop.admin().get(`/admin/refunds?subMchid=${A}`).expect(200)).body as Array<{ outTradeNo: string }>;
    expect(listA.map((r) => r.outTradeNo)).toContain(ofA);
    expect(listA.map((r) => r.outTradeNo)).not.toContain(ofB);
    // Every listed refund's order is A's.
    for (const r of listA) expect((await shop.admin().get(`/admin/orders/${r.outTradeNo}`).expect(200)).body.subMchid).toBe(A);
    const all = (await shop.admin().get('/admin/refunds').expect(200)).body as Array<{ outTradeNo: string }>;
    expect(all.map((r) => r.outTradeNo)).toEqual(expect.arrayContaining([ofA, ofB]));
    for (const badValue of ['abc', '12', '1900000201x']) {
      const bad = await shop.admin().get(`/admin/refunds?subMchid=${badValue}`);
      expect(bad.status).toBe(400);
      expect(bad.body).toMatchObject({ code: 'INVALID_SUB_MCHID', message: expect.stringContaining('subMchid must be') });
    }
    const twice = await shop.admin().get(`/admin/refunds?subMchid=${A}&subMchid=${B}`);
    expect(twice.status).toBe(400);
  });

  if (version === 'v2') it('the sub-merchant fund-flow bill, an APIv3 API, is 404 NOT_ON_APIV2 (not "direct mode")', async () => {
    const res = await shop.admin().get(`/admin/bills/sub-merchant-fundflow?date=2026-11-20&subMchid=${B}`);
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ code: 'NOT_ON_APIV2', message: expect.stringContaining('WECHATPAY_API_VERSION=v2') });
  });

  if (version === 'v2') it("the trade bill of one sub-merchant (downloadbill with sub_mch_id) has only that sub-merchant's trades, with 特约商户号; an unbound sub_mch_id is refused", async () => {
    const gateway = shop.t.app.get<PaymentGateway>(PAYMENT_GATEWAY);
    const today = new Date(Date.now() + 8 * 3600_000).toISOString().slice(0, 10);
    const bill = async (subMchid?: string) => {
      const chunks: Buffer[] = [];
      for await (const chunk of await gateway.tradeBill(today, 'ALL', subMchid ? { subMchid } : undefined)) chunks.push(Buffer.from(chunk));
      return Buffer.concat(chunks).toString('utf8')
        .split('\r\n')
        .filter((line) => line.startsWith('`20'))
        .map((line) => line.split(',').map((f) => f.replace(/^`/, '')));
    };
    const ofB = await bill(B);
    expect(ofB.length).toBeGreaterThanOrEqual(1);
    expect(ofB.every((r) => r[3] === B)).toBe(true);
    const ofA = await bill(A);
    expect(ofA.length).toBeGreaterThanOrEqual(1);
    expect(ofA.every((r) => r[3] === A)).toBe(true);
    expect((await bill()).length).toBe(ofA.length + ofB.length);
    await expect(bill('1900000299')).rejects.toMatchObject({ httpStatus: 400, wechatMessage: expect.stringContaining('绑定关系') });
    expect(await shop.sandbox.callsTo('v3/bill/tradebill')).toBe(0);
  });

  if (version === 'v3') it("the sandbox's trade bill of one sub-merchant (sub_mchid) has only that sub-merchant's trades, with 特约商户号; an unbound sub_mchid is INVALID_REQUEST", async () => {
    const { WechatPayClient } = await import('../../src/wechat/pay/wechat-pay.client');
    const http = shop.t.app.get(WechatPayHttp);
    const client = shop.t.app.get(WechatPayClient);
    const today = new Date(Date.now() + 8 * 3600_000).toISOString().slice(0, 10);
    const bill = async (subMchid?: string) => {
      const apply = await http.request<{ download_url: string; hash_type: string; hash_value: string }>({
        method: 'GET',
        path: '/v3/bill/tradebill',
        query: { bill_date: today, ...(subMchid ? { sub_mchid: subMchid } : {}) },
      });
      const chunks: Buffer[] = [];
      for await (const chunk of await client.downloadBill(apply.body as never)) chunks.push(Buffer.from(chunk));
      return Buffer.concat(chunks).toString('utf8');
    };
    const rowsOf = (text: string) =>
      text
        .split('\r\n')
        .filter((line) => line.startsWith('`20'))
        .map((line) => line.split(',').map((f) => f.replace(/^`/, '')));
    const ofB = rowsOf(await bill(B));
    expect(ofB.length).toBeGreaterThanOrEqual(1);
    expect(ofB.every((r) => r[3] === B)).toBe(true);
    const ofA = rowsOf(await bill(A));
    expect(ofA.length).toBeGreaterThanOrEqual(1);
    expect(ofA.every((r) => r[3] === A)).toBe(true);
    const all = rowsOf(await bill());
    expect(all.length).toBe(ofA.length + ofB.length);
    const unbound = (await http.request({ method: 'GET', path: '/v3/bill/tradebill', query: { bill_date: today, sub_mchid: '1900000299' } }).catch((e: WechatPayApiError) => e)) as WechatPayApiError;
    expect([unbound.httpStatus, unbound.wechatCode]).toEqual([400, 'INVALID_REQUEST']);
  });
});

describe.each(VERSIONS)('service-provider mode (%s) against the sandbox: auto-close', (version) => {
  const A = '1900000201';
  const B = '1900000202';
  let shop: Shop;

  beforeAll(async () => {
    shop = await Shop.start({ env: { WECHATPAY_SUB_MCHID: A, ORDER_CLOSE_AFTER: '3s', WECHATPAY_API_VERSION: version } });
    await shop.admin().post('/admin/sub-merchants').send({ subMchid: B, name: '二号店' }).expect(201);
  });
  afterAll(() => shop?.close());

  it("closes an expired order of sub-merchant B at WeChat through the partner close ({ sp_mchid, sub_mchid: B }) and here", async () => {
    const pid = (await shop.admin().post('/admin/products').send({ name: 'B 店限时', price: 300, stock: 1, subMchid: B }).expect(201)).body.id;
    const dave = await shop.login('o_partner_dave');
    const no = await shop.placeOrder(dave, [{ productId: pid, quantity: 1 }]);
    await shop.prepay(dave, no);
    await new Promise((resolve) => setTimeout(resolve, 3300));
    const { PaymentJobs } = await import('../../src/payment/payment.jobs');
    const result = await shop.t.app.get(PaymentJobs).closeExpired();
    expect(result.closed).toBeGreaterThanOrEqual(1);
    expect(await shop.status(no)).toBe('CLOSED');
    // CLOSED at the sandbox proves the close named B: another sub_mchid is not found there and leaves it NOTPAY.
    expect((await shop.sandbox.transaction(no)).trade_state).toBe('CLOSED');
    const stock = (await shop.admin().get('/admin/products').expect(200)).body.find((p: { id: number }) => p.id === pid).stock;
    expect(stock).toBe(1);
  });
});

describe.each(VERSIONS)("service-provider mode (%s) with the sub-merchant's own official account (WECHAT_SUB_APPID): sub_openid", (version) => {
  const A = '1900000201';
  const B = '1900000202';
  const SUB_APPID = 'wx5ab0c0ffee0sub12';
  const SUB_SECRET = 'f0e1d2c3b4a5968778695a4b3c2d1e0f';
  let shop: Shop;

  beforeAll(async () => {
    shop = await Shop.start({ env: { WECHATPAY_SUB_MCHID: A, WECHAT_SUB_APPID: SUB_APPID, WECHAT_SUB_APPSECRET: SUB_SECRET, WECHATPAY_API_VERSION: version } });
    await shop.admin().post('/admin/sub-merchants').send({ subMchid: B, name: '二号店' }).expect(201);
  });
  afterAll(() => shop?.close());

  const bridge = (path: 'pay' | 'config', body: unknown) =>
    fetch(`${shop.baseUrl}/sandbox/jsbridge/${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) }).then(
      (r) => r.json() as Promise<{ ok: boolean; errDesc?: string; errMsg?: string }>,
    );

  it('logs in through the sub-merchant official account, prepays with sub_appid + payer.sub_openid, the invoke parameters are over sub_appid, and the order is PAID', async () => {
    const merchant = await shop.sandbox.merchant();
    // OAuth goes to the sub-merchant's official account, not the provider's.
    const start = await fetch(`${shop.baseUrl}/auth/wechat/authorize?redirect=%2F&scope=snsapi_base`, { redirect: 'manual' });
    expect(new URL(start.headers.get('location')!.replace('#wechat_redirect', '')).searchParams.get('appid')).toBe(SUB_APPID);
    const frank = await shop.login('o_sub_frank');
    const me = (await shop.http().get('/auth/me').set(frank.headers).expect(200)).body;
    expect(me).toMatchObject({ openid: 'o_sub_frank' });
    const pid = (await shop.product('A 店公众号商品', 660)).id;
    const no = await shop.placeOrder(frank, [{ productId: pid, quantity: 1 }]);
    const pay = (await shop.http().post(`/orders/${no}/pay`).set(frank.headers).expect(200)).body;
    expect(pay.appId).toBe(SUB_APPID);
    // The sandbox's JS bridge checks paySign (the provider's key over appId = sub_appid) and that appId is the prepay's.
    expect(await bridge('pay', { url: `${shop.baseUrl}/pay.html`, params: pay })).toMatchObject({ ok: true });
    expect(await bridge('pay', { url: `${shop.baseUrl}/pay.html`, params: { ...pay, appId: merchant.appid } })).toMatchObject({ ok: false });
    // What the prepay named, as the provider's query shows it (v3 partner query, or v2 orderquery with sub_mch_id).
    if (version === 'v3') {
      const atWechat = await shop.t.app
        .get(WechatPayHttp)
        .request<Record<string, unknown>>({ method: 'GET', path: `/v3/pay/partner/transactions/out-trade-no/${no}`, query: { sp_mchid: merchant.mchid, sub_mchid: A } });
      expect(atWechat.body).toMatchObject({ sp_appid: merchant.appid, sub_appid: SUB_APPID, sub_mchid: A, payer: { sub_openid: 'o_sub_frank' }, trade_state: 'NOTPAY' });
    } else {
      expect(pay).toMatchObject({ signType: 'HMAC-SHA256', paySign: expect.stringMatching(/^[0-9A-F]{64}$/) });
      const keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
      const atWechat = await v2Call(shop.baseUrl, keystore, '/pay/orderquery', { out_trade_no: no, sub_mch_id: A });
      expect(atWechat).toMatchObject({ appid: merchant.appid, mch_id: merchant.mchid, sub_appid: SUB_APPID, sub_mch_id: A, sub_openid: 'o_sub_frank', trade_state: 'NOTPAY' });
      expect(atWechat.openid).toBeUndefined();
    }
    await shop.sandbox.pay(String(pay.package).replace('prepay_id=', ''));
    // PAID proves the notification's appid check: sub_appid is the appid the attempt was prepaid with.
    await shop.waitForStatus(no, 'PAID');
    expect((await shop.admin().get(`/admin/orders/${no}`).expect(200)).body).toMatchObject({ status: 'PAID', subMchid: A, payerOpenid: 'o_sub_frank' });
  });

  it('H5 and Native name sp_appid only (no payer): their notifications match the attempt and the orders are PAID', async () => {
    const { guestLogin } = await import('../helpers/login');
    const guest = await guestLogin(shop.baseUrl);
    const pid = (await shop.product('A 店 H5 商品', 230)).id;
    const merchant = await shop.sandbox.merchant();
    for (const channel of ['h5', 'native'] as const) {
      const no = await shop.placeOrder(guest, [{ productId: pid, quantity: 1 }]);
      const res = (await shop.http().post(`/orders/${no}/pay`).set(guest.headers).send({ channel }).expect(200)).body;
      const prepayId = channel === 'h5' ? new URL(res.h5Url).searchParams.get('prepay_id')! : new URL(String(res.codeUrl).replace('weixin://', 'http://')).searchParams.get('pr')!;
      await shop.sandbox.pay(prepayId, { openid: `o_${channel}_payer` });
      await shop.waitForStatus(no, 'PAID');
      const atWechat = await shop.t.app
        .get(WechatPayHttp)
        .request<Record<string, unknown>>({ method: 'GET', path: `/v3/pay/partner/transactions/out-trade-no/${no}`, query: { sp_mchid: merchant.mchid, sub_mchid: A } });
      expect(atWechat.body).toMatchObject({ sp_appid: merchant.appid, sub_mchid: A, trade_state: 'SUCCESS' });
      expect(atWechat.body).not.toHaveProperty('sub_appid');
    }
  });

  it("wx.config is signed for the sub-merchant's official account with its own jsapi_ticket (the sandbox's bridge accepts it)", async () => {
    const url = `${shop.baseUrl}/pay.html`;
    const config = (await shop.http().get(`/jssdk/config?url=${encodeURIComponent(url)}`).expect(200)).body;
    expect(config.appId).toBe(SUB_APPID);
    expect(await bridge('config', { ...config, url })).toMatchObject({ ok: true });
    expect(await bridge('config', { ...config, url, appId: (await shop.sandbox.merchant()).appid })).toMatchObject({ ok: false });
  });

  it("B (no official account of its own) is paid under the provider's: a shopper logged in through A's sub_appid is told to log in again (400 WECHAT_ACCOUNT_MISMATCH), nothing written; the sandbox binds A's sub_appid to A only (APPID_MCHID_NOT_MATCH)", async () => {
    const pid = (await shop.admin().post('/admin/products').send({ name: 'B 店商品', price: 100, subMchid: B }).expect(201)).body.id;
    const gina = await shop.login('o_sub_gina');
    const no = await shop.placeOrder(gina, [{ productId: pid, quantity: 1 }]);
    const res = await shop.http().post(`/orders/${no}/pay`).set(gina.headers);
    const merchant = await shop.sandbox.merchant();
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'WECHAT_ACCOUNT_MISMATCH', details: { appid: merchant.appid, loginUrl: `/auth/wechat/authorize?scope=snsapi_base&subMchid=${B}` } });
    expect((await shop.admin().get(`/admin/orders/${no}`).expect(200)).body).toMatchObject({ status: 'NOTPAY', payments: [] });
    // Logged in through the provider's account (B has none of its own), the same order pays with sp_openid.
    const ginaAtProvider = await shop.login('o_sp_gina', { subMchid: B });
    const mine = await shop.placeOrder(ginaAtProvider, [{ productId: pid, quantity: 1 }]);
    const pay = (await shop.http().post(`/orders/${mine}/pay`).set(ginaAtProvider.headers).expect(200)).body;
    expect(pay.appId).toBe(merchant.appid);
    const bound = await shop.t.app
      .get(WechatPayHttp)
      .request({
        method: 'POST',
        path: '/v3/pay/partner/transactions/jsapi',
        body: {
          sp_appid: merchant.appid,
          sp_mchid: merchant.mchid,
          sub_mchid: B,
          sub_appid: SUB_APPID,
          description: '测试',
          out_trade_no: `SB${Date.now()}`,
          notify_url: `${shop.baseUrl}/notify/wechatpay/transaction`,
          amount: { total: 1, currency: 'CNY' },
          payer: { sub_openid: 'o_sub_gina' },
        },
      })
      .catch((e: WechatPayApiError) => e);
    expect([(bound as WechatPayApiError).httpStatus, (bound as WechatPayApiError).wechatCode]).toEqual([400, 'APPID_MCHID_NOT_MATCH']);
  });

  if (version === 'v2') it('the sandbox refuses a v2 sub_openid that is not a user of that sub_appid (PARAM_ERROR): openids are per official account', async () => {
    const keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
    const refused = await v2Call(shop.baseUrl, keystore, '/pay/unifiedorder', {
      sub_mch_id: A,
      sub_appid: SUB_APPID,
      sub_openid: 'o_never_authorized_sub',
      body: '测试',
      out_trade_no: `S${Date.now()}`,
      total_fee: 1,
      spbill_create_ip: '127.0.0.1',
      notify_url: `${shop.baseUrl}/notify/wechatpay/v2/transaction`,
      trade_type: 'JSAPI',
    });
    expect(refused).toMatchObject({ return_code: 'SUCCESS', result_code: 'FAIL', err_code: 'PARAM_ERROR', err_code_des: expect.stringContaining('sub_openid与sub_appid不匹配') });
  });

  if (version === 'v3') it('the sandbox refuses a sub_openid that is not a user of that sub_appid (PARAM_ERROR): openids are per official account', async () => {
    const http = shop.t.app.get(WechatPayHttp);
    const merchant = await shop.sandbox.merchant();
    const refused = await http
      .request({
        method: 'POST',
        path: '/v3/pay/partner/transactions/jsapi',
        body: {
          sp_appid: merchant.appid,
          sp_mchid: merchant.mchid,
          sub_mchid: A,
          sub_appid: SUB_APPID,
          description: '测试',
          out_trade_no: `S${Date.now()}`,
          notify_url: `${shop.baseUrl}/notify/wechatpay/transaction`,
          amount: { total: 1, currency: 'CNY' },
          payer: { sub_openid: 'o_never_authorized_sub' },
        },
      })
      .catch((e: WechatPayApiError) => e);
    expect(refused).toBeInstanceOf(WechatPayApiError);
    expect([(refused as WechatPayApiError).httpStatus, (refused as WechatPayApiError).wechatCode]).toEqual([400, 'PARAM_ERROR']);
  });
});
