import { DataSource } from 'typeorm';
import { WechatPayApiError } from '../../src/wechat/pay/errors';
import { WechatPayHttp } from '../../src/wechat/pay/wechat-pay.http';
import { Shop } from '../helpers/shop';

/**
 * Service-provider mode (issue 15): a sub-merchant's own official account registered as data
 * (POST /admin/sub-merchants { subAppid, subAppSecret }). Its shoppers log in through it
 * (GET /auth/wechat/authorize?subMchid=…), its orders are prepaid with sub_appid + payer.sub_openid,
 * paySign and wx.config (GET /jssdk/config?subMchid=…) are over its appid; the sandbox knows the
 * account because it was bound there (POST /sandbox/control/sub-merchants/:subMchid/official-account).
 */
describe("service-provider mode: a sub-merchant's own official account registered as data", () => {
  const A = '1900000201';
  const B = '1900000202';
  const B_APPID = 'wxb0b0b0b0b0b0b0b2';
  const B_SECRET = 'B0b0AppSecret0Of0Sub0Merchant002';
  let shop: Shop;
  let productOfA: number;
  let productOfB: number;

  beforeAll(async () => {
    shop = await Shop.start({ env: { WECHATPAY_SUB_MCHID: A } });
    await shop.sandbox.bindSubOfficialAccount(B, B_APPID, B_SECRET);
    await shop.admin().post('/admin/sub-merchants').send({ subMchid: B, name: '二号店', subAppid: B_APPID, subAppSecret: B_SECRET }).expect(201);
    productOfA = (await shop.product('A 店商品', 500)).id;
    productOfB = (await shop.admin().post('/admin/products').send({ name: 'B 店商品', price: 770, subMchid: B }).expect(201)).body.id;
  });
  afterAll(() => shop?.close());

  const count = async (table: string) => Number((await shop.t.app.get(DataSource).query(`SELECT COUNT(*) AS n FROM ${table}`))[0].n);
  const bridge = (path: 'pay' | 'config', body: unknown) =>
    fetch(`${shop.baseUrl}/sandbox/jsbridge/${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) }).then(
      (r) => r.json() as Promise<{ ok: boolean; errDesc?: string; errMsg?: string }>,
    );
  const partnerQuery = async (no: string, subMchid: string) => {
    const merchant = await shop.sandbox.merchant();
    return (
      await shop.t.app
        .get(WechatPayHttp)
        .request<Record<string, unknown>>({ method: 'GET', path: `/v3/pay/partner/transactions/out-trade-no/${no}`, query: { sp_mchid: merchant.mchid, sub_mchid: subMchid } })
    ).body;
  };

  it("the sandbox knows B's official account, bound to B", async () => {
    const accounts = await shop.sandbox.subMerchants();
    expect(accounts.find((a) => a.subMchid === B)?.officialAccounts).toContain(B_APPID);
    expect(accounts.find((a) => a.subMchid === A)!.officialAccounts).not.toContain(B_APPID);
  });

  it("a shopper of B logs in through B's account, B's order is prepaid with sub_appid + payer.sub_openid, paySign is over it, and the order is PAID", async () => {
    const start = await fetch(`${shop.baseUrl}/auth/wechat/authorize?redirect=%2F&scope=snsapi_base&subMchid=${B}`, { redirect: 'manual' });
    expect(start.status).toBe(302);
    expect(new URL(start.headers.get('location')!.replace('#wechat_redirect', '')).searchParams.get('appid')).toBe(B_APPID);
    const alice = await shop.login('o_b_alice', { subMchid: B });
    expect((await shop.http().get('/auth/me').set(alice.headers).expect(200)).body).toMatchObject({ kind: 'wechat', openid: 'o_b_alice' });
    const no = await shop.placeOrder(alice, [{ productId: productOfB, quantity: 1 }]);
    const pay = (await shop.http().post(`/orders/${no}/pay`).set(alice.headers).expect(200)).body;
    expect(pay.appId).toBe(B_APPID);
    expect(await bridge('pay', { url: `${shop.baseUrl}/pay.html`, params: pay })).toMatchObject({ ok: true });
    expect(await bridge('pay', { url: `${shop.baseUrl}/pay.html`, params: { ...pay, appId: (await shop.sandbox.merchant()).appid } })).toMatchObject({ ok: false });
    expect(await partnerQuery(no, B)).toMatchObject({ sub_appid: B_APPID, sub_mchid: B, payer: { sub_openid: 'o_b_alice' }, trade_state: 'NOTPAY' });
    await shop.sandbox.pay(String(pay.package).replace('prepay_id=', ''));
    // PAID: the notification's sub_appid is the appid the attempt was prepaid with, sub_mchid B's.
    await shop.waitForStatus(no, 'PAID');
    expect((await shop.admin().get(`/admin/orders/${no}`).expect(200)).body).toMatchObject({ status: 'PAID', subMchid: B, payerOpenid: 'o_b_alice', paidTotal: 770 });
  });

  it("wx.config for B's pages (?subMchid=B) is signed with B's own jsapi_ticket; without it, or for A (no account of its own), with the provider's", async () => {
    const url = `${shop.baseUrl}/pay.html`;
    const merchant = await shop.sandbox.merchant();
    const forB = (await shop.http().get(`/jssdk/config?url=${encodeURIComponent(url)}&subMchid=${B}`).expect(200)).body;
    expect(forB.appId).toBe(B_APPID);
    expect(await bridge('config', { ...forB, url })).toMatchObject({ ok: true });
    const forA = (await shop.http().get(`/jssdk/config?url=${encodeURIComponent(url)}&subMchid=${A}`).expect(200)).body;
    const plain = (await shop.http().get(`/jssdk/config?url=${encodeURIComponent(url)}`).expect(200)).body;
    expect([forA.appId, plain.appId]).toEqual([merchant.appid, merchant.appid]);
    expect(await bridge('config', { ...forA, url })).toMatchObject({ ok: true });
  });

  it("the openid under B's account is another identity: a shopper logged in through the provider's pays A's orders, and for B's is told to log in through B (400 WECHAT_ACCOUNT_MISMATCH, nothing written)", async () => {
    const atProvider = await shop.login('o_b_bob');
    const atB = await shop.login('o_b_bob', { subMchid: B });
    const rows = (await shop.t.app.get(DataSource).query(`SELECT appid, user_id FROM user_identities WHERE openid = 'o_b_bob' ORDER BY appid`)) as Array<{ appid: string; user_id: unknown }>;
    const merchant = await shop.sandbox.merchant();
    expect(rows.map((r) => r.appid).sort()).toEqual([merchant.appid, B_APPID].sort());
    expect(String(rows[0].user_id)).not.toBe(String(rows[1].user_id));
    const ofA = await shop.paidOrder(atProvider, [{ productId: productOfA, quantity: 1 }]);
    expect(await partnerQuery(ofA, A)).toMatchObject({ sp_appid: merchant.appid, payer: { sp_openid: 'o_b_bob' } });
    expect(await partnerQuery(ofA, A)).not.toHaveProperty('sub_appid');
    const ofB = await shop.placeOrder(atProvider, [{ productId: productOfB, quantity: 1 }]);
    const attemptsBefore = await count('payment_attempts');
    const refused = await shop.http().post(`/orders/${ofB}/pay`).set(atProvider.headers).expect(400);
    expect(refused.body).toMatchObject({ code: 'WECHAT_ACCOUNT_MISMATCH', details: { appid: B_APPID, loginUrl: `/auth/wechat/authorize?scope=snsapi_base&subMchid=${B}` } });
    expect(await count('payment_attempts')).toBe(attemptsBefore);
    // The B session does not see the provider session's order (another user); its own B order pays.
    await shop.http().get(`/orders/${ofB}`).set(atB.headers).expect(404);
    await shop.paidOrder(atB, [{ productId: productOfB, quantity: 1 }]);
  });

  it("a snsapi_userinfo login through B's account keeps its profile under B's appid and re-reads it through B's account (GET /auth/me?refresh=1)", async () => {
    const carol = await shop.login('o_b_carol', { subMchid: B, scope: 'snsapi_userinfo', nickname: '二号店顾客' });
    const me = (await shop.http().get('/auth/me?refresh=1').set(carol.headers).expect(200)).body;
    expect(me).toMatchObject({ openid: 'o_b_carol', nickname: '二号店顾客', scope: 'snsapi_userinfo' });
    const rows = (await shop.t.app.get(DataSource).query(`SELECT appid FROM users WHERE openid = 'o_b_carol'`)) as Array<{ appid: string }>;
    expect(rows.map((r) => r.appid)).toEqual([B_APPID]);
  });

  it('the sandbox refuses a sub_openid that is not a user of that sub_appid (PARAM_ERROR): not authorized at B, or not a mini-program user', async () => {
    const http = shop.t.app.get(WechatPayHttp);
    const merchant = await shop.sandbox.merchant();
    const prepay = (subAppid: string, openid: string) =>
      http
        .request({
          method: 'POST',
          path: '/v3/pay/partner/transactions/jsapi',
          body: {
            sp_appid: merchant.appid,
            sp_mchid: merchant.mchid,
            sub_mchid: B,
            sub_appid: subAppid,
            description: '测试',
            out_trade_no: `SA${Date.now()}${Math.floor(Math.random() * 1000)}`,
            notify_url: `${shop.baseUrl}/notify/wechatpay/transaction`,
            amount: { total: 1, currency: 'CNY' },
            payer: { sub_openid: openid },
          },
        })
        .catch((e: WechatPayApiError) => e);
    await shop.login('o_b_only_provider');
    for (const refused of [await prepay(B_APPID, 'o_b_only_provider'), await prepay(await shop.sandbox.miniprogramAppid(), 'o_b_only_provider')]) {
      expect(refused).toBeInstanceOf(WechatPayApiError);
      expect([(refused as WechatPayApiError).httpStatus, (refused as WechatPayApiError).wechatCode, (refused as WechatPayApiError).wechatMessage]).toEqual([
        400,
        'PARAM_ERROR',
        'sub_openid与sub_appid不匹配',
      ]);
    }
  });

  it('bad subMchid on login and wx.config: malformed 400, unknown 404, disabled 409; no OAuth state written', async () => {
    const states = await count('oauth_states');
    const authorize = (subMchid: string) => fetch(`${shop.baseUrl}/auth/wechat/authorize?scope=snsapi_base&subMchid=${subMchid}`, { redirect: 'manual' });
    const malformed = await authorize('abc');
    expect(malformed.status).toBe(400);
    expect(JSON.stringify((await malformed.json()) as unknown)).toContain('subMchid must be');
    const unknown = await authorize('1900000288');
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { code: string }).code).toBe('SUB_MERCHANT_NOT_FOUND');
    await shop.admin().post('/admin/sub-merchants').send({ subMchid: '1900000277', name: '停用', enabled: false }).expect(201);
    const disabled = await authorize('1900000277');
    expect(disabled.status).toBe(409);
    expect(((await disabled.json()) as { code: string }).code).toBe('SUB_MERCHANT_DISABLED');
    expect(await count('oauth_states')).toBe(states);
    const url = encodeURIComponent(`${shop.baseUrl}/pay.html`);
    expect((await shop.http().get(`/jssdk/config?url=${url}&subMchid=x1`)).status).toBe(400);
    expect((await shop.http().get(`/jssdk/config?url=${url}&subMchid=1900000288`)).status).toBe(404);
  });
});

describe('direct mode: no sub-merchant accounts', () => {
  let shop: Shop;
  beforeAll(async () => {
    shop = await Shop.start();
  });
  afterAll(() => shop?.close());

  it('?subMchid on login and wx.config is 404 PARTNER_MODE_OFF; without it nothing changed', async () => {
    const res = await fetch(`${shop.baseUrl}/auth/wechat/authorize?scope=snsapi_base&subMchid=1900000201`, { redirect: 'manual' });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { code: string }).code).toBe('PARTNER_MODE_OFF');
    const url = encodeURIComponent(`${shop.baseUrl}/pay.html`);
    expect((await shop.http().get(`/jssdk/config?url=${url}&subMchid=1900000201`)).body.code).toBe('PARTNER_MODE_OFF');
    const merchant = await shop.sandbox.merchant();
    expect((await shop.http().get(`/jssdk/config?url=${url}`).expect(200)).body.appId).toBe(merchant.appid);
    const user = await shop.login('o_direct_accounts');
    const pid = (await shop.product('直连', 100)).id;
    const no = await shop.placeOrder(user, [{ productId: pid, quantity: 1 }]);
    expect((await shop.http().post(`/orders/${no}/pay`).set(user.headers).expect(200)).body.appId).toBe(merchant.appid);
  });
});
