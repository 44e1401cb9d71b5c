import { WechatPayApiError } from '../../src/wechat/pay/errors';
import { WechatPayHttp } from '../../src/wechat/pay/wechat-pay.http';
import { Shop } from '../helpers/shop';

/**
 * The sandbox's service-provider (服务商) checks, as WeChat makes them (issue 15): who may call the
 * partner routes, which sub-merchants are bound (SANDBOX_SUB_MERCHANTS), and fault injection by the
 * partner endpoints' own names.
 */
const errorOf = async (call: Promise<unknown>): Promise<WechatPayApiError> => {
  try {
    await call;
  } catch (error) {
    if (error instanceof WechatPayApiError) return error;
    throw error;
  }
  throw new Error('expected WeChat to refuse the call');
};

const partnerBody = (merchant: { appid: string; mchid: string }, baseUrl: string, extra: Record<string, unknown> = {}) => ({
  sp_appid: merchant.appid,
  sp_mchid: merchant.mchid,
  sub_mchid: '1900000201',
  description: '测试',
  out_trade_no: `PC${Date.now()}${Math.floor(Math.random() * 1000)}`,
  notify_url: `${baseUrl}/notify/wechatpay/transaction`,
  amount: { total: 1, currency: 'CNY' },
  payer: { sp_openid: 'o_partner_checks' },
  ...extra,
});

describe('sandbox partner routes for a direct merchant', () => {
  let shop: Shop;
  beforeAll(async () => {
    shop = await Shop.start();
  });
  afterAll(() => shop?.close());

  it('a direct merchant calling the partner routes gets 403 NO_AUTH (no service-provider product), and nothing is created', async () => {
    const http = shop.t.app.get(WechatPayHttp);
    const merchant = await shop.sandbox.merchant();
    expect(merchant).toMatchObject({ merchantKind: 'direct' });
    const body = partnerBody(merchant, shop.baseUrl);
    for (const channel of ['jsapi', 'h5', 'native']) {
      const refused = await errorOf(http.request({ method: 'POST', path: `/v3/pay/partner/transactions/${channel}`, body }));
      expect([refused.httpStatus, refused.wechatCode, refused.wechatMessage]).toEqual([403, 'NO_AUTH', expect.stringContaining('商户号该产品权限未开通')]);
    }
    const query = await errorOf(
      http.request({ method: 'GET', path: `/v3/pay/partner/transactions/out-trade-no/${body.out_trade_no}`, query: { sp_mchid: merchant.mchid, sub_mchid: '1900000201' } }),
    );
    expect([query.httpStatus, query.wechatCode]).toEqual([403, 'NO_AUTH']);
    const close = await errorOf(
      http.request({ method: 'POST', path: `/v3/pay/partner/transactions/out-trade-no/${body.out_trade_no}/close`, body: { sp_mchid: merchant.mchid, sub_mchid: '1900000201' } }),
    );
    expect([close.httpStatus, close.wechatCode]).toEqual([403, 'NO_AUTH']);
    const notCreated = await fetch(`${shop.baseUrl}/sandbox/control/transactions/${body.out_trade_no}`);
    expect(notCreated.status).toBe(404);
  });
});

describe('sandbox partner routes for a provider with SANDBOX_SUB_MERCHANTS=3', () => {
  const A = '1900000201';
  const THIRD = '1900000203';
  let shop: Shop;
  beforeAll(async () => {
    shop = await Shop.start({ env: { SANDBOX_MERCHANT_TYPE: 'partner', SANDBOX_SUB_MERCHANTS: '3', PAYMENT_PREPAY_RETRIES: '1' } });
  });
  afterAll(() => shop?.close());

  it('binds 1900000201..1900000203 to the provider: the third pays, the fourth is INVALID_REQUEST', async () => {
    const merchant = await shop.sandbox.merchant();
    expect(merchant).toMatchObject({ merchantKind: 'partner', subMchids: [A, '1900000202', THIRD] });
    await shop.admin().post('/admin/sub-merchants').send({ subMchid: THIRD, name: '三号店' }).expect(201);
    await shop.admin().post('/admin/sub-merchants').send({ subMchid: '1900000204', name: '四号店（未绑定）' }).expect(201);
    const third = (await shop.admin().post('/admin/products').send({ name: '三号店商品', price: 300, subMchid: THIRD }).expect(201)).body.id;
    const fourth = (await shop.admin().post('/admin/products').send({ name: '四号店商品', price: 400, subMchid: '1900000204' }).expect(201)).body.id;
    const shopper = await shop.login('o_partner_third');
    const paid = await shop.paidOrder(shopper, [{ productId: third, quantity: 1 }]);
    expect((await shop.admin().get(`/admin/orders/${paid}`).expect(200)).body).toMatchObject({ status: 'PAID', subMchid: THIRD });
    const no = await shop.placeOrder(shopper, [{ productId: fourth, quantity: 1 }]);
    const refused = await shop.http().post(`/orders/${no}/pay`).set(shopper.headers);
    expect(refused.status).toBeGreaterThanOrEqual(400);
    expect(JSON.stringify(refused.body)).toContain('INVALID_REQUEST');
    expect((await shop.admin().get(`/admin/orders/${no}`).expect(200)).body.payments).toEqual([]);
  });

  it("answers WeChat's errors: sp_mchid another merchant's → MCH_NOT_EXISTS, sub_mchid omitted → PARAM_ERROR 受理机构必须传入sub_mch_id, unbound → INVALID_REQUEST (prepay, query and close alike)", async () => {
    const http = shop.t.app.get(WechatPayHttp);
    const merchant = await shop.sandbox.merchant();
    const other = await errorOf(http.request({ method: 'POST', path: '/v3/pay/partner/transactions/native', body: partnerBody(merchant, shop.baseUrl, { sp_mchid: '1900009999' }) }));
    expect([other.httpStatus, other.wechatCode]).toEqual([400, 'MCH_NOT_EXISTS']);
    const { sub_mchid: _omitted, ...withoutSub } = partnerBody(merchant, shop.baseUrl);
    for (const channel of ['jsapi', 'h5', 'native']) {
      const omitted = await errorOf(http.request({ method: 'POST', path: `/v3/pay/partner/transactions/${channel}`, body: withoutSub }));
      expect([omitted.httpStatus, omitted.wechatCode, omitted.wechatMessage]).toEqual([400, 'PARAM_ERROR', '受理机构必须传入sub_mch_id']);
    }
    const unbound = await errorOf(http.request({ method: 'POST', path: '/v3/pay/partner/transactions/h5', body: partnerBody(merchant, shop.baseUrl, { sub_mchid: '1900000204' }) }));
    expect([unbound.httpStatus, unbound.wechatCode]).toEqual([400, 'INVALID_REQUEST']);
    const path = '/v3/pay/partner/transactions/out-trade-no/PCNOPE';
    const queryOmitted = await errorOf(http.request({ method: 'GET', path, query: { sp_mchid: merchant.mchid } }));
    expect([queryOmitted.httpStatus, queryOmitted.wechatCode]).toEqual([400, 'PARAM_ERROR']);
    const queryUnbound = await errorOf(http.request({ method: 'GET', path, query: { sp_mchid: merchant.mchid, sub_mchid: '1900000204' } }));
    expect([queryUnbound.httpStatus, queryUnbound.wechatCode]).toEqual([400, 'INVALID_REQUEST']);
    const closeOmitted = await errorOf(http.request({ method: 'POST', path: `${path}/close`, body: { sp_mchid: merchant.mchid } }));
    expect([closeOmitted.httpStatus, closeOmitted.wechatCode]).toEqual([400, 'PARAM_ERROR']);
    const closeUnbound = await errorOf(http.request({ method: 'POST', path: `${path}/close`, body: { sp_mchid: merchant.mchid, sub_mchid: '1900000204' } }));
    expect([closeUnbound.httpStatus, closeUnbound.wechatCode]).toEqual([400, 'INVALID_REQUEST']);
  });

  it('fault injection knows the partner endpoints by their own names: a failed partner prepay is retried, then answered 503; the direct name counts nothing', async () => {
    const faults = (await (await fetch(`${shop.baseUrl}/sandbox/control/faults`)).json()) as { endpoints: { pay: string[] } };
    expect(faults.endpoints.pay).toEqual(
      expect.arrayContaining([
        'v3/pay/partner/transactions/jsapi',
        'v3/pay/partner/transactions/h5',
        'v3/pay/partner/transactions/native',
        'v3/pay/partner/transactions/out-trade-no',
        'v3/pay/partner/transactions/id',
        'v3/pay/partner/transactions/close',
      ]),
    );
    const pid = (await shop.product('故障注入', 120)).id;
    const shopper = await shop.login('o_partner_faults');
    const no = await shop.placeOrder(shopper, [{ productId: pid, quantity: 1 }]);
    const before = await shop.sandbox.calls();
    await shop.sandbox.failNext('v3/pay/partner/transactions/jsapi', '500', 2);
    const failed = await shop.http().post(`/orders/${no}/pay`).set(shopper.headers);
    expect(failed.status).toBe(503);
    const calls = await shop.sandbox.calls();
    const jsapiBefore = before['v3/pay/partner/transactions/jsapi'] ?? 0;
    expect(calls['v3/pay/partner/transactions/jsapi']).toBe(jsapiBefore + 2);
    expect(calls['v3/pay/transactions/jsapi']).toBeUndefined();
    // The fault is used up: the next pay goes through.
    expect((await shop.http().post(`/orders/${no}/pay`).set(shopper.headers)).status).toBe(200);
    expect(await shop.sandbox.callsTo('v3/pay/partner/transactions/jsapi')).toBe(jsapiBefore + 3);
  });
});
