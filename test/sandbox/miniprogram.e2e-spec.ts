// The sandbox's mini-program (issue 13): sns/jscode2session with WeChat's codes and errors, the
// control route that plays wx.login, and wx.requestPayment's checks of paySign and appid.
import { createPrivateKey, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sandboxMiniprogram } from '../../src/sandbox/keystore';
import { Shop } from '../helpers/shop';

describe('sandbox mini-program', () => {
  let shop: Shop;
  let app: { appid: string; appsecret: string };
  let officialAppid: string;
  let productId: number;

  beforeAll(async () => {
    shop = await Shop.start();
    // What a backend configures from `npm run sandbox`'s banner: the keystore's mini-program.
    app = sandboxMiniprogram(JSON.parse(readFileSync(join(shop.t.dataDir, 'sandbox', 'keystore.json'), 'utf8')));
    officialAppid = (await shop.sandbox.merchant()).appid;
    productId = (await shop.product('Mini bread', 650)).id;
  });
  afterAll(() => shop?.close());

  const jscode2session = async (query: Record<string, string>) => {
    const res = await fetch(`${shop.baseUrl}/sandbox/sns/jscode2session?${new URLSearchParams(query)}`);
    expect(res.status).toBe(200); // WeChat answers errors with HTTP 200 and an errcode
    return (await res.json()) as Record<string, unknown>;
  };
  const exchange = (code: string, overrides: Record<string, string> = {}) =>
    jscode2session({ appid: app.appid, secret: app.appsecret, js_code: code, grant_type: 'authorization_code', ...overrides });

  it('registers a mini-program of its own, bound to the merchant, distinct from the official account', async () => {
    expect(app.appid).toMatch(/^wx[0-9a-z]{16}$/);
    expect(app.appsecret).toMatch(/^[0-9a-z]{32}$/);
    expect(app.appid).not.toBe(officialAppid);
    expect(await shop.sandbox.miniprogramAppid()).toBe(app.appid);
  });

  it('answers openid and session_key for a wx.login code, and the unionid only when the user has one', async () => {
    const plain = await shop.sandbox.miniprogramCode({ openid: 'o_sbx_mp_plain' });
    const answer = await exchange(plain.code);
    expect(answer).toEqual({ openid: 'o_sbx_mp_plain', session_key: expect.stringMatching(/^[A-Za-z0-9+/]{22}==$/) });

    const linked = await shop.sandbox.miniprogramCode({ openid: 'o_sbx_mp_linked', unionid: 'o6_sandbox_union_1' });
    expect(await exchange(linked.code)).toMatchObject({ openid: 'o_sbx_mp_linked', unionid: 'o6_sandbox_union_1' });
  });

  it('codes are single use: the second exchange is errcode 40163', async () => {
    const { code } = await shop.sandbox.miniprogramCode({ openid: 'o_sbx_mp_once' });
    expect(await exchange(code)).toHaveProperty('openid', 'o_sbx_mp_once');
    expect(await exchange(code)).toMatchObject({ errcode: 40163, errmsg: expect.stringContaining('code been used') });
  });

  it('an unknown code is 40029, and a code expires after 5 minutes (40029)', async () => {
    expect(await exchange('made-up-code')).toMatchObject({ errcode: 40029 });
    const { code } = await shop.sandbox.miniprogramCode({ openid: 'o_sbx_mp_late' });
    await shop.sandbox.shiftClock(5 * 60_000 + 1000);
    try {
      expect(await exchange(code)).toMatchObject({ errcode: 40029, errmsg: expect.stringContaining('expired') });
    } finally {
      await shop.sandbox.resetClock();
    }
  });

  it("refuses the official account's appid (40013), a wrong secret (40125), a wrong grant_type (40002) or no code (41008), without using the code up", async () => {
    const { code } = await shop.sandbox.miniprogramCode({ openid: 'o_sbx_mp_wrong_app' });
    expect(await exchange(code, { appid: officialAppid })).toMatchObject({ errcode: 40013 });
    expect(await exchange(code, { secret: 'f'.repeat(32) })).toMatchObject({ errcode: 40125 });
    expect(await exchange(code, { grant_type: 'client_credential' })).toMatchObject({ errcode: 40002 });
    expect(await jscode2session({ appid: app.appid, secret: app.appsecret, grant_type: 'authorization_code' })).toMatchObject({ errcode: 41008 });
    expect(await exchange(code)).toHaveProperty('openid', 'o_sbx_mp_wrong_app');
  });

  it('the control route validates what it is given (400, no code issued)', async () => {
    const res = await fetch(`${shop.baseUrl}/sandbox/control/miniprogram/code`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ openid: 'x' }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(/openid/);
    const unknownOfficial = await fetch(`${shop.baseUrl}/sandbox/control/miniprogram/code`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ openid: 'o_sbx_mp_x', officialAccountOpenid: 'o_nobody_here' }),
    });
    expect(unknownOfficial.status).toBe(400);
  });

  describe('POST /sandbox/miniprogram/requestPayment', () => {
    const merchantKey = () => createPrivateKey(readFileSync(join(shop.t.dataDir, 'sandbox', 'apiclient_key.pem'), 'utf8'));
    const signOver = (appid: string, p: { timeStamp: string; nonceStr: string; package: string }) =>
      sign('sha256', Buffer.from(`${appid}\n${p.timeStamp}\n${p.nonceStr}\n${p.package}\n`, 'utf8'), merchantKey()).toString('base64');
    const requestPayment = async (body: Record<string, unknown>) => {
      const res = await fetch(`${shop.baseUrl}/sandbox/miniprogram/requestPayment`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as { errMsg: string } };
    };

    /** A JSAPI (official-account) order's invoke parameters: signed over WECHAT_APPID, not the mini-program's. */
    async function jsapiParams(openid: string) {
      const login = await shop.login(openid);
      const no = await shop.placeOrder(login, [{ productId, quantity: 1 }]);
      const res = await shop.http().post(`/orders/${no}/pay`).set(login.headers).expect(200);
      return { no, params: res.body as { appId: string; timeStamp: string; nonceStr: string; package: string; signType: string; paySign: string }, openid };
    }

    it("rejects a paySign made over another appid (the official account's JSAPI parameters replayed in the mini-program): fail, nothing paid", async () => {
      const { no, params } = await jsapiParams('o_sbx_rp_other_app');
      expect(params.appId).toBe(officialAppid);
      const { appId: _appId, ...forMiniprogram } = params;
      const res = await requestPayment(forMiniprogram);
      expect(res.status).toBe(400);
      expect(res.body.errMsg).toMatch(/^requestPayment:fail .*签名/);
      expect(res.body.errMsg).toContain(app.appid);
      expect((await shop.sandbox.transaction(no)).trade_state).toBe('NOTPAY');
    });

    it('rejects a tampered paySign and a package swapped under a valid signature', async () => {
      const { no, params } = await jsapiParams('o_sbx_rp_tamper');
      const signed = { timeStamp: params.timeStamp, nonceStr: params.nonceStr, package: params.package, signType: 'RSA' };
      const good = signOver(app.appid, signed);
      const flipped = (good[0] === 'A' ? 'B' : 'A') + good.slice(1);
      expect((await requestPayment({ ...signed, paySign: flipped })).status).toBe(400);
      const other = await jsapiParams('o_sbx_rp_tamper_2');
      expect((await requestPayment({ ...signed, package: other.params.package, paySign: good })).status).toBe(400);
      expect((await shop.sandbox.transaction(no)).trade_state).toBe('NOTPAY');
      expect((await shop.sandbox.transaction(other.no)).trade_state).toBe('NOTPAY');
    });

    it('rejects a correctly signed request whose prepay was made for the official account, not the mini-program (appid not matching)', async () => {
      const { no, params } = await jsapiParams('o_sbx_rp_wrong_prepay');
      const signed = { timeStamp: params.timeStamp, nonceStr: params.nonceStr, package: params.package, signType: 'RSA' };
      const res = await requestPayment({ ...signed, paySign: signOver(app.appid, signed) });
      expect(res.status).toBe(400);
      expect(res.body.errMsg).toMatch(/appid/);
      expect((await shop.sandbox.transaction(no)).trade_state).toBe('NOTPAY');
    });

    it('rejects missing parameters and a signType other than RSA, naming them', async () => {
      const missing = await requestPayment({ timeStamp: '1', nonceStr: 'n', package: 'prepay_id=x', signType: 'RSA' });
      expect(missing.status).toBe(400);
      expect(missing.body.errMsg).toMatch(/paySign/);
      const md5 = await requestPayment({ timeStamp: '1', nonceStr: 'n', package: 'prepay_id=x', signType: 'MD5', paySign: 'abc' });
      expect(md5.status).toBe(400);
      expect(md5.body.errMsg).toMatch(/signType/);
    });
  });
});
