import { rmSync } from 'node:fs';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AuthController } from '../../src/auth/auth.controller';
import { LoginRequiredError } from '../../src/auth/auth.errors';
import { Clock, FixedClock } from '../../src/common/clock';
import { loginAs, loginCookie } from '../helpers/login';
import { TestApp, createTestDatabase, startTestApp, tempDir } from '../helpers/test-app';

describe('session lifetime and a vanished user', () => {
  let t: TestApp;
  let clock: FixedClock;

  beforeAll(async () => {
    clock = new FixedClock(new Date());
    t = await startTestApp({ env: { SESSION_TTL: '1h' }, override: (b) => b.overrideProvider(Clock).useValue(clock) });
  });
  afterAll(() => t?.close());

  it('accepts the session until SESSION_TTL has passed, then answers 401 LOGIN_REQUIRED', async () => {
    const login = await loginAs(t.baseUrl, 'o_ttl_expiry');
    clock.advance(59 * 60_000);
    await request(t.baseUrl).get('/auth/me').set(login.headers).expect(200);
    await request(t.baseUrl).get('/auth/me').set('Cookie', login.cookie).expect(200);
    clock.advance(60_000 + 1000);
    for (const auth of [login.headers, { Cookie: login.cookie }]) {
      const res = await request(t.baseUrl).get('/auth/me').set(auth).expect(401);
      expect(res.body).toMatchObject({ code: 'LOGIN_REQUIRED', message: expect.stringContaining('expired'), details: { login: '/auth/wechat/authorize' } });
    }
    // a new login works again
    const again = await loginAs(t.baseUrl, 'o_ttl_expiry');
    await request(t.baseUrl).get('/auth/me').set(again.headers).expect(200);
  });

  it('tells the browser the same lifetime (cookie Max-Age = SESSION_TTL)', async () => {
    const start = await fetch(`${t.baseUrl}/auth/wechat/authorize?redirect=/`, { redirect: 'manual' });
    const wechat = new URL(start.headers.get('location')!.replace('#wechat_redirect', ''));
    wechat.searchParams.set('sandbox_openid', 'o_ttl_cookie');
    const consent = await fetch(wechat, { redirect: 'manual' });
    const callback = await fetch(consent.headers.get('location')!, { redirect: 'manual', headers: { Cookie: loginCookie(start) } });
    expect(callback.headers.get('set-cookie')).toMatch(/whp_session=[^;]+; Max-Age=3600; /);
  });

  it('answers 401 LOGIN_REQUIRED with a message, not 500, when the user row no longer exists', async () => {
    const login = await loginAs(t.baseUrl, 'o_deleted', { scope: 'snsapi_userinfo' });
    const me = await request(t.baseUrl).get('/auth/me').set(login.headers).expect(200);
    expect(me.body.openid).toBe('o_deleted');
    const [{ id }] = await t.app.get(DataSource).query('SELECT id FROM users WHERE openid = ?', ['o_deleted']);
    await t.app.get(DataSource).query('DELETE FROM users WHERE openid = ?', ['o_deleted']);
    for (const path of ['/auth/me', '/auth/me?refresh=1']) {
      const res = await request(t.baseUrl).get(path).set(login.headers).expect(401);
      expect(res.body).toMatchObject({ code: 'LOGIN_REQUIRED', message: expect.stringContaining('/auth/wechat/authorize') });
    }
    // The row can also vanish between the guard and the handler: the handler answers the same way.
    const controller = t.app.get(AuthController);
    const sessionUser = { userId: Number(id), openid: 'o_deleted', appid: 'wx', scope: 'snsapi_userinfo', sessionId: 'gone', kind: 'wechat' as const };
    for (const refresh of [undefined, '1']) {
      const error = await controller.me(sessionUser, { refresh }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(LoginRequiredError);
      expect(error).toMatchObject({ status: 401, message: expect.stringContaining('no longer exists') });
    }
  });
});

describe('session cookie when PUBLIC_BASE_URL is https', () => {
  it('is Secure (as well as HttpOnly and SameSite=Lax) and works behind the TLS-terminating proxy', async () => {
    // App A plays WeChat (its sandbox lets https://shop.test be an OAuth domain); app B is the shop,
    // public at https://shop.test but listening on plain http, as behind a TLS-terminating proxy.
    const dataDir = tempDir();
    const database = await createTestDatabase(dataDir);
    const wechat = await startTestApp({ dataDir, database, env: { SANDBOX_OAUTH_DOMAINS: 'shop.test' } });
    const shop = await startTestApp({
      dataDir,
      database,
      env: {
        PUBLIC_BASE_URL: 'https://shop.test',
        WECHAT_API_BASE: `${wechat.baseUrl}/sandbox`,
        WECHAT_OPEN_BASE: `${wechat.baseUrl}/sandbox`,
        WECHATPAY_API_BASE: `${wechat.baseUrl}/sandbox`,
      },
    });
    try {
      const start = await fetch(`${shop.baseUrl}/auth/wechat/authorize?redirect=/orders`, { redirect: 'manual' });
      expect(start.status).toBe(302);
      const authorize = new URL(start.headers.get('location')!.replace('#wechat_redirect', ''));
      expect(authorize.origin).toBe(wechat.baseUrl);
      expect(authorize.searchParams.get('redirect_uri')).toBe('https://shop.test/auth/wechat/callback');
      authorize.searchParams.set('sandbox_openid', 'o_secure');
      const consent = await fetch(authorize, { redirect: 'manual' });
      expect(consent.status).toBe(302);
      const back = new URL(consent.headers.get('location')!);
      expect(back.origin).toBe('https://shop.test');
      // The proxy would hand https://shop.test/… to the shop: do the same.
      expect(start.headers.get('set-cookie')).toMatch(/whp_login=[0-9a-f]{32}; Max-Age=600; Path=\/auth\/wechat; Expires=[^;]+; HttpOnly; Secure; SameSite=Lax/);
      const callback = await fetch(`${shop.baseUrl}${back.pathname}${back.search}`, { redirect: 'manual', headers: { Cookie: loginCookie(start) } });
      expect(callback.status).toBe(302);
      expect(callback.headers.get('location')).toBe('/orders');
      const cookie = callback.headers.get('set-cookie')!;
      expect(cookie).toMatch(/^whp_session=[^;]+; Max-Age=\d+; Path=\/; Expires=[^;]+; HttpOnly; Secure; SameSite=Lax$/);
      const me = await request(shop.baseUrl).get('/auth/me').set('Cookie', cookie.split(';')[0]).expect(200);
      expect(me.body).toMatchObject({ openid: 'o_secure', scope: 'snsapi_base' });
    } finally {
      await shop.close();
      await wechat.close();
      await database.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
