import { loadOrCreateSandboxKeystore, SandboxKeystore } from '../../src/sandbox/keystore';
import { craftNotification } from '../helpers/craft-notification';
import { Shop } from '../helpers/shop';

/**
 * Service-provider mode (issue 15): a partner notification (sp_appid, sp_mchid, sub_mchid,
 * payer.sp_openid) belongs to us only when sp_mchid is ours, sub_mchid is the order's own and the
 * appid is the one the order was prepaid with; anything else is ANOMALY, never PAID.
 */
describe('service-provider mode: partner notifications', () => {
  const A = '1900000109';
  const B = '1900000110';
  let shop: Shop;
  let keystore: SandboxKeystore;
  let productOfB: number;

  beforeAll(async () => {
    shop = await Shop.start({ env: { WECHATPAY_SUB_MCHID: A } });
    keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
    await shop.admin().post('/admin/sub-merchants').send({ subMchid: B, name: '二号店' }).expect(201);
    productOfB = (await shop.admin().post('/admin/products').send({ name: 'B 店杯子', price: 1000, subMchid: B }).expect(201)).body.id;
  });
  afterAll(() => shop?.close());

  const post = (crafted: { body: Buffer; headers: Record<string, string> }) =>
    fetch(`${shop.baseUrl}/notify/wechatpay/transaction`, { method: 'POST', headers: crafted.headers, body: crafted.body });

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

  it("pays sub-merchant B's order from B's partner notification, payer = sp_openid", async () => {
    const no = await orderOfB('o_partner_ok');
    expect((await post(craftNotification(keystore, partnerResource(no)))).status).toBe(204);
    const order = (await shop.admin().get(`/admin/orders/${no}`).expect(200)).body;
    expect(order).toMatchObject({ status: 'PAID', subMchid: B, payerOpenid: 'o_partner_payer', paidTotal: 1000 });
  });

  it("flags a notification of sub-merchant B's order claiming sub-merchant A as ANOMALY, never PAID", async () => {
    const no = await orderOfB('o_partner_cross');
    expect((await post(craftNotification(keystore, partnerResource(no, { sub_mchid: A })))).status).toBe(204);
    const order = (await shop.admin().get(`/admin/orders/${no}`).expect(200)).body;
    expect(order.status).toBe('ANOMALY');
    expect(order.anomalyReason).toContain(`/${A} are not ours`);
    expect(order.anomalyReason).toContain(`order's sub-merchant ${B}`);
  });

  it.each([
    ['another sp_mchid (not our provider account)', { sp_mchid: '1900000000' }],
    ['another sp_appid', { sp_appid: 'wx0000000000000000' }],
    ['a sub_appid the order was not prepaid with', { sub_appid: 'wx1111111111111111', payer: { sub_openid: 'o_other' } }],
  ])('flags a partner notification with %s as ANOMALY', async (_name, overrides) => {
    const no = await orderOfB(`o_partner_${Object.keys(overrides)[0]}`);
    expect((await post(craftNotification(keystore, partnerResource(no, overrides)))).status).toBe(204);
    expect((await shop.admin().get(`/admin/orders/${no}`).expect(200)).body).toMatchObject({ status: 'ANOMALY', anomalyReason: expect.stringContaining('are not ours') });
  });

  it("flags a direct-merchant notification (no sub_mchid) for a sub-merchant's order as ANOMALY", async () => {
    const no = await orderOfB('o_partner_direct_shape');
    const { sp_appid, sp_mchid, sub_mchid: _sub, payer: _payer, ...rest } = partnerResource(no);
    const direct = { ...rest, appid: sp_appid, mchid: sp_mchid, payer: { openid: 'o_partner_payer' } };
    expect((await post(craftNotification(keystore, direct))).status).toBe(204);
    expect((await shop.admin().get(`/admin/orders/${no}`).expect(200)).body.status).toBe('ANOMALY');
  });
});
