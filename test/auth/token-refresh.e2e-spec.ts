import request from 'supertest';
import { DataSource } from 'typeorm';
import { AuthService } from '../../src/auth/auth.service';
import { Clock, FixedClock } from '../../src/common/clock';
import { SandboxState } from '../../src/sandbox/sandbox.state';
import { loginAs } from '../helpers/login';
import { SandboxControl } from '../helpers/sandbox-control';
import { TestApp, startTestApp } from '../helpers/test-app';

describe('user token refresh', () => {
  let t: TestApp;
  let clock: FixedClock;
  let sandbox: SandboxControl;

  beforeAll(async () => {
    clock = new FixedClock(new Date());
    t = await startTestApp({ captureLogs: true, env: { SESSION_TTL: '60d' }, override: (b) => b.overrideProvider(Clock).useValue(clock) });
    sandbox = new SandboxControl(t.baseUrl);
  });
  afterAll(() => t?.close());

  it('refreshes an expired user access_token with the refresh_token before reading the profile', async () => {
    const login = await loginAs(t.baseUrl, 'o_refresh', { scope: 'snsapi_userinfo', nickname: '旧昵称' });
    await sandbox.createUser({ openid: 'o_refresh', nickname: '新昵称' });
    clock.advance(2 * 3600_000 + 1000);
    await sandbox.resetCalls();
    const me = await request(t.baseUrl).get('/auth/me?refresh=1').set(login.headers).expect(200);
    expect(me.body.nickname).toBe('新昵称');
    expect(await sandbox.calls()).toMatchObject({ 'sns/oauth2/refresh_token': 1, 'sns/userinfo': 1 });

    // The refresh_token travels in a query string and the new access_token comes back: neither is logged,
    // and what we keep is the new token, encrypted.
    const issued = [...t.app.get(SandboxState).userTokens.values()].filter((token) => token.openid === 'o_refresh');
    expect(issued).toHaveLength(2);
    const [row] = await t.app.get(DataSource).query('SELECT access_token_enc, refresh_token_enc FROM users WHERE openid = ?', ['o_refresh']);
    expect(t.app.get(AuthService).crypto.decrypt(row.access_token_enc)).toBe(issued[1].accessToken);
    for (const secret of issued.flatMap((token) => [token.accessToken, token.refreshToken])) {
      expect(JSON.stringify(me.headers) + me.text).not.toContain(secret);
      expect(`${row.access_token_enc}${row.refresh_token_enc}`).not.toContain(secret);
      for (const line of t.rawLogs) expect(line.includes(secret)).toBe(false);
    }
    expect(t.rawLogs.join('\n')).toMatch(/sns\/oauth2\/refresh_token\?appid=[^&]+&grant_type=refresh_token&refresh_token=\[Redacted\]/);
  });

  it('answers 401 REAUTH_REQUIRED (never 500) when the refresh token is gone or refused', async () => {
    const login = await loginAs(t.baseUrl, 'o_reauth', { scope: 'snsapi_userinfo' });
    clock.advance(31 * 24 * 3600_000);
    const expired = await request(t.baseUrl).get('/auth/me?refresh=1').set(login.headers).expect(401);
    expect(expired.body).toMatchObject({ code: 'REAUTH_REQUIRED', message: expect.stringContaining('30 days') });
    // the session still works for everything else
    await request(t.baseUrl).get('/auth/me').set(login.headers).expect(200);
    const again = await loginAs(t.baseUrl, 'o_reauth2', { scope: 'snsapi_userinfo' });
    clock.advance(2 * 3600_000 + 1000);
    await sandbox.reset();
    const refused = await request(t.baseUrl).get('/auth/me?refresh=1').set(again.headers).expect(401);
    expect(refused.body).toMatchObject({
      code: 'REAUTH_REQUIRED',
      details: { reauth: expect.stringContaining('/auth/wechat/authorize?scope=snsapi_userinfo') },
    });
    expect(refused.body.message).toContain('40030');
  });

  it('answers 401 REAUTH_REQUIRED for a silent (snsapi_base) login asking for its profile', async () => {
    const login = await loginAs(t.baseUrl, 'o_base_only');
    const res = await request(t.baseUrl).get('/auth/me?refresh=1').set(login.headers).expect(401);
    expect(res.body.code).toBe('REAUTH_REQUIRED');
  });
});
