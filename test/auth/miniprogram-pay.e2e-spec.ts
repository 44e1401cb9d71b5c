// A mini-program shopper pays end to end (issue 13): wx.login → POST /auth/miniprogram/login → order →
// POST /orders/:no/pay { channel: 'miniprogram' } → what wx.requestPayment takes → the sandbox's
// requestPayment (paySign checked over the mini-program appid) → notification → PAID.
import { DataSource } from 'typeorm';
import { Shop } from '../helpers/shop';

// Once per API version (issue 14): v2 signs the same parameters with the API key (signType HMAC-SHA256).
describe.each(['v3', 'v2'] as const)('mini-program pay through wx.requestPayment (WECHATPAY_API_VERSION=%s)', (version) => {
  let shop: Shop;
  let productId: number;

  beforeAll(async () => {
    shop = await Shop.start({ env: { WECHATPAY_API_VERSION: version } });
    productId = (await shop.product('Mini noodles', 1500)).id;
  });
  afterAll(() => shop?.close());

  async function miniprogramSession(openid: string): Promise<string> {
    const { code } = await shop.sandbox.miniprogramCode({ openid });
    return (await shop.http().post('/auth/miniprogram/login').send({ code }).expect(200)).body.token;
  }

  const requestPayment = async (body: Record<string, unknown>) => {
    const res = await fetch(`${shop.baseUrl}/sandbox/miniprogram/requestPayment`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as { errMsg: string; outTradeNo?: string } };
  };

  it('a mini-program session pays its order: parameters signed over the mini-program appid, paid by the mini-program openid, PAID once', async () => {
    const token = await miniprogramSession(`o_mp_pay_e2e_${version}`);
    const auth = { Authorization: `Bearer ${token}` };
    const order = await shop.http().post('/orders').set(auth).send({ items: [{ productId, quantity: 2 }] }).expect(201);
    const no = order.body.outTradeNo as string;

    const pay = await shop.http().post(`/orders/${no}/pay`).set(auth).send({ channel: 'miniprogram' }).expect(200);
    expect(pay.body).toMatchObject({ channel: 'miniprogram', signType: version === 'v3' ? 'RSA' : 'HMAC-SHA256', package: expect.stringMatching(/^prepay_id=/) });
    // wx.requestPayment takes no appId: the mini-program's own is implied.
    const { timeStamp, nonceStr, package: pkg, signType, paySign } = pay.body;
    const tx = await shop.sandbox.transaction(pay.body.outTradeNo);
    expect(tx.appid).toBe(await shop.sandbox.miniprogramAppid());
    expect((tx.payer as { openid: string }).openid).toBe(`o_mp_pay_e2e_${version}`);

    const paid = await requestPayment({ timeStamp, nonceStr, package: pkg, signType, paySign });
    expect(paid).toMatchObject({ status: 200, body: { errMsg: 'requestPayment:ok' } });
    await shop.waitForStatus(no, 'PAID');
    const view = await shop.http().get(`/orders/${no}`).set(auth).expect(200);
    expect(view.body.status).toBe('PAID');
    expect(view.body.payments).toEqual([expect.objectContaining({ channel: 'miniprogram', status: 'PAID' })]);

    // Paying the same parameters again is refused by WeChat: the order is paid once.
    const again = await requestPayment({ timeStamp, nonceStr, package: pkg, signType, paySign });
    expect(again.status).toBe(409);
    expect(again.body.errMsg).toMatch(/^requestPayment:fail/);

    // Refunded under the mini-program's appid (v2 names it, and WeChat refuses a refund under another), settled by its notification.
    const refund = await shop.admin().post('/admin/refunds').send({ outTradeNo: no, amount: 3000, reason: '小程序退款' }).expect(201);
    await shop.sandbox.waitForNotification({ outRefundNo: refund.body.outRefundNo });
    await shop.waitForStatus(no, 'REFUNDED');
    expect((await shop.admin().get(`/admin/refunds/${refund.body.outRefundNo}`).expect(200)).body).toMatchObject({ status: 'SUCCESS', amount: 3000 });
    if (version === 'v2') {
      // WeChat's v2 refund notification names the order's appid: the mini-program's, one of ours
      const [event] = await shop.t.app.get(DataSource).query('SELECT outcome, raw_body FROM payment_events WHERE out_refund_no = ?', [refund.body.outRefundNo]);
      expect(event).toMatchObject({ outcome: 'refund:applied', raw_body: expect.stringContaining(`<appid><![CDATA[${await shop.sandbox.miniprogramAppid()}]]></appid>`) });
    }
  });

  it('a bad paySign pays nothing: the order stays unpaid', async () => {
    const token = await miniprogramSession(`o_mp_pay_badsign_${version}`);
    const auth = { Authorization: `Bearer ${token}` };
    const no = (await shop.http().post('/orders').set(auth).send({ items: [{ productId, quantity: 1 }] }).expect(201)).body.outTradeNo as string;
    const pay = await shop.http().post(`/orders/${no}/pay`).set(auth).send({ channel: 'miniprogram' }).expect(200);
    const { timeStamp, nonceStr, package: pkg, signType } = pay.body;
    const res = await requestPayment({ timeStamp, nonceStr: `${nonceStr}x`, package: pkg, signType, paySign: pay.body.paySign });
    expect(res.status).toBe(400);
    expect(res.body.errMsg).toMatch(/签名/);
    expect((await shop.sandbox.transaction(pay.body.outTradeNo)).trade_state).toBe('NOTPAY');
    expect(await shop.status(no)).toBe('NOTPAY');
  });
});

describe('mini-program pay in sandbox mode with WECHAT_MINIPROGRAM_APPID/APPSECRET set', () => {
  let shop: Shop;
  beforeAll(async () => {
    shop = await Shop.start({ env: { WECHAT_MINIPROGRAM_APPID: 'wx0123456789abcdef', WECHAT_MINIPROGRAM_APPSECRET: 'c'.repeat(32) } });
  });
  afterAll(() => shop?.close());

  it("the sandbox registers the configured mini-program (not its own) for login, prepay's appid binding and requestPayment", async () => {
    expect(await shop.sandbox.miniprogramAppid()).toBe('wx0123456789abcdef');
    const productId = (await shop.product('Configured mini tea', 300)).id;
    const { code } = await shop.sandbox.miniprogramCode({ openid: 'o_mp_configured' });
    const token = (await shop.http().post('/auth/miniprogram/login').send({ code }).expect(200)).body.token as string;
    const auth = { Authorization: `Bearer ${token}` };
    const no = (await shop.http().post('/orders').set(auth).send({ items: [{ productId, quantity: 1 }] }).expect(201)).body.outTradeNo as string;
    const pay = await shop.http().post(`/orders/${no}/pay`).set(auth).send({ channel: 'miniprogram' }).expect(200);
    expect((await shop.sandbox.transaction(pay.body.outTradeNo)).appid).toBe('wx0123456789abcdef');
    const { timeStamp, nonceStr, package: pkg, signType, paySign } = pay.body;
    const res = await fetch(`${shop.baseUrl}/sandbox/miniprogram/requestPayment`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ timeStamp, nonceStr, package: pkg, signType, paySign }),
    });
    expect(res.status).toBe(200);
    await shop.waitForStatus(no, 'PAID');
  });
});
