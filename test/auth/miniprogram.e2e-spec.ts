// Mini-program login (issue 13): POST /auth/miniprogram/login { code } → sns/jscode2session → a
// bearer session for the mini-program openid; WeChat's session_key never leaves the server; one
// shopper known through the official account and the mini-program is one user when the unionid matches.
import request from 'supertest';
import { DataSource } from 'typeorm';
import { SandboxMpService } from '../../src/sandbox/sandbox-mp.service';
import { liveEnv, removeLiveEnvKeys } from '../helpers/live-env';
import { loginAs } from '../helpers/login';
import { Shop } from '../helpers/shop';
import { startTestApp } from '../helpers/test-app';

describe('mini-program login', () => {
  let shop: Shop;
  let productId: number;
  /** Every session_key the sandbox handed to the app (read off the sandbox, which plays WeChat). */
  const sessionKeys: string[] = [];

  beforeAll(async () => {
    shop = await Shop.start({ captureLogs: true });
    productId = (await shop.product('Mini tea', 800)).id;
    const mp = shop.t.app.get(SandboxMpService);
    const original = mp.jscode2session.bind(mp);
    mp.jscode2session = (query) => {
      const answer = original(query);
      sessionKeys.push(answer.session_key);
      return answer;
    };
  });
  afterAll(() => shop?.close());

  const db = () => shop.t.app.get(DataSource);
  const count = async (table: string) => Number((await db().query(`SELECT COUNT(*) AS n FROM ${table}`))[0].n);
  const login = (code: unknown) => shop.http().post('/auth/miniprogram/login').send(code === undefined ? {} : { code });

  it('exchanges a wx.login code for a bearer session of the mini-program openid: 200 { token } and nothing else', async () => {
    const { code } = await shop.sandbox.miniprogramCode({ openid: 'o_mp_login_ok' });
    const res = await login(code).expect(200);
    expect(Object.keys(res.body)).toEqual(['token']);
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(res.headers['cache-control']).toBe('no-store');
    const me = await shop.http().get('/auth/me').set('Authorization', `Bearer ${res.body.token}`).expect(200);
    expect(me.body).toEqual({ kind: 'miniprogram', openid: 'o_mp_login_ok', nickname: null, avatarUrl: null, scope: 'miniprogram' });
    // The session is a shopper's like any other: it orders.
    await shop.http().post('/orders').set('Authorization', `Bearer ${res.body.token}`).send({ items: [{ productId, quantity: 1 }] }).expect(201);
    const [identity] = await db().query('SELECT appid, openid FROM user_identities WHERE openid = ?', ['o_mp_login_ok']);
    expect(identity.appid).toBe(await shop.sandbox.miniprogramAppid());
  });

  it('passes the mini-program Referer (https://servicewechat.com/…) that wx.request sends: no cross-site refusal', async () => {
    const { code } = await shop.sandbox.miniprogramCode({ openid: 'o_mp_referer' });
    const appid = await shop.sandbox.miniprogramAppid();
    await shop.http().post('/auth/miniprogram/login').set('Referer', `https://servicewechat.com/${appid}/0/page-frame.html`).send({ code }).expect(200);
  });

  it('an invalid code is 401 with errcode 40029 in the message, and creates no user or session', async () => {
    const users = await count('users');
    const sessions = await count('sessions');
    const res = await login('not-a-code-wechat-issued').expect(401);
    expect(res.body).toMatchObject({ code: 'WECHAT_CODE_REJECTED', details: { errcode: 40029 } });
    expect(res.body.message).toMatch(/40029/);
    expect(await count('users')).toBe(users);
    expect(await count('sessions')).toBe(sessions);
  });

  it('a used code (replayed login) is 401 with errcode 40163, and creates no second session', async () => {
    const { code } = await shop.sandbox.miniprogramCode({ openid: 'o_mp_replay' });
    await login(code).expect(200);
    const sessions = await count('sessions');
    const res = await login(code).expect(401);
    expect(res.body).toMatchObject({ code: 'WECHAT_CODE_REJECTED', details: { errcode: 40163 } });
    expect(res.body.message).toMatch(/40163/);
    expect(await count('sessions')).toBe(sessions);
  });

  it('a missing, empty or non-string code is 400 naming code, before anything reaches WeChat', async () => {
    const calls = await shop.sandbox.callsTo('sns/jscode2session');
    for (const body of [undefined, '', 42, { nested: true }]) {
      const res = await login(body).expect(400);
      expect(res.body.message).toMatch(/code/);
    }
    expect(await shop.sandbox.callsTo('sns/jscode2session')).toBe(calls);
  });

  it('WeChat failing (system error) is a 502 that says so, with no session created', async () => {
    const { code } = await shop.sandbox.miniprogramCode({ openid: 'o_mp_wechat_down' });
    await shop.sandbox.failNext('sns/jscode2session', '500');
    const sessions = await count('sessions');
    const res = await login(code).expect(502);
    expect(res.body.message).toMatch(/jscode2session/);
    expect(await count('sessions')).toBe(sessions);
  });

  it('never sends, stores or logs the session_key', async () => {
    const { code } = await shop.sandbox.miniprogramCode({ openid: 'o_mp_session_key' });
    const res = await login(code).expect(200);
    const key = sessionKeys[sessionKeys.length - 1];
    expect(key).toMatch(/^[A-Za-z0-9+/]{22}==$/);
    expect(JSON.stringify(res.body)).not.toContain(key);
    await shop.http().get('/auth/me').set('Authorization', `Bearer ${res.body.token}`).expect(200);
    // In no log line (the app's client logs the call to jscode2session, with js_code and secret redacted)
    expect(shop.t.rawLogs.some((line) => line.includes('jscode2session'))).toBe(true);
    for (const k of sessionKeys) expect(shop.t.rawLogs.filter((line) => line.includes(k))).toEqual([]);
    expect(shop.t.rawLogs.filter((line) => line.includes(code))).toEqual([]);
    // Nor at rest: no table holds it.
    for (const table of ['users', 'sessions', 'user_identities']) {
      const dump = JSON.stringify(await db().query(`SELECT * FROM ${table}`));
      for (const k of sessionKeys) expect(dump).not.toContain(k);
    }
  });

  it('links an official-account shopper and the mini-program by unionid: the same user, the same orders', async () => {
    const web = await loginAs(shop.baseUrl, 'o_union_web');
    const webOrder = await shop.http().post('/orders').set(web.headers).send({ items: [{ productId, quantity: 2 }] }).expect(201);
    const { code, unionid } = await shop.sandbox.miniprogramCode({ openid: 'o_union_mini', officialAccountOpenid: 'o_union_web' });
    expect(unionid).toEqual(expect.any(String));
    const users = await count('users');
    const mini = (await login(code).expect(200)).body.token as string;
    expect(await count('users')).toBe(users);
    const list = await shop.http().get('/orders').set('Authorization', `Bearer ${mini}`).expect(200);
    expect(list.body.items.map((o: { outTradeNo: string }) => o.outTradeNo)).toContain(webOrder.body.outTradeNo);
    // The session still speaks for the mini-program: its openid, not the official account's.
    expect((await shop.http().get('/auth/me').set('Authorization', `Bearer ${mini}`).expect(200)).body.openid).toBe('o_union_mini');
    const identities = await db().query('SELECT user_id, openid, unionid FROM user_identities WHERE unionid = ? ORDER BY id', [unionid]);
    expect(identities.map((i: { openid: string }) => i.openid)).toEqual(['o_union_web', 'o_union_mini']);
    expect(new Set(identities.map((i: { user_id: unknown }) => String(i.user_id))).size).toBe(1);
  });

  it('links the other way round: known first through the mini-program, then the official-account login is the same user', async () => {
    await shop.sandbox.createUser({ openid: 'o_union_web_later' });
    const { code } = await shop.sandbox.miniprogramCode({ openid: 'o_union_mini_first', officialAccountOpenid: 'o_union_web_later' });
    const mini = (await login(code).expect(200)).body.token as string;
    const miniOrder = await shop.http().post('/orders').set('Authorization', `Bearer ${mini}`).send({ items: [{ productId, quantity: 1 }] }).expect(201);
    const users = await count('users');
    const web = await loginAs(shop.baseUrl, 'o_union_web_later');
    expect(await count('users')).toBe(users);
    const list = await shop.http().get('/orders').set(web.headers).expect(200);
    expect(list.body.items.map((o: { outTradeNo: string }) => o.outTradeNo)).toContain(miniOrder.body.outTradeNo);
    expect((await shop.http().get('/auth/me').set(web.headers).expect(200)).body).toMatchObject({ kind: 'wechat', openid: 'o_union_web_later' });
  });

  it('does not link without a matching unionid: a mini-program user without one is a shopper of their own', async () => {
    const web = await loginAs(shop.baseUrl, 'o_nolink_web');
    await shop.http().post('/orders').set(web.headers).send({ items: [{ productId, quantity: 1 }] }).expect(201);
    const { code, unionid } = await shop.sandbox.miniprogramCode({ openid: 'o_nolink_mini' });
    expect(unionid).toBeNull();
    const mini = (await login(code).expect(200)).body.token as string;
    expect((await shop.http().get('/orders').set('Authorization', `Bearer ${mini}`).expect(200)).body.total).toBe(0);
  });
});

describe('mini-program login when no mini-program is configured (live mode)', () => {
  afterAll(removeLiveEnvKeys);

  it('answers 400 CHANNEL_UNAVAILABLE naming the two variables, writes nothing and calls nobody', async () => {
    const t = await startTestApp({ env: liveEnv() });
    try {
      const db = t.app.get(DataSource);
      const before = Number((await db.query('SELECT COUNT(*) AS n FROM sessions'))[0].n);
      const res = await request(t.baseUrl).post('/auth/miniprogram/login').send({ code: 'a-real-looking-code' }).expect(400);
      expect(res.body.code).toBe('CHANNEL_UNAVAILABLE');
      expect(res.body.message).toMatch(/WECHAT_MINIPROGRAM_APPID/);
      expect(res.body.message).toMatch(/WECHAT_MINIPROGRAM_APPSECRET/);
      expect(Number((await db.query('SELECT COUNT(*) AS n FROM sessions'))[0].n)).toBe(before);
      expect(Number((await db.query('SELECT COUNT(*) AS n FROM users'))[0].n)).toBe(0);
    } finally {
      await t.close();
    }
  });
});
