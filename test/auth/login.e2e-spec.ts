import request from 'supertest';
import { DataSource } from 'typeorm';
import { AuthService } from '../../src/auth/auth.service';
import { Clock, FixedClock } from '../../src/common/clock';
import { SandboxState } from '../../src/sandbox/sandbox.state';
import { loginAs, loginCookie } from '../helpers/login';
import { SandboxControl } from '../helpers/sandbox-control';
import { TestApp, startTestApp } from '../helpers/test-app';

describe('WeChat login', () => {
  let t: TestApp;
  let sandbox: SandboxControl;

  beforeAll(async () => {
    t = await startTestApp({ captureLogs: true });
    sandbox = new SandboxControl(t.baseUrl);
  });
  afterAll(() => t?.close());

  // This "browser"'s login cookie: set by the first authorize, sent back to later ones and to callbacks.
  let jar = '';
  async function authorizeStep(query = 'redirect=/orders') {
    const res = await fetch(`${t.baseUrl}/auth/wechat/authorize?${query}`, { redirect: 'manual', headers: jar ? { Cookie: jar } : {} });
    expect(res.status).toBe(302);
    jar = loginCookie(res);
    const location = res.headers.get('location')!;
    expect(location.endsWith('&connect_redirect=1#wechat_redirect')).toBe(true);
    return new URL(location.replace('#wechat_redirect', ''));
  }

  async function consent(wechat: URL, openid: string) {
    wechat.searchParams.set('sandbox_openid', openid);
    const res = await fetch(wechat, { redirect: 'manual' });
    expect(res.status).toBe(302);
    return new URL(res.headers.get('location')!);
  }

  it('runs the whole flow with snsapi_base: authorize → WeChat → callback → cookie → /auth/me', async () => {
    const wechat = await authorizeStep('redirect=/orders%3Ftab%3D1');
    expect(wechat.pathname).toBe('/sandbox/connect/oauth2/authorize');
    expect(wechat.searchParams.get('redirect_uri')).toBe(`${t.baseUrl}/auth/wechat/callback`);
    expect(wechat.searchParams.get('scope')).toBe('snsapi_base');
    expect(wechat.searchParams.get('response_type')).toBe('code');
    expect(wechat.searchParams.get('state')).toMatch(/^[0-9a-f]{64}$/);
    const back = await consent(wechat, 'o_login_base');
    const callback = await fetch(back, { redirect: 'manual', headers: { Cookie: jar } });
    expect(callback.status).toBe(302);
    expect(callback.headers.get('location')).toBe('/orders?tab=1');
    const cookie = callback.headers.get('set-cookie')!;
    expect(cookie).toMatch(/whp_session=[^;]+; Max-Age=\d+; Path=\/; Expires=[^;]+; HttpOnly; SameSite=Lax/);
    expect(cookie).not.toMatch(/Secure/);
    const session = cookie.split(';')[0];
    const me = await request(t.baseUrl).get('/auth/me').set('Cookie', session).expect(200);
    expect(me.body).toEqual({ kind: 'wechat', openid: 'o_login_base', nickname: null, avatarUrl: null, scope: 'snsapi_base' });
  });

  it('reads nickname and avatar with snsapi_userinfo, and accepts the token as a bearer', async () => {
    const login = await loginAs(t.baseUrl, 'o_login_info', { scope: 'snsapi_userinfo', nickname: '张三' });
    const me = await request(t.baseUrl).get('/auth/me').set(login.headers).expect(200);
    expect(me.body).toEqual({ kind: 'wechat', openid: 'o_login_info', nickname: '张三', avatarUrl: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/sandbox\/mmopen\/vi_32\/[0-9a-f]{32}\/132$/), scope: 'snsapi_userinfo' });
    // a later silent login keeps the profile
    const again = await loginAs(t.baseUrl, 'o_login_info');
    const me2 = await request(t.baseUrl).get('/auth/me').set(again.headers).expect(200);
    expect(me2.body).toMatchObject({ nickname: '张三', scope: 'snsapi_userinfo' });
  });

  it('answers 401 without a session, with a forged one, and after logout', async () => {
    const none = await request(t.baseUrl).get('/auth/me').expect(401);
    expect(none.body).toMatchObject({ code: 'LOGIN_REQUIRED', message: expect.stringContaining('/auth/wechat/authorize') });
    await request(t.baseUrl).get('/auth/me').set('Authorization', 'Bearer abc.def').expect(401);
    const login = await loginAs(t.baseUrl, 'o_logout');
    const forged = login.token.slice(0, -2) + (login.token.endsWith('A') ? 'BB' : 'AA');
    await request(t.baseUrl).get('/auth/me').set('Authorization', `Bearer ${forged}`).expect(401);
    await request(t.baseUrl).post('/auth/logout').set(login.headers).expect(204);
    await request(t.baseUrl).get('/auth/me').set(login.headers).expect(401);
  });

  it.each([['//evil.com'], ['https://evil.com'], ['/\\evil.com'], ['evil.com'], ['/\r\nLocation: https://evil.com'], ['javascript:alert(1)'], ['/\t/evil.com']])(
    'refuses the open redirect %j with 400 and records nothing',
    async (redirect) => {
      const dataSource = t.app.get(DataSource);
      const before = await dataSource.query('SELECT COUNT(*) AS n FROM oauth_states');
      const res = await request(t.baseUrl).get('/auth/wechat/authorize').query({ redirect }).expect(400);
      expect(res.body).toMatchObject({ code: 'INVALID_REDIRECT', message: expect.stringContaining('redirect must be a path on this site') });
      expect(await dataSource.query('SELECT COUNT(*) AS n FROM oauth_states')).toEqual(before);
    },
  );

  it('refuses an unknown scope and unknown parameters', async () => {
    const res = await request(t.baseUrl).get('/auth/wechat/authorize?scope=snsapi_login').expect(400);
    expect(res.body.message).toContain('scope must be snsapi_base or snsapi_userinfo');
    await request(t.baseUrl).get('/auth/wechat/authorize?foo=bar').expect(400);
  });

  it("login CSRF: an attacker's callback URL visited by a victim does not log the victim in (login page again, in Chinese, nothing changed)", async () => {
    // The attacker starts a login in their own browser and consents as themselves...
    const attacker = await fetch(`${t.baseUrl}/auth/wechat/authorize?redirect=/`, { redirect: 'manual' });
    const attackerJar = loginCookie(attacker);
    const wechat = new URL(attacker.headers.get('location')!.replace('#wechat_redirect', ''));
    const callbackUrl = await consent(wechat, 'o_csrf_attacker');
    const db = t.app.get(DataSource);
    const count = async () => Number((await db.query('SELECT COUNT(*) AS n FROM sessions'))[0].n) + Number((await db.query('SELECT COUNT(*) AS n FROM users'))[0].n);
    const before = await count();
    // ...then has the victim's browser open it: once without any login cookie, once with the victim's own.
    const victimStart = await fetch(`${t.baseUrl}/auth/wechat/authorize?redirect=/`, { redirect: 'manual' });
    for (const headers of [{}, { Cookie: loginCookie(victimStart) }] as Array<Record<string, string>>) {
      const res = await fetch(callbackUrl, { redirect: 'manual', headers });
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/text\/html/);
      expect(res.headers.get('set-cookie') ?? '').not.toMatch(/whp_session/);
      const page = await res.text();
      expect(page).toContain('请重新登录');
      expect(page).toContain('/auth/wechat/authorize');
    }
    expect(await count()).toBe(before);
    const users = await db.query('SELECT openid FROM users WHERE openid = ?', ['o_csrf_attacker']);
    expect(users).toHaveLength(0);
    // The state was not spent by the refusal: in the attacker's own browser it still completes.
    expect((await fetch(callbackUrl, { redirect: 'manual', headers: { Cookie: attackerJar } })).status).toBe(302);
  });

  it('sets the login cookie HttpOnly, SameSite=Lax, scoped to /auth/wechat for 10 minutes, and keeps a browser\'s value across logins (tabs)', async () => {
    const first = await fetch(`${t.baseUrl}/auth/wechat/authorize?redirect=/`, { redirect: 'manual' });
    expect(first.headers.get('set-cookie')).toMatch(/^whp_login=[0-9a-f]{32}; Max-Age=600; Path=\/auth\/wechat; Expires=[^;]+; HttpOnly; SameSite=Lax$/);
    const jarOne = loginCookie(first);
    const tabA = new URL((await fetch(`${t.baseUrl}/auth/wechat/authorize?redirect=/a`, { redirect: 'manual', headers: { Cookie: jarOne } })).headers.get('location')!.replace('#wechat_redirect', ''));
    const tabB = await fetch(`${t.baseUrl}/auth/wechat/authorize?redirect=/b`, { redirect: 'manual', headers: { Cookie: jarOne } });
    expect(loginCookie(tabB)).toBe(jarOne);
    // The older tab's login still completes after the newer one started.
    const back = await consent(tabA, 'o_two_tabs');
    const done = await fetch(back, { redirect: 'manual', headers: { Cookie: jarOne } });
    expect(done.status).toBe(302);
    expect(done.headers.get('location')).toBe('/a');
  });

  it('rejects a replayed state, a forged state, and a missing code', async () => {
    const wechat = await authorizeStep();
    const back = await consent(wechat, 'o_state');
    expect((await fetch(back, { redirect: 'manual', headers: { Cookie: jar } })).status).toBe(302);
    // replay: same state, and even a fresh code for it
    const replay = await consent(wechat, 'o_state');
    const replayed = await request(t.baseUrl).get(`/auth/wechat/callback${replay.search}`).set('Cookie', jar).expect(400);
    expect(replayed.body).toMatchObject({ code: 'INVALID_STATE', message: expect.stringContaining('already used') });

    const forged = new URL(back);
    forged.searchParams.set('state', 'a'.repeat(64));
    await request(t.baseUrl).get(`/auth/wechat/callback${forged.search}`).set('Cookie', jar).expect(400);

    const noCode = await authorizeStep();
    const missing = await request(t.baseUrl).get(`/auth/wechat/callback?state=${noCode.searchParams.get('state')}`).set('Cookie', jar).expect(400);
    expect(missing.body.code).toBe('MISSING_CODE');
    await request(t.baseUrl).get('/auth/wechat/callback?code=abc').set('Cookie', jar).expect(400);
  });

  it('answers 401 with the reason when WeChat rejects the code (40029 invalid, 40163 reused)', async () => {
    const wechat = await authorizeStep();
    const back = await consent(wechat, 'o_code');
    const invalid = new URL(back);
    invalid.searchParams.set('code', 'not-a-code');
    const res = await request(t.baseUrl).get(`/auth/wechat/callback${invalid.search}`).set('Cookie', jar).expect(401);
    expect(res.body).toMatchObject({ code: 'WECHAT_CODE_REJECTED', message: expect.stringContaining('40029') });

    // The code is spent by someone else first (e.g. a proxy prefetching the link): 40163.
    const second = await authorizeStep();
    const back2 = await consent(second, 'o_code');
    const code = back2.searchParams.get('code')!;
    const other = await authorizeStep();
    await request(t.baseUrl).get(`/auth/wechat/callback?code=${code}&state=${other.searchParams.get('state')}`).set('Cookie', jar).expect(302);
    const again = await request(t.baseUrl).get(`/auth/wechat/callback?code=${code}&state=${back2.searchParams.get('state')}`).set('Cookie', jar).expect(401);
    expect(again.body.message).toContain('already used');
  });

  it('never puts a token or secret into a response body or a log line', async () => {
    const wechat = await authorizeStep('redirect=/&scope=snsapi_userinfo');
    const back = await consent(wechat, 'o_secret_check');
    const callback = await fetch(back, { redirect: 'manual', headers: { Cookie: jar } });
    expect(callback.status).toBe(302);
    const answers = [`${JSON.stringify([...callback.headers])}${await callback.text()}`];
    const session = /whp_session=([^;]+)/.exec(callback.headers.get('set-cookie')!)![1];
    for (const path of ['/auth/me', '/auth/me?refresh=1']) {
      const me = await request(t.baseUrl).get(path).set('Cookie', `whp_session=${session}`).expect(200);
      expect(JSON.stringify(me.body)).not.toMatch(/token/i);
      answers.push(`${JSON.stringify(me.headers)}${me.text}`);
    }

    // The real OAuth tokens: what the sandbox issued to this user, and what we hold (decrypted from the DB).
    const issued = [...t.app.get(SandboxState).userTokens.values()].filter((token) => token.openid === 'o_secret_check');
    expect(issued).toHaveLength(1);
    const [row] = await t.app.get(DataSource).query('SELECT access_token_enc, refresh_token_enc FROM users WHERE openid = ?', ['o_secret_check']);
    const crypto = t.app.get(AuthService).crypto;
    expect(crypto.decrypt(row.access_token_enc)).toBe(issued[0].accessToken);
    expect(crypto.decrypt(row.refresh_token_enc)).toBe(issued[0].refreshToken);
    const keystore = await import('../../src/sandbox/keystore').then((m) => m.loadOrCreateSandboxKeystore(t.config.sandbox.dataDir));
    const secrets = {
      'OAuth access_token': issued[0].accessToken,
      'OAuth refresh_token': issued[0].refreshToken,
      appsecret: keystore.appsecret,
      'session token': decodeURIComponent(session),
    };
    // every OAuth token the sandbox issued during this suite, not only this user's
    const everyToken = [...t.app.get(SandboxState).userTokens.values()].flatMap((token) => [token.accessToken, token.refreshToken]);
    expect(everyToken).toEqual(expect.arrayContaining([secrets['OAuth access_token'], secrets['OAuth refresh_token']]));

    expect(t.rawLogs.length).toBeGreaterThan(0);
    for (const [what, secret] of Object.entries(secrets)) {
      for (const answer of answers.slice(1)) expect({ what, leaked: answer.includes(secret) }).toEqual({ what, leaked: false });
      if (what !== 'session token') expect({ what, leaked: answers[0].includes(secret) }).toEqual({ what, leaked: false });
      for (const line of t.rawLogs) expect({ what, leaked: line.includes(secret) }).toEqual({ what, leaked: false });
    }
    for (const secret of everyToken) for (const line of t.rawLogs) expect(line.includes(secret)).toBe(false);
    const logs = t.rawLogs.join('\n');
    expect((await sandbox.merchant()).appid).toBe(keystore.appid);
    expect(logs).toMatch(/sns\/oauth2\/access_token\?appid=[^&]+&secret=\[Redacted\]&code=\[Redacted\]/);
    expect(logs).toMatch(/sns\/userinfo\?access_token=\[Redacted\]/);
  });

  it('keeps the OAuth tokens encrypted at rest: v1 AES-GCM ciphertext, never the plaintext', async () => {
    await loginAs(t.baseUrl, 'o_at_rest', { scope: 'snsapi_userinfo' });
    const dataSource = t.app.get(DataSource);
    const [row] = await dataSource.query('SELECT * FROM users WHERE openid = ?', ['o_at_rest']);
    const [issued] = [...t.app.get(SandboxState).userTokens.values()].filter((token) => token.openid === 'o_at_rest');
    const stored = JSON.stringify(row);
    for (const [column, plaintext] of [
      ['access_token_enc', issued.accessToken],
      ['refresh_token_enc', issued.refreshToken],
    ] as const) {
      expect(row[column]).toMatch(/^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
      expect(stored).not.toContain(plaintext);
      expect(stored).not.toContain(Buffer.from(plaintext).toString('base64url'));
      expect(t.app.get(AuthService).crypto.decrypt(row[column])).toBe(plaintext);
    }
    // The entity never selects them by default, so they cannot leak through a casual find.
    expect(await t.app.get(AuthService).findUserByOpenid('o_at_rest')).not.toHaveProperty('accessTokenEnc');
  });
});

describe('OAuth state lifetime', () => {
  it('rejects a state older than 10 minutes', async () => {
    const clock = new FixedClock(new Date());
    const t = await startTestApp({ override: (b) => b.overrideProvider(Clock).useValue(clock) });
    try {
      const start = await fetch(`${t.baseUrl}/auth/wechat/authorize?redirect=/`, { redirect: 'manual' });
      const wechat = new URL(start.headers.get('location')!.replace('#wechat_redirect', ''));
      wechat.searchParams.set('sandbox_openid', 'o_slow');
      const back = await fetch(wechat, { redirect: 'manual' });
      clock.advance(10 * 60_000 + 1000);
      const res = await request(t.baseUrl)
        .get(new URL(back.headers.get('location')!).pathname + new URL(back.headers.get('location')!).search)
        .set('Cookie', loginCookie(start))
        .expect(400);
      expect(res.body).toMatchObject({ code: 'INVALID_STATE', message: expect.stringContaining('expired') });
    } finally {
      await t.close();
    }
  });
});
