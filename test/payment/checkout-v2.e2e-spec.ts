import { createHash, createHmac } from 'node:crypto';
import { loadOrCreateSandboxKeystore, sandboxApiV2Key } from '../../src/sandbox/keystore';
import { guestLogin } from '../helpers/login';
import { Shop } from '../helpers/shop';

/*
 * WECHATPAY_API_VERSION=v2 (issue 14): the same payment module, through the APIv2 gateway, against
 * the sandbox's APIv2 front. Not a second checkout flow: what differs is only what WeChat sees (XML,
 * the v2 notify_url, its XML notification) and the invoke parameters' signature.
 */
describe.each(['HMAC-SHA256', 'MD5'] as const)('checkout with WECHATPAY_API_VERSION=v2 (%s)', (signType) => {
  let shop: Shop;

  beforeAll(async () => {
    shop = await Shop.start({ env: { WECHATPAY_API_VERSION: 'v2', WECHATPAY_V2_SIGN_TYPE: signType, PAYMENT_QUERY_ON_READ_AFTER: '0s' } });
  });
  afterAll(() => shop?.close());

  function expectedPaySign(params: Record<string, string>, key: string): string {
    const text = `appId=${params.appId}&nonceStr=${params.nonceStr}&package=${params.package}&signType=${params.signType}&timeStamp=${params.timeStamp}&key=${key}`;
    return (signType === 'MD5' ? createHash('md5').update(text) : createHmac('sha256', key).update(text)).digest('hex').toUpperCase();
  }

  it('prepays over APIv2, answers v2 invoke parameters, and a payment at WeChat makes the order PAID through the v2 query', async () => {
    const mug = await shop.product('v2 马克杯', 3900, 10);
    const alice = await shop.login(`o_v2_${signType.replace('-', '')}`);
    const no = await shop.placeOrder(alice, [{ productId: mug.id, quantity: 2 }]);

    const pay = await shop.http().post(`/orders/${no}/pay`).set(alice.headers).expect(200);
    expect(Object.keys(pay.body).sort()).toEqual(['appId', 'channel', 'nonceStr', 'outTradeNo', 'package', 'paySign', 'signType', 'timeStamp']);
    expect(pay.body).toMatchObject({ channel: 'jsapi', signType, package: expect.stringMatching(/^prepay_id=wx/) });
    expect(pay.body.paySign).toBe(expectedPaySign(pay.body, sandboxApiV2Key(await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir))));

    const atWechat = await shop.sandbox.transaction(no);
    expect(atWechat).toMatchObject({ trade_state: 'NOTPAY', notify_url: `${shop.baseUrl}/notify/wechatpay/v2/transaction`, amount: { total: 7800 } });
    expect(await shop.sandbox.callsTo('v3/pay/transactions/jsapi')).toBe(0);

    await shop.sandbox.pay(String(pay.body.package).replace('prepay_id=', ''));
    const read = await shop.http().get(`/orders/${no}`).set(alice.headers).expect(200);
    expect(read.body).toMatchObject({ status: 'PAID', total: 7800 });
  });

  it('cancelling an unpaid order closes it at WeChat through APIv2 closeorder', async () => {
    const mug = await shop.product('v2 杯垫', 500, 10);
    const bob = await shop.login(`o_v2b_${signType.replace('-', '')}`);
    const no = await shop.placeOrder(bob, [{ productId: mug.id, quantity: 1 }]);
    await shop.http().post(`/orders/${no}/pay`).set(bob.headers).expect(200);
    const cancelled = await shop.http().post(`/orders/${no}/cancel`).set(bob.headers).expect(200);
    expect(cancelled.body.status).toBe('CLOSED');
    expect((await shop.sandbox.transaction(no)).trade_state).toBe('CLOSED');
  });

  it('h5 and native for a guest: unifiedorder MWEB (mweb_url as h5Url) and NATIVE (code_url), paid at the sandbox → PAID through the v2 query', async () => {
    const cup = await shop.product('v2 渠道', 990);
    const guest = await guestLogin(shop.baseUrl);
    const h5 = await shop.placeOrder(guest, [{ productId: cup.id, quantity: 1 }]);
    const h5Pay = await shop.http().post(`/orders/${h5}/pay`).set(guest.headers).send({ channel: 'h5' }).expect(200);
    expect(h5Pay.body).toEqual({ channel: 'h5', outTradeNo: h5, h5Url: expect.stringContaining('/h5pay?prepay_id=') });
    const prepayId = new URL(h5Pay.body.h5Url).searchParams.get('prepay_id')!;
    expect((await shop.sandbox.pay(prepayId, { openid: 'o_v2_h5' })).result).toBe('ok');
    expect((await shop.http().get(`/orders/${h5}`).set(guest.headers).expect(200)).body.status).toBe('PAID');
    expect(await shop.sandbox.transaction(h5)).toMatchObject({ trade_type: 'MWEB', trade_state: 'SUCCESS' });

    const native = await shop.placeOrder(guest, [{ productId: cup.id, quantity: 1 }]);
    const nativePay = await shop.http().post(`/orders/${native}/pay`).set(guest.headers).send({ channel: 'native' }).expect(200);
    expect(nativePay.body).toEqual({ channel: 'native', outTradeNo: native, codeUrl: expect.stringMatching(/^weixin:\/\/wxpay\/bizpayurl\?pr=/) });
    expect(await shop.sandbox.transaction(native)).toMatchObject({ trade_state: 'NOTPAY', amount: { total: 990 } });
  });

  it('the v2 XML notification pays the order through the same apply path, answered <return_code>SUCCESS</return_code>', async () => {
    const mug = await shop.product('v2 通知', 1200);
    const carol = await shop.login(`o_v2n_${signType.replace('-', '')}`);
    const no = await shop.placeOrder(carol, [{ productId: mug.id, quantity: 1 }]);
    const pay = await shop.http().post(`/orders/${no}/pay`).set(carol.headers).expect(200);
    await shop.sandbox.pay(String(pay.body.package).replace('prepay_id=', ''));
    await shop.waitForStatus(no, 'PAID');
    const attempts = await shop.sandbox.waitForNotification({ outTradeNo: no });
    expect(attempts.find((a) => a.ok)).toMatchObject({ status: 200 });
    const timeline = (await shop.admin().get(`/admin/orders/${no}`).expect(200)).body.timeline.map((e: { type: string }) => e.type);
    expect(timeline.join(' ')).toContain('notification');
  });

  it('a forged, an XXE and an unsigned v2 notification are refused with FAIL and change nothing', async () => {
    const mug = await shop.product('v2 伪造', 1300);
    const dave = await shop.login(`o_v2f_${signType.replace('-', '')}`);
    const no = await shop.placeOrder(dave, [{ productId: mug.id, quantity: 1 }]);
    await shop.http().post(`/orders/${no}/pay`).set(dave.headers).expect(200);
    const ks = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
    const fields: Record<string, string> = {
      return_code: 'SUCCESS', appid: ks.appid, mch_id: ks.mchid, nonce_str: 'n', result_code: 'SUCCESS', openid: 'o', trade_type: 'JSAPI',
      total_fee: '1300', fee_type: 'CNY', transaction_id: '4200000000000000000000000001', out_trade_no: no, time_end: '20260101120000',
    };
    const xml = (f: Record<string, string>) => `<xml>${Object.entries(f).map(([k, v]) => `<${k}><![CDATA[${v}]]></${k}>`).join('')}</xml>`;
    const forgedSign = createHash('md5').update(`${Object.keys(fields).sort().map((k) => `${k}=${fields[k]}`).join('&')}&key=${'f'.repeat(32)}`).digest('hex').toUpperCase();
    const post = (body: string) => shop.http().post('/notify/wechatpay/v2/transaction').set('Content-Type', 'text/xml').send(body);
    const forged = await post(xml({ ...fields, sign: forgedSign }));
    expect(forged.status).toBe(401);
    expect(forged.text).toContain('<return_code><![CDATA[FAIL]]></return_code>');
    expect((await post(xml(fields))).status).toBe(401);
    const xxe = await post(`<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><out_trade_no>&x;</out_trade_no></xml>`);
    expect(xxe.status).toBe(400);
    expect(xxe.text).toContain('FAIL');
    expect(await shop.status(no)).toBe('NOTPAY');
  });
});
