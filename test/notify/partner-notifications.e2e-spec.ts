import { loadOrCreateSandboxKeystore, sandboxApiV2Key, SandboxKeystore } from '../../src/sandbox/keystore';
import { craftNotification } from '../helpers/craft-notification';
import { Shop } from '../helpers/shop';
import { postXml, v2PaymentNotification } from '../helpers/v2-wire';

/**
 * Service-provider mode (issue 15), once per API version: a partner notification (APIv3: sp_appid,
 * sp_mchid, sub_mchid, payer.sp_openid; APIv2: appid, mch_id, sub_mch_id, openid / sub_appid +
 * sub_openid) belongs to us only when the provider is ours, the sub-merchant is the order's own and
 * the appid is the one the order was prepaid with; anything else is ANOMALY, never PAID — on both
 * versions the same check of PaymentApplier.
 */
describe.each(['v3', 'v2'] as const)('service-provider mode (%s): partner notifications', (version) => {
  const A = '1900000109';
  const B = '1900000110';
  let shop: Shop;
  let keystore: SandboxKeystore;
  let productOfB: number;

  beforeAll(async () => {
    shop = await Shop.start({ env: { WECHATPAY_SUB_MCHID: A, WECHATPAY_API_VERSION: version } });
    keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
    await shop.admin().post('/admin/sub-merchants').send({ subMchid: B, name: '二号店' }).expect(201);
    productOfB = (await shop.admin().post('/admin/products').send({ name: 'B 店杯子', price: 1000, subMchid: B }).expect(201)).body.id;
  });
  afterAll(() => shop?.close());

  /** The notification of `resource` (in the APIv3 partner shape) as this version's WeChat sends it. */
  const post = (resource: Record<string, unknown>) => {
    if (version === 'v3') {
      const crafted = craftNotification(keystore, resource);
      return fetch(`${shop.baseUrl}/notify/wechatpay/transaction`, { method: 'POST', headers: crafted.headers, body: crafted.body });
    }
    const r = resource as Record<string, string | undefined> & { payer: { sp_openid?: string; sub_openid?: string }; amount: { total: number } };
    const xml = v2PaymentNotification(keystore, {
      appid: r.sp_appid ?? r.appid,
      mch_id: r.sp_mchid ?? r.mchid,
      sub_appid: r.sub_appid,
      sub_mch_id: r.sub_mchid,
      ...(r.payer.sub_openid ? { sub_openid: r.payer.sub_openid, sub_is_subscribe: 'N' } : { openid: r.payer.sp_openid, is_subscribe: 'N' }),
      trade_type: r.trade_type,
      bank_type: r.bank_type,
      total_fee: r.amount.total,
      fee_type: 'CNY',
      cash_fee: r.amount.total,
      transaction_id: r.transaction_id,
      out_trade_no: r.out_trade_no,
      time_end: '20261124100000',
    });
    return postXml(`${shop.baseUrl}/notify/wechatpay/v2/transaction`, xml);
  };

  const partnerResource = (outTradeNo: string, overrides: Record<string, unknown> = {}) => ({
    sp_appid: keystore.appid,
    sp_mchid: keystore.mchid,
    sub_mchid: B,
    out_trade_no: outTradeNo,
    transaction_id: `4200000${Math.floor(Math.random() * 1e12)}`.padEnd(28, '0'),
    trade_type: 'JSAPI',
    trade_state: 'SUCCESS',
    trade_state_desc: '支付成功',
    bank_type: 'OTHERS',
    success_time: '2026-11-24T10:00:00+08:00',
    payer: { sp_openid: 'o_partner_payer' },
    amount: { total: 1000, payer_total: 1000, currency: 'CNY', payer_currency: 'CNY' },
    ...overrides,
  });

  const orderOfB = async (openid: string) => {
    const shopper = await shop.login(openid);
    const no = await shop.placeOrder(shopper, [{ productId: productOfB, quantity: 1 }]);
    return no;
  };

  const okStatus = version === 'v3' ? 204 : 200;

  it("pays sub-merchant B's order from B's partner notification, payer = sp_openid (v2: openid under the provider's appid)", async () => {
    const no = await orderOfB(`o_partner_ok_${version}`);
    expect((await post(partnerResource(no))).status).toBe(okStatus);
    const order = (await shop.admin().get(`/admin/orders/${no}`).expect(200)).body;
    expect(order).toMatchObject({ status: 'PAID', subMchid: B, payerOpenid: 'o_partner_payer', paidTotal: 1000 });
  });

  it("flags a notification of sub-merchant B's order claiming sub-merchant A as ANOMALY, never PAID", async () => {
    const no = await orderOfB(`o_partner_cross_${version}`);
    expect((await post(partnerResource(no, { sub_mchid: A }))).status).toBe(okStatus);
    const order = (await shop.admin().get(`/admin/orders/${no}`).expect(200)).body;
    expect(order.status).toBe('ANOMALY');
    expect(order.anomalyReason).toContain(`/${A} are not ours`);
    expect(order.anomalyReason).toContain(`order's sub-merchant ${B}`);
  });

  it.each([
    ['another sp_mchid (not our provider account)', { sp_mchid: '1900000000' }],
    ['another sp_appid', { sp_appid: 'wx0000000000000000' }],
    ['a sub_appid the order was not prepaid with', { sub_appid: 'wx1111111111111111', payer: { sub_openid: 'o_other' } }],
  ])('flags a partner notification with %s as ANOMALY, never PAID', async (_name, overrides) => {
    const no = await orderOfB(`o_partner_${Object.keys(overrides)[0]}_${version}`);
    expect((await post(partnerResource(no, overrides))).status).toBe(okStatus);
    expect((await shop.admin().get(`/admin/orders/${no}`).expect(200)).body).toMatchObject({ status: 'ANOMALY', anomalyReason: expect.stringContaining('are not ours') });
  });

  it("flags a direct-merchant notification (no sub_mchid) for a sub-merchant's order as ANOMALY", async () => {
    const no = await orderOfB(`o_partner_direct_shape_${version}`);
    const { sp_appid, sp_mchid, sub_mchid: _sub, payer: _payer, ...rest } = partnerResource(no);
    const direct = { ...rest, appid: sp_appid, mchid: sp_mchid, payer: { sp_openid: 'o_partner_payer', openid: 'o_partner_payer' } };
    expect((await post(direct)).status).toBe(okStatus);
    expect((await shop.admin().get(`/admin/orders/${no}`).expect(200)).body.status).toBe('ANOMALY');
  });

  if (version === 'v2') {
    it("refuses a v2 partner notification not signed with the provider's APIv2 key: FAIL, nothing applied", async () => {
      const no = await orderOfB('o_partner_forged_v2');
      const xml = v2PaymentNotification(keystore, { sub_mch_id: B, openid: 'o_partner_payer', total_fee: 1000, transaction_id: '4200000000000000000000000777', out_trade_no: no }, 'f'.repeat(32));
      expect(sandboxApiV2Key(keystore)).not.toBe('f'.repeat(32));
      const res = await postXml(`${shop.baseUrl}/notify/wechatpay/v2/transaction`, xml);
      expect(res.status).toBe(401);
      expect((await shop.admin().get(`/admin/orders/${no}`).expect(200)).body.status).toBe('NOTPAY');
    });
  }
});
