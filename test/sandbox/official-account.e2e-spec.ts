import { SandboxTestApp, startSandboxApp } from './sandbox-app';

describe('sandbox official-account APIs', () => {
  let t: SandboxTestApp;
  let appid: string;
  let secret: string;
  const redirect = () => `${t.baseUrl}/auth/wechat/callback`;

  beforeAll(async () => {
    t = await startSandboxApp();
    appid = t.keystore.appid;
    secret = t.keystore.appsecret;
  });
  afterAll(() => t?.close());

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- WeChat answers of every shape
  const api = async (path: string, init?: RequestInit): Promise<any> => {
    const res = await fetch(`${t.baseUrl}/sandbox/${path}`, init);
    expect(res.status).toBe(200);
    return res.json();
  };

  async function authorize(openid: string, scope = 'snsapi_base', state = 'xyz'): Promise<URL> {
    const url =
      `${t.baseUrl}/sandbox/connect/oauth2/authorize?appid=${appid}&redirect_uri=${encodeURIComponent(redirect())}` +
      `&response_type=code&scope=${scope}&state=${state}&sandbox_openid=${openid}`;
    const res = await fetch(url, { redirect: 'manual' });
    expect(res.status).toBe(302);
    return new URL(res.headers.get('location')!);
  }

  it('consents as a given user and redirects back with code and state', async () => {
    const back = await authorize('o_user_base');
    expect(back.origin + back.pathname).toBe(redirect());
    expect(back.searchParams.get('state')).toBe('xyz');
    expect(back.searchParams.get('code')).toMatch(/^[0-9a-f]{32}$/);
  });

  it('shows a page to pick or create a user when no sandbox_openid is given', async () => {
    await authorize('o_listed_user');
    const res = await fetch(`${t.baseUrl}/sandbox/connect/oauth2/authorize?appid=${appid}&redirect_uri=${encodeURIComponent(redirect())}&response_type=code&scope=snsapi_userinfo&state=s`);
    const html = await res.text();
    expect(res.status).toBe(200);
    expect(html).toContain('o_listed_user');
    expect(html).toContain('创建并允许');
    const form = new URLSearchParams({ appid, redirect_uri: redirect(), response_type: 'code', scope: 'snsapi_userinfo', state: 's', action: 'allow', nickname: '新用户' });
    const created = await fetch(`${t.baseUrl}/sandbox/connect/oauth2/authorize`, { method: 'POST', body: form, redirect: 'manual' });
    expect(created.status).toBe(302);
    expect(new URL(created.headers.get('location')!).searchParams.get('code')).toBeTruthy();
    const denied = await fetch(`${t.baseUrl}/sandbox/connect/oauth2/authorize`, { method: 'POST', body: new URLSearchParams({ ...Object.fromEntries(form), action: 'deny' }), redirect: 'manual' });
    const deniedUrl = new URL(denied.headers.get('location')!);
    expect(deniedUrl.searchParams.get('code')).toBeNull();
    expect(deniedUrl.searchParams.get('state')).toBe('s');
  });

  it('rejects a redirect_uri outside the registered OAuth domain with 10003', async () => {
    const res = await fetch(`${t.baseUrl}/sandbox/connect/oauth2/authorize?appid=${appid}&redirect_uri=${encodeURIComponent('https://evil.example.com/cb')}&response_type=code&scope=snsapi_base&state=s&sandbox_openid=o1`, { redirect: 'manual' });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('errcode: 10003');
  });

  it('exchanges a code once (40163 after), rejects unknown codes (40029), a wrong secret (40125) and expired codes', async () => {
    const code = (await authorize('o_code_user')).searchParams.get('code')!;
    expect(await api(`sns/oauth2/access_token?appid=${appid}&secret=${'0'.repeat(32)}&code=${code}&grant_type=authorization_code`)).toMatchObject({ errcode: 40125 });
    const token = await api(`sns/oauth2/access_token?appid=${appid}&secret=${secret}&code=${code}&grant_type=authorization_code`);
    expect(token).toMatchObject({ openid: 'o_code_user', scope: 'snsapi_base', expires_in: 7200 });
    expect(token.access_token).toBeTruthy();
    expect(token.refresh_token).toBeTruthy();
    const again = await api(`sns/oauth2/access_token?appid=${appid}&secret=${secret}&code=${code}&grant_type=authorization_code`);
    expect(again).toMatchObject({ errcode: 40163 });
    expect(again.errmsg).toMatch(/^code been used rid: /);
    expect(await api(`sns/oauth2/access_token?appid=${appid}&secret=${secret}&code=nope&grant_type=authorization_code`)).toMatchObject({ errcode: 40029 });
    const late = (await authorize('o_code_user')).searchParams.get('code')!;
    await t.control.shiftClock(5 * 60_000 + 1000);
    try {
      expect(await api(`sns/oauth2/access_token?appid=${appid}&secret=${secret}&code=${late}&grant_type=authorization_code`)).toMatchObject({ errcode: 40029 });
    } finally {
      await t.control.resetClock();
    }
  });

  it('gives user info only to snsapi_userinfo tokens (48001 otherwise), and refreshes tokens', async () => {
    const baseCode = (await authorize('o_scope_user', 'snsapi_base')).searchParams.get('code')!;
    const base = await api(`sns/oauth2/access_token?appid=${appid}&secret=${secret}&code=${baseCode}&grant_type=authorization_code`);
    expect(await api(`sns/userinfo?access_token=${base.access_token}&openid=o_scope_user&lang=zh_CN`)).toMatchObject({ errcode: 48001 });
    const infoCode = (await authorize('o_scope_user', 'snsapi_userinfo')).searchParams.get('code')!;
    const info = await api(`sns/oauth2/access_token?appid=${appid}&secret=${secret}&code=${infoCode}&grant_type=authorization_code`);
    const user = await api(`sns/userinfo?access_token=${info.access_token}&openid=o_scope_user&lang=zh_CN`);
    expect(user).toMatchObject({ openid: 'o_scope_user', nickname: expect.any(String), headimgurl: expect.stringMatching(/^http:\/\/.+\/sandbox\/mmopen\/vi_32\/[0-9a-f]{32}\/132$/), privilege: [] });
    const refreshed = await api(`sns/oauth2/refresh_token?appid=${appid}&grant_type=refresh_token&refresh_token=${info.refresh_token}`);
    expect(refreshed.access_token).not.toBe(info.access_token);
    expect(refreshed.openid).toBe('o_scope_user');
    expect(await api(`sns/oauth2/refresh_token?appid=${appid}&grant_type=refresh_token&refresh_token=bogus`)).toMatchObject({ errcode: 40030 });
  });

  it('serves headimgurl as an http(s) PNG (not a data: URI), the same picture for the same user, at WeChat\'s sizes', async () => {
    const code = (await authorize('o_avatar_user', 'snsapi_userinfo')).searchParams.get('code')!;
    const token = await api(`sns/oauth2/access_token?appid=${appid}&secret=${secret}&code=${code}&grant_type=authorization_code`);
    const { headimgurl } = await api(`sns/userinfo?access_token=${token.access_token}&openid=o_avatar_user&lang=zh_CN`);
    expect(headimgurl.startsWith(`${t.baseUrl}/sandbox/mmopen/vi_32/`)).toBe(true);
    const png = await fetch(headimgurl);
    expect(png.status).toBe(200);
    expect(png.headers.get('content-type')).toBe('image/png');
    const bytes = Buffer.from(await png.arrayBuffer());
    expect(bytes.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    // IHDR: width and height 132
    expect([bytes.readUInt32BE(16), bytes.readUInt32BE(20)]).toEqual([132, 132]);
    expect(Buffer.from(await (await fetch(headimgurl)).arrayBuffer())).toEqual(bytes);
    const small = Buffer.from(await (await fetch(headimgurl.replace(/\/132$/, '/46'))).arrayBuffer());
    expect(small.readUInt32BE(16)).toBe(46);
    expect((await fetch(headimgurl.replace(/\/132$/, '/133'))).status).toBe(404);
    // The consent page shows the same picture.
    const pageHtml = await (await fetch(`${t.baseUrl}/sandbox/connect/oauth2/authorize?appid=${appid}&redirect_uri=${encodeURIComponent(redirect())}&response_type=code&scope=snsapi_base&state=s`)).text();
    expect(pageHtml).toContain(`src="${headimgurl}"`);
  });

  it('checks a web-authorization token with sns/auth: 0 ok, 40001 for an unknown token, 40003 for another openid, 42001 once expired', async () => {
    const code = (await authorize('o_auth_check')).searchParams.get('code')!;
    const token = await api(`sns/oauth2/access_token?appid=${appid}&secret=${secret}&code=${code}&grant_type=authorization_code`);
    expect(await api(`sns/auth?access_token=${token.access_token}&openid=o_auth_check`)).toEqual({ errcode: 0, errmsg: 'ok' });
    expect(await api(`sns/auth?access_token=bogus&openid=o_auth_check`)).toMatchObject({ errcode: 40001 });
    expect(await api(`sns/auth?openid=o_auth_check`)).toMatchObject({ errcode: 40001 });
    expect(await api(`sns/auth?access_token=${token.access_token}&openid=o_someone_else`)).toMatchObject({ errcode: 40003 });
    await t.control.shiftClock(7201_000);
    try {
      expect(await api(`sns/auth?access_token=${token.access_token}&openid=o_auth_check`)).toMatchObject({ errcode: 42001 });
    } finally {
      await t.control.resetClock();
    }
  });

  it('issues basic tokens (token, stable_token) and a jsapi ticket; 42001 when expired, 40001 when invalid; counts calls', async () => {
    await t.control.resetCalls();
    const token = await api(`cgi-bin/token?grant_type=client_credential&appid=${appid}&secret=${secret}`);
    expect(token).toEqual({ access_token: expect.any(String), expires_in: 7200 });
    const stableBody = { grant_type: 'client_credential', appid, secret, force_refresh: false };
    const post = (body: object) => api('cgi-bin/stable_token', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    const s1 = await post(stableBody);
    const s2 = await post(stableBody);
    expect(s2.access_token).toBe(s1.access_token);
    const s3 = await post({ ...stableBody, force_refresh: true });
    expect(s3.access_token).not.toBe(s1.access_token);
    expect(await post({ ...stableBody, secret: 'x' })).toMatchObject({ errcode: 40125 });

    const ticket = await api(`cgi-bin/ticket/getticket?access_token=${s3.access_token}&type=jsapi`);
    expect(ticket).toMatchObject({ errcode: 0, errmsg: 'ok', expires_in: 7200, ticket: expect.any(String) });
    expect(await api(`cgi-bin/ticket/getticket?access_token=bogus&type=jsapi`)).toMatchObject({ errcode: 40001 });
    await t.control.shiftClock(7201_000);
    try {
      expect(await api(`cgi-bin/ticket/getticket?access_token=${s3.access_token}&type=jsapi`)).toMatchObject({ errcode: 42001 });
    } finally {
      await t.control.resetClock();
    }
    await t.control.invalidateTokens();
    expect(await api(`cgi-bin/ticket/getticket?access_token=${s3.access_token}&type=jsapi`)).toMatchObject({ errcode: 40001 });
    expect(await t.control.calls()).toMatchObject({ 'cgi-bin/token': 1, 'cgi-bin/stable_token': 4, 'cgi-bin/ticket/getticket': 4 });
  });

  it('answers 40001 (not latest), not 42001, for a token replaced by a newer one once its grace period is over', async () => {
    const first = await api(`cgi-bin/token?grant_type=client_credential&appid=${appid}&secret=${secret}`);
    const second = await api(`cgi-bin/token?grant_type=client_credential&appid=${appid}&secret=${secret}`);
    const ticketWith = (token: string) => api(`cgi-bin/ticket/getticket?access_token=${token}&type=jsapi`);
    expect(await ticketWith(first.access_token)).toMatchObject({ errcode: 0 }); // still within the 5-minute grace
    await t.control.shiftClock(5 * 60_000 + 1000);
    try {
      const replaced = await ticketWith(first.access_token);
      expect(replaced).toMatchObject({ errcode: 40001 });
      expect(replaced.errmsg).toMatch(/^invalid credential, access_token is invalid or not latest rid: /);
      expect(await ticketWith(second.access_token)).toMatchObject({ errcode: 0 });
    } finally {
      await t.control.resetClock();
    }
    await t.control.shiftClock(7201_000);
    try {
      expect(await ticketWith(second.access_token)).toMatchObject({ errcode: 42001 });
    } finally {
      await t.control.resetClock();
    }
  });

  it('fails official-account calls on request: -1 system error (500), 45009 quota (429), or no answer (timeout)', async () => {
    const url = `cgi-bin/token?grant_type=client_credential&appid=${appid}&secret=${secret}`;
    await t.control.resetCalls();
    await t.control.failNext('cgi-bin/token', '500');
    await t.control.failNext('cgi-bin/token', '429');
    await t.control.failNext('cgi-bin/token', 'timeout');
    expect(await api(url)).toEqual({ errcode: -1, errmsg: 'system error' });
    expect(await api(url)).toEqual({ errcode: 45009, errmsg: 'reach max api daily quota limit' });
    await expect(fetch(`${t.baseUrl}/sandbox/${url}`, { signal: AbortSignal.timeout(300) })).rejects.toThrow();
    expect(await api(url)).toMatchObject({ access_token: expect.any(String), expires_in: 7200 });

    await t.control.failNext('cgi-bin/stable_token', '429', 2);
    const stable = () =>
      api('cgi-bin/stable_token', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ grant_type: 'client_credential', appid, secret }) });
    expect(await stable()).toMatchObject({ errcode: 45009 });
    expect(await stable()).toMatchObject({ errcode: 45009 });
    expect(await stable()).toMatchObject({ access_token: expect.any(String) });
    await t.control.failNext('sns/oauth2/access_token', '500');
    expect(await api(`sns/oauth2/access_token?appid=${appid}&secret=${secret}&code=x&grant_type=authorization_code`)).toMatchObject({ errcode: -1 });
    expect(await t.control.calls()).toMatchObject({ 'cgi-bin/token': 4, 'cgi-bin/stable_token': 3, 'sns/oauth2/access_token': 1 });
  });
});
