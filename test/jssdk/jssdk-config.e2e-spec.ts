import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { Clock, FixedClock } from '../../src/common/clock';
import { WechatTokenService } from '../../src/jssdk/wechat-token.service';
import { SandboxState } from '../../src/sandbox/sandbox.state';
import { WechatMpClient } from '../../src/wechat/mp/wechat-mp.client';
import { SandboxControl } from '../helpers/sandbox-control';
import { TestApp, createTestDatabase, startTestApp, tempDir } from '../helpers/test-app';

describe('GET /jssdk/config', () => {
  let t: TestApp;
  let clock: FixedClock;
  let sandbox: SandboxControl;

  beforeAll(async () => {
    clock = new FixedClock(new Date());
    t = await startTestApp({ captureLogs: true, env: { JSSDK_ALLOWED_DOMAINS: 'shop.example.com' }, override: (b) => b.overrideProvider(Clock).useValue(clock) });
    sandbox = new SandboxControl(t.baseUrl);
  });
  afterAll(() => t?.close());

  it('200 concurrent calls on a cold cache cost exactly one token and one ticket fetch', async () => {
    await sandbox.resetCalls();
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => request(t.baseUrl).get('/jssdk/config').query({ url: `${t.baseUrl}/shop/index.html?i=${i}` })),
    );
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(await sandbox.calls()).toEqual({ 'cgi-bin/stable_token': 1, 'cgi-bin/ticket/getticket': 1 });
  });

  it('signs the page URL without its fragment, as the sandbox JS-SDK verifies it', async () => {
    const page = `${t.baseUrl}/shop/index.html?from=menu&x=1`;
    const res = await request(t.baseUrl).get('/jssdk/config').query({ url: `${page}#/cart` }).expect(200);
    expect(res.body).toEqual({
      appId: (await sandbox.merchant()).appid,
      timestamp: clock.nowSeconds(),
      nonceStr: expect.stringMatching(/^[0-9a-f]{16}$/),
      signature: expect.stringMatching(/^[0-9a-f]{40}$/),
      jsApiList: ['chooseWXPay'],
    });
    const check = await fetch(`${t.baseUrl}/sandbox/jsbridge/config`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ ...res.body, url: `${page}#/somewhere-else` }),
    }).then((r) => r.json());
    expect(check).toEqual({ ok: true, errMsg: 'config:ok' });
  });

  it.each([
    [{}, 'url is required'],
    [{ url: '' }, 'url is required'],
    [{ url: 'not a url' }, 'absolute URL'],
    [{ url: 'ftp://shop.example.com/x' }, 'http(s)'],
    [{ url: 'https://evil.example.com/x' }, 'JSSDK_ALLOWED_DOMAINS'],
    [{ url: 'https://shop.example.com/x', extra: '1' }, 'property extra should not exist'],
  ])('answers 400 for %j', async (query, message) => {
    const res = await request(t.baseUrl).get('/jssdk/config').query(query).expect(400);
    expect(res.body.message).toContain(message);
  });

  it('allows the configured domains as well as the app itself in sandbox mode', async () => {
    await request(t.baseUrl).get('/jssdk/config').query({ url: 'https://shop.example.com/a?b=1' }).expect(200);
  });

  it('refreshes the ticket (and token) ahead of expiry', async () => {
    const before = await t.app.get(WechatTokenService).getAccessToken();
    await sandbox.resetCalls();
    // Both sides' time moves: inside our 5-minute refresh window, and 4 minutes before WeChat expires them.
    clock.advance(7200_000 - 4 * 60_000);
    await sandbox.shiftClock(7200_000 - 4 * 60_000);
    await request(t.baseUrl).get('/jssdk/config').query({ url: `${t.baseUrl}/` }).expect(200);
    // stable_token hands back the old token with 4 minutes left, so a second, forced call gets a new one
    expect(await sandbox.calls()).toEqual({ 'cgi-bin/stable_token': 2, 'cgi-bin/ticket/getticket': 1 });
    expect(await t.app.get(WechatTokenService).getAccessToken()).not.toBe(before);
    // WeChat's ticket itself has 4 minutes left: it serves for half of that, not one fetch per request
    await sandbox.resetCalls();
    await request(t.baseUrl).get('/jssdk/config').query({ url: `${t.baseUrl}/` }).expect(200);
    clock.advance(60_000);
    await sandbox.shiftClock(60_000);
    await request(t.baseUrl).get('/jssdk/config').query({ url: `${t.baseUrl}/` }).expect(200);
    expect(await sandbox.calls()).toEqual({});
    clock.advance(61_000);
    await sandbox.shiftClock(61_000);
    await request(t.baseUrl).get('/jssdk/config').query({ url: `${t.baseUrl}/` }).expect(200);
    expect(await sandbox.calls()).toEqual({ 'cgi-bin/ticket/getticket': 1 });
  });

  it('recovers from 40001 by dropping the token and fetching once more', async () => {
    const fresh = await startTestApp();
    try {
      const control = new SandboxControl(fresh.baseUrl);
      await fresh.app.get(WechatTokenService).getAccessToken(); // token cached, no ticket yet
      await control.invalidateTokens();
      await control.resetCalls();
      const res = await request(fresh.baseUrl).get('/jssdk/config').query({ url: `${fresh.baseUrl}/` }).expect(200);
      expect(res.body.signature).toMatch(/^[0-9a-f]{40}$/);
      // ticket with the invalid token (40001), a new token (forced), the ticket again
      expect(await control.calls()).toEqual({ 'cgi-bin/ticket/getticket': 2, 'cgi-bin/stable_token': 1 });
    } finally {
      await fresh.close();
    }
  });

  it('a 40001 seen by two callers at once costs one forced token, and the next natural refresh does not force', async () => {
    const ownClock = new FixedClock(new Date());
    const fresh = await startTestApp({ override: (b) => b.overrideProvider(Clock).useValue(ownClock) });
    try {
      const control = new SandboxControl(fresh.baseUrl);
      const tokens = fresh.app.get(WechatTokenService);
      const mp = fresh.app.get(WechatMpClient);
      const refused = await tokens.getAccessToken();
      await control.invalidateTokens();
      await control.resetCalls();
      const [a, b] = await Promise.all([1, 2].map(() => tokens.withAccessToken((token) => mp.getJsapiTicket(token))));
      expect(a.ticket).toBe(b.ticket);
      // both callers refused (40001) and retried; one forced stable_token call served them both
      expect(await control.calls()).toEqual({ 'cgi-bin/ticket/getticket': 4, 'cgi-bin/stable_token': 1 });
      const replacement = await tokens.getAccessToken();
      expect(replacement).not.toBe(refused);

      // Our copy enters its refresh window while WeChat's token still has most of its life: stable_token
      // with force_refresh:false hands back that same token; a forced call would have made WeChat issue
      // (and every other holder lose) a new one.
      ownClock.advance(7200_000 - 4 * 60_000);
      await control.resetCalls();
      expect(await tokens.getAccessToken()).toBe(replacement);
      expect(await control.calls()).toEqual({ 'cgi-bin/stable_token': 1 });
      await mp.getJsapiTicket(replacement); // and it still works
    } finally {
      await fresh.close();
    }
  });

  it('keeps tokens and tickets out of logs and out of the /jssdk/config answer', async () => {
    const res = await request(t.baseUrl).get('/jssdk/config').query({ url: `${t.baseUrl}/shop/` }).expect(200);
    // The real values: every basic access_token this sandbox ever issued, and the ticket, as WeChat
    // and as our cache hold them.
    const state = t.app.get(SandboxState);
    const tokens = t.app.get(WechatTokenService);
    const secrets = new Set([...state.basicTokens.keys(), state.ticket!.ticket, await tokens.getAccessToken(), await tokens.getJsapiTicket()]);
    expect(secrets.size).toBeGreaterThanOrEqual(2); // a token and a ticket, at least (more when the tests before ran)
    const answer = JSON.stringify(res.body) + JSON.stringify(res.headers);
    expect(t.rawLogs.length).toBeGreaterThan(0);
    for (const secret of secrets) {
      expect(answer).not.toContain(secret);
      for (const line of t.rawLogs) expect(line).not.toContain(secret);
    }
    const logs = t.rawLogs.join('\n');
    expect(logs).toContain('cgi-bin/ticket/getticket?access_token=[Redacted]');
    expect(logs).not.toMatch(/access_token=(?!\[Redacted\])[A-Za-z0-9_-]{20,}/);
  });
});

const redisUrl = process.env.REDIS_URL;
(redisUrl ? describe : describe.skip)('two app instances sharing Redis', () => {
  it('fetch one token and one ticket between them', async () => {
    const dataDir = tempDir();
    const database = await createTestDatabase(dataDir);
    const prefix = `whp-jssdk-${randomBytes(4).toString('hex')}:`;
    const a = await startTestApp({ dataDir, database, env: { REDIS_URL: redisUrl!, REDIS_PREFIX: prefix } });
    // B is another instance of the same shop: same keystore (data dir), same WeChat (A's sandbox).
    const b = await startTestApp({
      dataDir,
      database,
      env: { REDIS_URL: redisUrl!, REDIS_PREFIX: prefix, WECHAT_API_BASE: `${a.baseUrl}/sandbox`, WECHATPAY_API_BASE: `${a.baseUrl}/sandbox`, JSSDK_ALLOWED_DOMAINS: '127.0.0.1' },
    });
    try {
      const sandbox = new SandboxControl(a.baseUrl);
      await sandbox.resetCalls();
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => request(i % 2 ? a.baseUrl : b.baseUrl).get('/jssdk/config').query({ url: `${a.baseUrl}/p?i=${i}` })),
      );
      expect(results.map((r) => r.status).every((s) => s === 200)).toBe(true);
      expect(await sandbox.calls()).toEqual({ 'cgi-bin/stable_token': 1, 'cgi-bin/ticket/getticket': 1 });
      expect(new Set(results.map((r) => r.body.appId)).size).toBe(1);
    } finally {
      await a.close();
      await b.close();
      await database.drop();
    }
  });
});
