import { TestingModule } from '@nestjs/testing';
import { FakeWechatPay } from '../../../test/helpers/fake-wechatpay';
import { TestKeyPair, rsaKeyPair } from '../../../test/helpers/keys';
import { wechatTestingModule } from '../../../test/helpers/wechat-module';
import { WechatCredentials } from '../wechat-credentials';
import { neutralTransaction, WechatPayV3PartnerGateway } from './partner-gateway';
import { PAYMENT_GATEWAY, PaymentGateway, PrepayOrder, WechatPayV3Gateway } from './payment-gateway';
import { rsaVerify, loadPublicKey } from './rsa';

const PUB_ID = 'PUB_KEY_ID_0114232134912410000000000000';
const SP_APPID = 'wx1234567890abcdef';
const SP_MCHID = '1900000100';
const DEFAULT_SUB = '1900000109';
const OTHER_SUB = '1900000110';

let merchant: TestKeyPair;
let wechatpayPublic: TestKeyPair;
beforeAll(() => {
  merchant = rsaKeyPair();
  wechatpayPublic = rsaKeyPair();
});

function credentials(): WechatCredentials {
  return {
    appid: SP_APPID,
    appsecret: 's'.repeat(32),
    mchid: SP_MCHID,
    merchantPrivateKeyPem: merchant.privateKeyPem,
    merchantCertSerial: 'ABCDEF0123456789ABCDEF0123456789ABCDEF01',
    apiv3Key: 'a'.repeat(32),
    wechatpayPublicKey: { id: PUB_ID, pem: wechatpayPublic.publicKeyPem },
  };
}

const order = (extra: Partial<PrepayOrder> = {}): PrepayOrder => ({
  outTradeNo: 'W2611241000001',
  description: '杯子',
  total: 500,
  expiresAt: new Date('2026-11-24T02:05:00Z'),
  notifyUrl: 'https://shop.example.com/notify/wechatpay/transaction',
  goods: [{ id: '1', name: '杯子', quantity: 1, unitPrice: 500 }],
  ...extra,
});

describe('WechatPayV3PartnerGateway (service-provider mode) over HTTP', () => {
  let fake: FakeWechatPay;
  let moduleRef: TestingModule;
  let gateway: PaymentGateway;

  beforeEach(async () => {
    fake = new FakeWechatPay({ serial: PUB_ID, privateKeyPem: wechatpayPublic.privateKeyPem }, () => ({ status: 200, body: '{}' }), merchant.publicKeyPem);
    const base = await fake.listen();
    const built = await wechatTestingModule({ env: { WECHATPAY_API_BASE: base, WECHATPAY_SUB_MCHID: DEFAULT_SUB }, credentials: credentials() });
    moduleRef = built.moduleRef;
    fake.now = () => built.clock.nowSeconds();
    gateway = moduleRef.get(PAYMENT_GATEWAY);
  });
  afterEach(async () => {
    await moduleRef.close();
    await fake.close();
  });

  it('is the gateway WechatModule builds when WECHATPAY_SUB_MCHID is set', () => {
    expect(gateway).toBeInstanceOf(WechatPayV3PartnerGateway);
  });

  it("prepays JSAPI at /v3/pay/partner/transactions/jsapi with sp_appid, sp_mchid, the order's sub_mchid and payer.sp_openid; paySign by the provider", async () => {
    fake.handler = () => ({ status: 200, body: '{"prepay_id":"wx2011prepay"}' });
    const prepay = await gateway.prepay('jsapi', order({ payer: { appid: SP_APPID, openid: 'o_sp' }, merchant: { subMchid: OTHER_SUB }, clientIp: '10.0.0.1' }));
    expect(prepay).toEqual({ kind: 'prepay_id', prepayId: 'wx2011prepay' });
    expect(fake.requests[0].url).toBe('/v3/pay/partner/transactions/jsapi');
    expect(fake.requests[0].authorizationValid).toBe(true);
    const body = JSON.parse(fake.requests[0].body.toString());
    expect(body).toMatchObject({ sp_appid: SP_APPID, sp_mchid: SP_MCHID, sub_mchid: OTHER_SUB, payer: { sp_openid: 'o_sp' }, amount: { total: 500, currency: 'CNY' }, time_expire: '2026-11-24T10:05:00+08:00' });
    expect(body).not.toHaveProperty('appid');
    expect(body).not.toHaveProperty('mchid');
    expect(body).not.toHaveProperty('sub_appid');
    const params = gateway.invokeParams('jsapi', prepay, SP_APPID);
    expect(params).toMatchObject({ appId: SP_APPID, package: 'prepay_id=wx2011prepay', signType: 'RSA' });
    const message = `${params.appId}\n${params.timeStamp}\n${params.nonceStr}\n${params.package}\n`;
    expect(rsaVerify(message, params.paySign, loadPublicKey(merchant.publicKeyPem))).toBe(true);
  });

  it('names the default sub-merchant when the order carries none, and a payer under another appid as sub_appid + payer.sub_openid', async () => {
    fake.handler = () => ({ status: 200, body: '{"prepay_id":"wx2011prepay"}' });
    await gateway.prepay('miniprogram', order({ payer: { appid: 'wx00112233445566aa', openid: 'o_sub' } }));
    expect(JSON.parse(fake.requests[0].body.toString())).toMatchObject({ sub_mchid: DEFAULT_SUB, sub_appid: 'wx00112233445566aa', payer: { sub_openid: 'o_sub' } });
  });

  it('prepays H5 and Native at their partner paths', async () => {
    fake.handler = (req) => ({ status: 200, body: req.url.endsWith('/h5') ? '{"h5_url":"https://wx.tenpay.com/h5"}' : '{"code_url":"weixin://wxpay/bizpayurl?pr=abc"}' });
    expect(await gateway.prepay('h5', order({ clientIp: '10.0.0.2', site: { appName: 'Shop', appUrl: 'https://shop.example.com' } }))).toEqual({ kind: 'h5_url', h5Url: 'https://wx.tenpay.com/h5' });
    expect(await gateway.prepay('native', order())).toEqual({ kind: 'code_url', codeUrl: 'weixin://wxpay/bizpayurl?pr=abc' });
    expect(fake.requests.map((r) => r.url)).toEqual(['/v3/pay/partner/transactions/h5', '/v3/pay/partner/transactions/native']);
    expect(JSON.parse(fake.requests[0].body.toString())).toMatchObject({ sub_mchid: DEFAULT_SUB, scene_info: { payer_client_ip: '10.0.0.2', h5_info: { type: 'Wap' } } });
  });

  it('queries with ?sp_mchid&sub_mchid and answers the neutral shape (mchid = sp_mchid, appid, payer.openid, sub_mchid)', async () => {
    fake.handler = () => ({
      status: 200,
      body: JSON.stringify({
        sp_appid: SP_APPID,
        sp_mchid: SP_MCHID,
        sub_mchid: OTHER_SUB,
        out_trade_no: 'W2611241000001',
        transaction_id: '4200000000000000000000000001',
        trade_state: 'SUCCESS',
        payer: { sp_openid: 'o_sp' },
        amount: { total: 500, currency: 'CNY' },
      }),
    });
    const tx = await gateway.query('W2611241000001', { subMchid: OTHER_SUB });
    expect(fake.requests[0].url).toBe(`/v3/pay/partner/transactions/out-trade-no/W2611241000001?sp_mchid=${SP_MCHID}&sub_mchid=${OTHER_SUB}`);
    expect(tx).toMatchObject({ appid: SP_APPID, mchid: SP_MCHID, sub_mchid: OTHER_SUB, payer: { openid: 'o_sp' }, trade_state: 'SUCCESS' });
    expect(tx).not.toHaveProperty('sp_mchid');
  });

  it('closes with { sp_mchid, sub_mchid }', async () => {
    fake.handler = () => ({ status: 204 });
    await gateway.close('W2611241000001', { subMchid: OTHER_SUB });
    expect(fake.requests[0].url).toBe('/v3/pay/partner/transactions/out-trade-no/W2611241000001/close');
    expect(JSON.parse(fake.requests[0].body.toString())).toEqual({ sp_mchid: SP_MCHID, sub_mchid: OTHER_SUB });
  });
});

describe('gateway choice and the neutral transaction', () => {
  it('builds the direct gateway when WECHATPAY_SUB_MCHID is unset', async () => {
    const { moduleRef } = await wechatTestingModule({ env: {}, credentials: credentials() });
    expect(moduleRef.get(PAYMENT_GATEWAY)).toBeInstanceOf(WechatPayV3Gateway);
    await moduleRef.close();
  });

  it('leaves a direct trade as it is and maps a sub_openid payer under sub_appid', () => {
    const direct = { appid: SP_APPID, mchid: SP_MCHID, out_trade_no: 'X1', trade_state: 'SUCCESS' as const, payer: { openid: 'o' } };
    expect(neutralTransaction(direct)).toBe(direct);
    expect(
      neutralTransaction({ sp_appid: SP_APPID, sp_mchid: SP_MCHID, sub_appid: 'wx00112233445566aa', sub_mchid: OTHER_SUB, out_trade_no: 'X2', trade_state: 'SUCCESS', payer: { sp_openid: 'o_sp', sub_openid: 'o_sub' } }),
    ).toEqual({ appid: 'wx00112233445566aa', mchid: SP_MCHID, sub_mchid: OTHER_SUB, out_trade_no: 'X2', trade_state: 'SUCCESS', payer: { openid: 'o_sub' } });
  });
});
