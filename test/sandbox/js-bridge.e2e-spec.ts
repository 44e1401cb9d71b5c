import { createHash, createPrivateKey, sign } from 'node:crypto';
import { runInNewContext } from 'node:vm';
import { SandboxTestApp, startSandboxApp, tradeNo } from './sandbox-app';

describe('sandbox JS bridge', () => {
  let t: SandboxTestApp;

  beforeAll(async () => {
    t = await startSandboxApp({ env: { SANDBOX_PAY_DIRECTORIES: 'http://127.0.0.1/shop/' } });
  });
  afterAll(() => t?.close());

  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${t.baseUrl}/sandbox/${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    expect(res.status).toBe(200);
    return res.json() as Promise<Record<string, unknown>>;
  };

  async function ticket(): Promise<string> {
    const token = await fetch(`${t.baseUrl}/sandbox/cgi-bin/token?grant_type=client_credential&appid=${t.keystore.appid}&secret=${t.keystore.appsecret}`).then((r) => r.json() as Promise<{ access_token: string }>);
    const res = await fetch(`${t.baseUrl}/sandbox/cgi-bin/ticket/getticket?access_token=${token.access_token}&type=jsapi`).then((r) => r.json() as Promise<{ ticket: string }>);
    return res.ticket;
  }

  it('serves jweixin.js', async () => {
    const res = await fetch(`${t.baseUrl}/sandbox/jweixin.js`);
    expect(res.headers.get('content-type')).toContain('javascript');
    expect(await res.text()).toContain('getBrandWCPayRequest');
  });

  it('accepts a wx.config signed with the current ticket on a JS-safe domain, and nothing else', async () => {
    const jsapiTicket = await ticket();
    const url = `${t.baseUrl}/shop/index.html?x=1`;
    const signature = createHash('sha1').update(`jsapi_ticket=${jsapiTicket}&noncestr=abc&timestamp=1700000000&url=${url}`).digest('hex');
    const config = { appId: t.keystore.appid, timestamp: 1700000000, nonceStr: 'abc', signature, jsApiList: ['chooseWXPay'] };
    expect(await post('jsbridge/config', { ...config, url: `${url}#/cart` })).toEqual({ ok: true, errMsg: 'config:ok' });
    expect(await post('jsbridge/config', { ...config, url, signature: '0'.repeat(40) })).toMatchObject({ ok: false, errMsg: 'config:invalid signature' });
    expect(await post('jsbridge/config', { ...config, url: 'https://evil.com/shop/index.html' })).toMatchObject({ ok: false, errMsg: 'config:invalid url domain' });
  });

  it('checks the payment directory and paySign before opening the cashier', async () => {
    const no = tradeNo('JSB');
    const prepay = await t.merchant.request('POST', '/v3/pay/transactions/jsapi', t.merchant.prepayBody(no, 'o_js', 'http://127.0.0.1:9/n'));
    const pkg = `prepay_id=${prepay.json.prepay_id}`;
    const ts = String(Math.floor(Date.now() / 1000));
    const paySign = sign('sha256', Buffer.from(`${t.keystore.appid}\n${ts}\nnonce1\n${pkg}\n`), createPrivateKey(t.keystore.merchant.privateKeyPem)).toString('base64');
    const params = { appId: t.keystore.appid, timeStamp: ts, nonceStr: 'nonce1', package: pkg, signType: 'RSA', paySign };
    expect(await post('jsbridge/pay', { url: `${t.baseUrl}/shop/pay.html`, params })).toEqual({ ok: true, prepayId: prepay.json.prepay_id });
    expect(await post('jsbridge/pay', { url: `${t.baseUrl}/shop/sub/pay.html`, params })).toMatchObject({ ok: false, errDesc: expect.stringContaining('当前页面的URL未注册') });
    expect(await post('jsbridge/pay', { url: `${t.baseUrl}/pay.html`, params })).toMatchObject({ ok: false, errDesc: expect.stringContaining('当前页面的URL未注册') });
    expect(await post('jsbridge/pay', { url: `${t.baseUrl}/shop/pay.html`, params: { ...params, nonceStr: 'nonce2' } })).toMatchObject({ ok: false, errDesc: '支付验证签名失败' });

    const cashier = await fetch(`${t.baseUrl}/sandbox/cashier?prepay_id=${prepay.json.prepay_id}`);
    const html = await cashier.text();
    expect(html).toContain('¥1.00');
    expect(html).toContain(no);
  });
});

describe('jweixin.js in a page', () => {
  /** Runs the shim in a minimal fake browser whose fetch answers like the sandbox would. */
  function load(answers: Record<string, unknown>) {
    const errors: string[] = [];
    const listeners: Record<string, Array<(e: unknown) => void>> = {};
    const document = {
      currentScript: { src: 'http://127.0.0.1:3000/sandbox/jweixin.js' },
      dispatchEvent: () => true,
      createElement: () => ({ setAttribute() {}, appendChild() {}, style: {} }),
      body: { appendChild: () => undefined },
    };
    const window: Record<string, unknown> = {
      addEventListener: (name: string, fn: (e: unknown) => void) => (listeners[name] ??= []).push(fn),
      removeEventListener: () => undefined,
    };
    const context = {
      window,
      document,
      location: { href: 'http://127.0.0.1:3000/shop/index.html#x', origin: 'http://127.0.0.1:3000' },
      URL,
      Event: class {
        constructor(readonly type: string) {}
      },
      console: { error: (m: string) => errors.push(m), log: () => undefined },
      setTimeout,
      alert: () => undefined,
      fetch: async (url: string, init: { body: string }) => ({
        json: async () => answers[url.replace('http://127.0.0.1:3000/sandbox', '')] ?? { ok: false, body: JSON.parse(init.body) },
      }),
    };
    runInNewContext(require('../../src/sandbox/pages/jweixin').JWEIXIN_JS, context);
    return { wx: window.wx as any, bridge: window.WeixinJSBridge as any, errors }; // eslint-disable-line @typescript-eslint/no-explicit-any
  }

  it('runs wx.ready after a valid config and complains when wx.config is called twice', async () => {
    const { wx, errors } = load({ '/jsbridge/config': { ok: true, errMsg: 'config:ok' } });
    const ready = new Promise<void>((resolve) => wx.ready(resolve));
    wx.config({ appId: 'wx', timestamp: 1, nonceStr: 'n', signature: 's' });
    await ready;
    expect(errors).toEqual([]);
    wx.config({ appId: 'wx', timestamp: 1, nonceStr: 'n', signature: 's' });
    expect(errors[0]).toContain('wx.config was called 2 times');
  });

  it('answers get_brand_wcpay_request:fail with WeChat\'s reason when the sandbox refuses', async () => {
    const { bridge } = load({ '/jsbridge/pay': { ok: false, errDesc: '当前页面的URL未注册：http://x/' } });
    const res = await new Promise<{ err_msg: string; err_desc: string }>((resolve) => bridge.invoke('getBrandWCPayRequest', {}, resolve));
    expect(res).toEqual({ err_msg: 'get_brand_wcpay_request:fail', err_desc: '当前页面的URL未注册：http://x/' });
  });

  it('reports wx.error for a refused config', async () => {
    const { wx } = load({ '/jsbridge/config': { ok: false, errMsg: 'config:invalid signature' } });
    const failed = new Promise<{ errMsg: string }>((resolve) => wx.error(resolve));
    wx.config({ appId: 'wx', timestamp: 1, nonceStr: 'n', signature: 's' });
    expect(await failed).toEqual({ errMsg: 'config:invalid signature' });
  });
});

describe('jweixin.js against the sandbox: ok / cancel / fail through the cashier', () => {
  let t: SandboxTestApp;

  beforeAll(async () => {
    t = await startSandboxApp();
  });
  afterAll(() => t?.close());

  type Choice = 'success' | 'cancel' | 'fail';

  /**
   * Runs the shim in a minimal fake browser on a page of the app, with the real fetch (real HTTP to the
   * sandbox). When the shim opens the cashier, the "user" presses a button: exactly what the cashier
   * page's script does — POST /sandbox/pay { prepay_id, openid, result }, then postMessage the answer
   * to the page from the cashier frame.
   */
  function browser(choice: Choice, payer: (prepayOpenid: string) => string = (o) => o) {
    const listeners: Record<string, Array<(e: unknown) => void>> = {};
    const cashierPages: string[] = [];
    const document = {
      currentScript: { src: `${t.baseUrl}/sandbox/jweixin.js` },
      dispatchEvent: () => true,
      createElement: () => ({ src: '', contentWindow: {}, children: [] as unknown[], parentNode: null as unknown, setAttribute() {}, appendChild(c: unknown) { this.children.push(c); }, style: {} }),
      body: {
        appendChild: (overlay: { children: Array<{ src: string; contentWindow: object }>; parentNode: unknown }) => {
          overlay.parentNode = { removeChild: () => undefined };
          const frame = overlay.children[0];
          void (async () => {
            const page = await fetch(frame.src).then((r) => r.text());
            cashierPages.push(page);
            const prepayId = new URL(frame.src).searchParams.get('prepay_id')!;
            const shownPayer = /付款用户 <code>([^<]+)<\/code>/.exec(page)![1];
            const answer = (await fetch(`${t.baseUrl}/sandbox/pay`, {
              method: 'POST',
              headers: { 'Content-Type': 'application/json' },
              body: JSON.stringify({ prepay_id: prepayId, openid: payer(shownPayer), result: choice }),
            }).then((r) => r.json())) as { result: string; reason?: string };
            for (const fn of listeners.message ?? []) fn({ data: { type: 'wx-sandbox-pay-result', result: answer.result, reason: answer.reason || '' }, source: frame.contentWindow });
          })();
        },
      },
    };
    const window: Record<string, unknown> = {
      addEventListener: (name: string, fn: (e: unknown) => void) => (listeners[name] ??= []).push(fn),
      removeEventListener: (name: string, fn: (e: unknown) => void) => (listeners[name] = (listeners[name] ?? []).filter((f) => f !== fn)),
    };
    const pageUrl = `${t.baseUrl}/shop/checkout.html`;
    const context = {
      window,
      document,
      location: { href: `${pageUrl}#/pay`, origin: t.baseUrl },
      URL,
      Event: class {
        constructor(readonly type: string) {}
      },
      console: { error: () => undefined, log: () => undefined },
      setTimeout,
      alert: () => undefined,
      fetch,
    };
    runInNewContext(require('../../src/sandbox/pages/jweixin').JWEIXIN_JS, context);
    return { wx: window.wx as any, bridge: window.WeixinJSBridge as any, pageUrl, cashierPages }; // eslint-disable-line @typescript-eslint/no-explicit-any
  }

  async function order(openid: string) {
    const no = tradeNo('JSO');
    const prepay = await t.merchant.request('POST', '/v3/pay/transactions/jsapi', t.merchant.prepayBody(no, openid, 'http://127.0.0.1:9/n', 990));
    const pkg = `prepay_id=${prepay.json.prepay_id}`;
    const ts = String(Math.floor(Date.now() / 1000));
    const nonce = 'n0nce';
    const paySign = sign('sha256', Buffer.from(`${t.keystore.appid}\n${ts}\n${nonce}\n${pkg}\n`), createPrivateKey(t.keystore.merchant.privateKeyPem)).toString('base64');
    return { no, params: { appId: t.keystore.appid, timeStamp: ts, nonceStr: nonce, package: pkg, signType: 'RSA', paySign } };
  }

  const invoke = (bridge: { invoke: (name: string, p: unknown, cb: (r: unknown) => void) => void }, params: unknown) =>
    new Promise<{ err_msg: string; err_desc: string }>((resolve) => bridge.invoke('getBrandWCPayRequest', params, resolve as (r: unknown) => void));

  it.each([
    ['success', 'get_brand_wcpay_request:ok', 'SUCCESS'],
    ['cancel', 'get_brand_wcpay_request:cancel', 'NOTPAY'],
    ['fail', 'get_brand_wcpay_request:fail', 'NOTPAY'],
  ] as const)('the user presses %s: err_msg %s, order %s', async (choice, errMsg, tradeState) => {
    const { no, params } = await order('o_bridge_user');
    const page = browser(choice);
    const res = await invoke(page.bridge, params);
    expect(res.err_msg).toBe(errMsg);
    if (choice === 'fail') expect(res.err_desc).toContain('支付失败');
    // The cashier posts its answer to the merchant's page from its script file (no inline script: CSP).
    expect(page.cashierPages[0]).toContain('data-bridge="1"');
    expect(page.cashierPages[0]).toContain('<script src="/sandbox/cashier.js"></script>');
    expect(await (await fetch(`${t.baseUrl}/sandbox/cashier.js`)).text()).toContain('wx-sandbox-pay-result');
    expect(page.cashierPages[0]).toContain('¥9.90');
    expect((await t.control.transaction(no)).trade_state).toBe(tradeState);
  });

  it('answers :fail with the reason when another WeChat user tries to pay', async () => {
    const { no, params } = await order('o_bridge_owner');
    const page = browser('success', () => 'o_bridge_someone_else');
    const res = await invoke(page.bridge, params);
    expect(res).toEqual({ err_msg: 'get_brand_wcpay_request:fail', err_desc: expect.stringContaining('openid') });
    expect((await t.control.transaction(no)).trade_state).toBe('NOTPAY');
  });

  it('maps wx.chooseWXPay after a valid wx.config to success / cancel callbacks', async () => {
    const token = (await fetch(`${t.baseUrl}/sandbox/cgi-bin/token?grant_type=client_credential&appid=${t.keystore.appid}&secret=${t.keystore.appsecret}`).then((r) => r.json())) as { access_token: string };
    const { ticket } = (await fetch(`${t.baseUrl}/sandbox/cgi-bin/ticket/getticket?access_token=${token.access_token}&type=jsapi`).then((r) => r.json())) as { ticket: string };
    for (const [choice, callback] of [
      ['success', 'success'],
      ['cancel', 'cancel'],
    ] as const) {
      const { no, params } = await order('o_bridge_wx');
      const page = browser(choice);
      const signature = createHash('sha1').update(`jsapi_ticket=${ticket}&noncestr=cfg&timestamp=1700000000&url=${page.pageUrl}`).digest('hex');
      const ready = new Promise<void>((resolve, reject) => {
        page.wx.ready(resolve);
        page.wx.error(reject);
      });
      page.wx.config({ appId: t.keystore.appid, timestamp: 1700000000, nonceStr: 'cfg', signature, jsApiList: ['chooseWXPay'] });
      await ready;
      const result = await new Promise<{ via: string; errMsg: string }>((resolve) =>
        page.wx.chooseWXPay({
          timestamp: params.timeStamp,
          nonceStr: params.nonceStr,
          package: params.package,
          signType: 'RSA',
          paySign: params.paySign,
          success: (r: { errMsg: string }) => resolve({ via: 'success', ...r }),
          cancel: (r: { errMsg: string }) => resolve({ via: 'cancel', ...r }),
          fail: (r: { errMsg: string }) => resolve({ via: 'fail', ...r }),
        }),
      );
      expect(result).toMatchObject({ via: callback, errMsg: `chooseWXPay:${choice === 'success' ? 'ok' : 'cancel'}` });
      expect((await t.control.transaction(no)).trade_state).toBe(choice === 'success' ? 'SUCCESS' : 'NOTPAY');
    }
  });
});
