import request from 'supertest';
import { liveEnv, removeLiveEnvKeys } from '../helpers/live-env';
import { Shop } from '../helpers/shop';
import { TestApp, startTestApp } from '../helpers/test-app';

/**
 * Issue 11 item 8: security headers (helmet). Every page carries a CSP without inline code
 * (`default-src 'self'`, `frame-ancestors 'none'`), nosniff, a Referrer-Policy, and HSTS when the
 * site is https; the demo shop also admits WeChat's JS-SDK, the sandbox cashier the merchant's frame.
 * The browser suite (test/browser/) checks that the pages run under it without a single violation.
 */

type Csp = Map<string, string[]>;

function csp(res: { headers: Record<string, string | string[] | undefined> }): Csp {
  const header = res.headers['content-security-policy'];
  expect(typeof header).toBe('string');
  return new Map(
    String(header)
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .filter((d) => d[0])
      .map(([name, ...values]) => [name, values]),
  );
}

/** Markup that a CSP without 'unsafe-inline' would refuse: the pages must not contain any. */
function inlineCode(html: string): string[] {
  const found: string[] = [];
  for (const m of html.matchAll(/<script\b[^>]*>/gi)) if (!/\bsrc=/.test(m[0])) found.push(m[0]);
  for (const m of html.matchAll(/<style\b/gi)) found.push(m[0]);
  for (const m of html.matchAll(/<[^>]+\s(style|on[a-z]+)\s*=/gi)) found.push(m[0]);
  for (const m of html.matchAll(/javascript:/gi)) found.push(m[0]);
  return found;
}

afterAll(removeLiveEnvKeys);

describe('security headers in sandbox mode (http://127.0.0.1)', () => {
  let shop: Shop;
  let t: TestApp;
  let consentPath: string;

  beforeAll(async () => {
    shop = await Shop.start();
    t = shop.t;
    const start = await request(t.baseUrl).get('/auth/wechat/authorize?redirect=%2F').expect(302);
    const consent = new URL(start.headers.location);
    consentPath = `${consent.pathname}${consent.search}`;
    expect(consent.pathname).toBe('/sandbox/connect/oauth2/authorize');
  });
  afterAll(() => shop?.close());

  const pages = (): Array<[string, string, number]> => [
    ['the shop', '/', 200],
    ['the shop', '/index.html', 200],
    ['the console', '/admin/', 200],
    ['the log-in-again page', '/auth/wechat/callback?code=c&state=forged', 400],
    ['the sandbox consent page', consentPath, 200],
    ['the sandbox error page', '/sandbox/connect/oauth2/authorize?appid=wrong', 400],
    ['the sandbox cashier for an unknown prepay', '/sandbox/cashier?prepay_id=nope', 404],
  ];

  it('a page of another site cannot frame the shop, the console, the login or the consent page to clickjack them', async () => {
    for (const [, path, status] of pages()) {
      const res = await request(t.baseUrl).get(path).expect(status);
      expect(res.type).toBe('text/html');
      expect(csp(res).get('frame-ancestors')).toEqual(["'none'"]);
      expect(res.headers['x-frame-options']).toBe('DENY');
    }
  });

  it('an HTML injection cannot run script or style on any page: no unsafe-inline, no inline handlers, and the pages themselves carry no inline code', async () => {
    for (const [name, path, status] of pages()) {
      const res = await request(t.baseUrl).get(path).expect(status);
      const policy = csp(res);
      expect(policy.get('default-src')).toEqual(["'self'"]);
      expect(policy.get('script-src-attr')).toEqual(["'none'"]);
      expect(policy.get('object-src')).toEqual(["'none'"]);
      expect(policy.get('base-uri')).toEqual(["'self'"]);
      for (const directive of ['script-src', 'style-src']) {
        const values = policy.get(directive)!;
        expect(values).toContain("'self'");
        expect(values.filter((v) => v.startsWith("'unsafe") || v === '*' || v === 'http:' || v === 'https:' || v === 'data:')).toEqual([]);
      }
      expect({ name, inline: inlineCode(res.text) }).toEqual({ name, inline: [] });
    }
    // The static scripts and the sandbox's files they load.
    for (const path of ['/shop.js', '/admin/admin.js', '/sandbox/jweixin.js', '/sandbox/cashier.js']) {
      const res = await request(t.baseUrl).get(path).expect(200);
      expect(res.headers['content-type']).toMatch(/javascript/);
      expect(res.text).not.toMatch(/setAttribute\(\s*['"]style['"]|\sstyle="|\son[a-z]+="/);
    }
    const css = await request(t.baseUrl).get('/sandbox/sandbox.css').expect(200);
    expect(css.headers['content-type']).toMatch(/^text\/css/);
    expect((await request(t.baseUrl).get('/auth/login.css').expect(200)).headers['content-type']).toMatch(/^text\/css/);
  });

  it('the shop page runs WeChat JS-SDK scripts (res.wx.qq.com, res2.wx.qq.com) and no other third party', async () => {
    const policy = csp(await request(t.baseUrl).get('/').expect(200));
    expect(policy.get('script-src')).toEqual(["'self'", 'https://res.wx.qq.com', 'https://res2.wx.qq.com']);
    expect(policy.get('connect-src')).toEqual(["'self'"]);
    // The console admits no third party at all.
    const console = csp(await request(t.baseUrl).get('/admin/').expect(200));
    expect(console.get('script-src')).toEqual(["'self'"]);
    expect(console.get('img-src')).toEqual(["'self'", 'data:']);
  });

  it('a JSON answer, an error or a static file cannot be sniffed into HTML by the browser (nosniff everywhere)', async () => {
    for (const [path, status] of [
      ['/products', 200],
      ['/health', 200],
      ['/no-such-route', 404],
      ['/health?%ZZ', 400],
      ['/orders', 401],
      ['/shop.css', 200],
    ] as const) {
      const res = await request(t.baseUrl).get(path).expect(status);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['content-security-policy']).toContain("default-src 'self'");
    }
  });

  it('order numbers in our URLs do not leak to other sites through the Referer (strict-origin-when-cross-origin)', async () => {
    for (const path of ['/', '/admin/', consentPath, '/orders']) {
      const res = await request(t.baseUrl).get(path);
      expect(res.headers['referrer-policy']).toBe('strict-origin-when-cross-origin');
    }
  });

  it('an http development host is never pinned to https: no HSTS, no upgrade-insecure-requests', async () => {
    const res = await request(t.baseUrl).get('/').expect(200);
    expect(res.headers['strict-transport-security']).toBeUndefined();
    expect(csp(res).has('upgrade-insecure-requests')).toBe(false);
  });

  it('the sandbox cashier can be framed by the merchant page in the JSAPI payment directory, by no other site', async () => {
    const buyer = await shop.login('o_headers_buyer');
    const product = await shop.product('Header mug', 100);
    const prepayId = await shop.prepay(buyer, await shop.placeOrder(buyer, [{ productId: product.id, quantity: 1 }]));
    const res = await request(t.baseUrl).get(`/sandbox/cashier?bridge=1&prepay_id=${encodeURIComponent(prepayId)}`).expect(200);
    // The default JSAPI payment directories are the app's own origin under both loopback names
    // (registrations have no port).
    expect(csp(res).get('frame-ancestors')).toEqual(["'self'", 'http://127.0.0.1:*', 'http://localhost:*']);
    expect(res.headers['x-frame-options']).toBeUndefined();
    expect(inlineCode(res.text)).toEqual([]);
    expect(res.text).toContain(`data-prepay-id="${prepayId}"`);
    // jweixin.js is loaded by the merchant's page from the sandbox's origin (WeChat's, in live).
    expect((await request(t.baseUrl).get('/sandbox/jweixin.js').expect(200)).headers['cross-origin-resource-policy']).toBe('cross-origin');
    expect((await request(t.baseUrl).get('/shop.js').expect(200)).headers['cross-origin-resource-policy']).toBe('same-origin');
  });

  it("the consent page's forms post only to the sandbox and the merchant's redirect_uri origin, never elsewhere", async () => {
    const res = await request(t.baseUrl).get(consentPath).expect(200);
    expect(csp(res).get('form-action')).toEqual(["'self'", t.baseUrl]);
    // Everywhere else: forms post to our own origin only.
    expect(csp(await request(t.baseUrl).get('/admin/').expect(200)).get('form-action')).toEqual(["'self'"]);
  });
});

describe('security headers in live mode (https PUBLIC_BASE_URL)', () => {
  it('an SSL-stripping attacker cannot downgrade a returning shopper to http: HSTS and upgrade-insecure-requests on an https site', async () => {
    const t = await startTestApp({ env: liveEnv({ DEMO_SHOP: 'true' }) });
    try {
      for (const path of ['/', '/admin/', '/health']) {
        const res = await request(t.baseUrl).get(path).expect(200);
        expect(res.headers['strict-transport-security']).toBe('max-age=15552000');
        expect(csp(res).get('upgrade-insecure-requests')).toEqual([]);
        expect(csp(res).get('frame-ancestors')).toEqual(["'none'"]);
      }
      // The shop loads WeChat's own JS-SDK in live mode, and the CSP admits exactly that origin.
      const config = await request(t.baseUrl).get('/shop/config').expect(200);
      const jweixin = new URL(config.body.jweixin);
      const shopPolicy = csp(await request(t.baseUrl).get('/').expect(200));
      expect(shopPolicy.get('script-src')).toContain(jweixin.origin);
      expect(shopPolicy.get('img-src')).toEqual(["'self'", 'data:', 'https:']);
    } finally {
      await t.close();
    }
  });
});
