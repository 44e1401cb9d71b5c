import { createPrivateKey, sign } from 'node:crypto';
import { SandboxTestApp, startSandboxApp, tradeNo } from './sandbox-app';

const NOTIFY = 'http://127.0.0.1:9/notify';

/** The cashier's programmatic side (POST /sandbox/pay) and the faults of the browser-side endpoints. */
describe('sandbox cashier: POST /sandbox/pay', () => {
  let t: SandboxTestApp;

  beforeAll(async () => {
    t = await startSandboxApp();
  });
  afterAll(() => t?.close());

  async function prepay(openid = 'o_cashier', total = 100) {
    const no = tradeNo('CSH');
    const res = await t.merchant.request('POST', '/v3/pay/transactions/jsapi', t.merchant.prepayBody(no, openid, NOTIFY, total));
    expect(res.status).toBe(200);
    return { outTradeNo: no, prepayId: res.json.prepay_id as string };
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the cashier's JSON answers
  async function payNow(body: unknown): Promise<{ status: number; json: any }> {
    const res = await fetch(`${t.baseUrl}/sandbox/pay`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, json: await res.json() };
  }

  it('pays as the prepay\'s user: 200 ok with the transaction id, then 409 once paid', async () => {
    const { outTradeNo, prepayId } = await prepay('o_cashier_ok');
    const paid = await payNow({ prepay_id: prepayId, openid: 'o_cashier_ok' });
    expect(paid).toMatchObject({ status: 200, json: { result: 'ok', outTradeNo, transactionId: expect.stringMatching(/^42000\d+$/) } });
    expect((await t.control.transaction(outTradeNo)).trade_state).toBe('SUCCESS');
    expect(await payNow({ prepay_id: prepayId, openid: 'o_cashier_ok' })).toMatchObject({ status: 409, json: { result: 'fail', reason: '该订单已支付' } });
  });

  it('refuses another payer with 403 and leaves the order unpaid', async () => {
    const { outTradeNo, prepayId } = await prepay('o_cashier_owner');
    const wrong = await payNow({ prepay_id: prepayId, openid: 'o_cashier_mallory' });
    expect(wrong).toMatchObject({ status: 403, json: { result: 'fail', reason: expect.stringContaining('openid') } });
    expect(wrong.json.transactionId).toBeUndefined();
    expect((await t.control.transaction(outTradeNo)).trade_state).toBe('NOTPAY');
  });

  it('answers 400 without openid or prepay_id, and 404 for an unknown prepay_id', async () => {
    const { prepayId } = await prepay();
    expect(await payNow({ prepay_id: prepayId })).toMatchObject({ status: 400, json: { result: 'fail', reason: 'prepay_id and openid are required' } });
    expect(await payNow({ prepay_id: prepayId, openid: '' })).toMatchObject({ status: 400 });
    expect(await payNow({ openid: 'o_cashier' })).toMatchObject({ status: 400 });
    expect(await payNow({ prepay_id: 'wx_no_such_prepay', openid: 'o_cashier' })).toMatchObject({ status: 404, json: { result: 'fail', reason: 'prepay_id 不存在' } });
  });

  it('reports the user\'s cancel and fail buttons with 200, and the order stays NOTPAY', async () => {
    const { outTradeNo, prepayId } = await prepay('o_cashier_undecided');
    expect(await payNow({ prepay_id: prepayId, openid: 'o_cashier_undecided', result: 'cancel' })).toMatchObject({ status: 200, json: { result: 'cancel' } });
    expect(await payNow({ prepay_id: prepayId, openid: 'o_cashier_undecided', result: 'fail' })).toMatchObject({ status: 200, json: { result: 'fail' } });
    expect((await t.control.transaction(outTradeNo)).trade_state).toBe('NOTPAY');
  });

  it('refuses an expired prepay_id (2 hours) with 409, in the cashier and in the JS bridge', async () => {
    const { outTradeNo, prepayId } = await prepay('o_cashier_late');
    const pkg = `prepay_id=${prepayId}`;
    const ts = String(Math.floor(Date.now() / 1000));
    const paySign = sign('sha256', Buffer.from(`${t.keystore.appid}\n${ts}\nn1\n${pkg}\n`), createPrivateKey(t.keystore.merchant.privateKeyPem)).toString('base64');
    const params = { appId: t.keystore.appid, timeStamp: ts, nonceStr: 'n1', package: pkg, signType: 'RSA', paySign };
    const bridge = () =>
      fetch(`${t.baseUrl}/sandbox/jsbridge/pay`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ url: `${t.baseUrl}/pay.html`, params }) }).then((r) => r.json());
    expect(await bridge()).toEqual({ ok: true, prepayId });
    await t.control.shiftClock(2 * 3600_000 + 1000);
    try {
      expect(await payNow({ prepay_id: prepayId, openid: 'o_cashier_late' })).toMatchObject({ status: 409, json: { result: 'fail', reason: expect.stringContaining('已过期') } });
      expect(await bridge()).toEqual({ ok: false, errDesc: 'prepay_id 已过期' });
      expect((await t.control.transaction(outTradeNo)).trade_state).toBe('NOTPAY');
    } finally {
      await t.control.resetClock();
    }
  });

  describe('faults', () => {
    const post = (path: string, body: unknown, signal?: AbortSignal) =>
      fetch(`${t.baseUrl}/sandbox/${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), signal });

    it('fails POST /sandbox/pay with 500, 429 or a timeout, without paying; the next call pays', async () => {
      const { outTradeNo, prepayId } = await prepay('o_cashier_fault');
      await t.control.resetCalls();
      await t.control.failNext('sandbox/pay', '500');
      await t.control.failNext('sandbox/pay', '429');
      await t.control.failNext('sandbox/pay', 'timeout');
      const body = { prepay_id: prepayId, openid: 'o_cashier_fault' };
      const r1 = await post('pay', body);
      expect(r1.status).toBe(500);
      expect(await r1.json()).toEqual({ result: 'fail', reason: '系统繁忙，请稍后再试' });
      const r2 = await post('pay', body);
      expect(r2.status).toBe(429);
      expect(((await r2.json()) as { result: string }).result).toBe('fail');
      await expect(post('pay', body, AbortSignal.timeout(300))).rejects.toThrow();
      expect((await t.control.transaction(outTradeNo)).trade_state).toBe('NOTPAY');
      const r4 = await post('pay', body);
      expect(r4.status).toBe(200);
      expect(((await r4.json()) as { result: string }).result).toBe('ok');
      expect(await t.control.callsTo('sandbox/pay')).toBe(4);
    });

    it('fails wx.config and getBrandWCPayRequest checks with JSON the shim reports as config:fail / :fail', async () => {
      await t.control.failNext('jsbridge/config', '500');
      const config = await post('jsbridge/config', { url: `${t.baseUrl}/x.html`, appId: t.keystore.appid });
      expect(config.status).toBe(500);
      expect(await config.json()).toEqual({ ok: false, errMsg: 'config:fail, system error' });
      await t.control.failNext('jsbridge/pay', '429');
      const pay = await post('jsbridge/pay', { url: `${t.baseUrl}/x.html`, params: {} });
      expect(pay.status).toBe(429);
      expect(await pay.json()).toEqual({ ok: false, errDesc: '操作过于频繁，请稍后再试' });
      await t.control.failNext('jsbridge/pay', 'timeout');
      await expect(post('jsbridge/pay', { url: `${t.baseUrl}/x.html`, params: {} }, AbortSignal.timeout(300))).rejects.toThrow();
      // Unfaulted calls answer normally again.
      expect(await (await post('jsbridge/pay', { url: 'https://elsewhere.example/x.html', params: {} })).json()).toMatchObject({ ok: false, errDesc: expect.stringContaining('当前页面的URL未注册') });
    });

    it('fails the OAuth authorize page with WeChat\'s error page (500 system error, 429 minute quota)', async () => {
      const url =
        `${t.baseUrl}/sandbox/connect/oauth2/authorize?appid=${t.keystore.appid}&redirect_uri=${encodeURIComponent(`${t.baseUrl}/cb`)}` +
        `&response_type=code&scope=snsapi_base&state=s&sandbox_openid=o_cashier_oauth`;
      await t.control.resetCalls();
      await t.control.failNext('connect/oauth2/authorize', '500');
      await t.control.failNext('connect/oauth2/authorize', '429');
      const r1 = await fetch(url, { redirect: 'manual' });
      expect(r1.status).toBe(500);
      expect(await r1.text()).toContain('errcode: -1');
      const r2 = await fetch(url, { redirect: 'manual' });
      expect(r2.status).toBe(429);
      expect(await r2.text()).toContain('errcode: 45011');
      const r3 = await fetch(url, { redirect: 'manual' });
      expect(r3.status).toBe(302);
      expect(new URL(r3.headers.get('location')!).searchParams.get('code')).toBeTruthy();
      expect(await t.control.callsTo('connect/oauth2/authorize')).toBe(3);
    });
  });
});
