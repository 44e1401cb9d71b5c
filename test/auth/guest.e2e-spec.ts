// Guest sessions (issue 13): shoppers outside WeChat have no OAuth, so POST /auth/guest gives them a
// session without an openid; they order (and pay by h5/native), and a WeChat login later in the same
// browser keeps what they ordered.
import { DataSource } from 'typeorm';
import { guestLogin, loginAs } from '../helpers/login';
import { Shop } from '../helpers/shop';

describe('guest sessions', () => {
  let shop: Shop;
  let productId: number;

  beforeAll(async () => {
    shop = await Shop.start({ captureLogs: true });
    productId = (await shop.product('Guest tea', 1200)).id;
  });
  afterAll(() => shop?.close());

  const count = async (sql: string, params: unknown[] = []) => Number((await shop.t.app.get(DataSource).query(sql, params))[0].n);

  it('POST /auth/guest answers 201 with an HttpOnly SameSite=Lax session cookie on / and a session without openid', async () => {
    const users = await count('SELECT COUNT(*) AS n FROM users');
    const guest = await guestLogin(shop.baseUrl);
    expect(guest.status).toBe(201);
    expect(guest.setCookie).toMatch(/whp_session=[^;]+;/);
    expect(guest.setCookie).toMatch(/HttpOnly/i);
    expect(guest.setCookie).toMatch(/SameSite=Lax/i);
    expect(guest.setCookie).toMatch(/Path=\//);
    expect(guest.setCookie).toMatch(/Max-Age=\d+/);
    const me = await shop.http().get('/auth/me').set('Cookie', guest.cookie).expect(200);
    expect(me.body).toEqual({ kind: 'guest', openid: null, nickname: null, avatarUrl: null, scope: 'guest' });
    expect(await count('SELECT COUNT(*) AS n FROM users')).toBe(users + 1);
    expect(await count('SELECT COUNT(*) AS n FROM users WHERE openid IS NULL AND scope = ?', ['guest'])).toBeGreaterThanOrEqual(1);
  });

  it('a browser that already holds a guest session keeps it (no second guest user)', async () => {
    const guest = await guestLogin(shop.baseUrl);
    const users = await count('SELECT COUNT(*) AS n FROM users');
    const again = await guestLogin(shop.baseUrl, guest.cookie);
    expect(again.token).toBe(guest.token);
    expect(await count('SELECT COUNT(*) AS n FROM users')).toBe(users);
  });

  it('a browser logged in with WeChat is not turned into a guest: 409 ALREADY_LOGGED_IN, its session still works', async () => {
    const wechat = await loginAs(shop.baseUrl, 'o_guest_already_in');
    const users = await count('SELECT COUNT(*) AS n FROM users');
    const res = await shop.http().post('/auth/guest').set('Cookie', wechat.cookie).expect(409);
    expect(res.body).toMatchObject({ code: 'ALREADY_LOGGED_IN', message: expect.stringContaining('/auth/logout') });
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(await count('SELECT COUNT(*) AS n FROM users')).toBe(users);
    await shop.http().get('/auth/me').set('Cookie', wechat.cookie).expect(200);
  });

  it('a guest creates an order (no openid on it) and reads it back; jsapi pay is refused with 400 saying to open the shop in WeChat', async () => {
    const guest = await guestLogin(shop.baseUrl);
    const created = await shop.http().post('/orders').set('Cookie', guest.cookie).send({ items: [{ productId, quantity: 2 }] }).expect(201);
    expect(created.body).toMatchObject({ status: 'NOTPAY', total: 2400 });
    const no = created.body.outTradeNo as string;
    await shop.http().get(`/orders/${no}`).set('Cookie', guest.cookie).expect(200);
    const admin = await shop.admin().get(`/admin/orders/${no}`).expect(200);
    expect(admin.body.openid).toBeNull();

    const events = await count('SELECT COUNT(*) AS n FROM order_events WHERE out_trade_no = ?', [no]);
    const pay = await shop.http().post(`/orders/${no}/pay`).set('Cookie', guest.cookie).send({ channel: 'jsapi' }).expect(400);
    expect(pay.body.message).toMatch(/WeChat/);
    // nothing written: no prepay, no new timeline entry
    expect(await count('SELECT COUNT(*) AS n FROM order_events WHERE out_trade_no = ?', [no])).toBe(events);
    expect((await shop.admin().get(`/admin/orders/${no}`).expect(200)).body.prepayId).toBeNull();
  });

  it("keeps a guest's orders when the same browser then logs in with WeChat; the guest session ends", async () => {
    const guest = await guestLogin(shop.baseUrl);
    const first = await shop.http().post('/orders').set('Cookie', guest.cookie).set('Idempotency-Key', 'merge-key-1').send({ items: [{ productId, quantity: 1 }] }).expect(201);
    const second = await shop.http().post('/orders').set('Cookie', guest.cookie).set('Idempotency-Key', 'merge-key-2').send({ items: [{ productId, quantity: 3 }] }).expect(201);
    // The WeChat account already used one of the guest's idempotency keys for an order of its own.
    const before = await loginAs(shop.baseUrl, 'o_guest_merge');
    const own = await shop.http().post('/orders').set(before.headers).set('Idempotency-Key', 'merge-key-1').send({ items: [{ productId, quantity: 5 }] }).expect(201);

    const wechat = await loginAs(shop.baseUrl, 'o_guest_merge', { cookie: guest.cookie });
    const list = await shop.http().get('/orders').set('Cookie', wechat.cookie).expect(200);
    const numbers = list.body.items.map((o: { outTradeNo: string }) => o.outTradeNo);
    expect(numbers).toEqual(expect.arrayContaining([first.body.outTradeNo, second.body.outTradeNo, own.body.outTradeNo]));
    expect(list.body.total).toBe(3);
    await shop.http().get(`/orders/${first.body.outTradeNo}`).set('Cookie', wechat.cookie).expect(200);

    // The guest session no longer works; the guest owns nothing any more.
    await shop.http().get('/auth/me').set('Cookie', guest.cookie).expect(401);
    const shopperId = Number((await shop.admin().get(`/admin/orders/${own.body.outTradeNo}`).expect(200)).body.userId);
    expect(Number((await shop.admin().get(`/admin/orders/${first.body.outTradeNo}`).expect(200)).body.userId)).toBe(shopperId);
    // The replay of the shopper's own key still answers the shopper's own order.
    const replay = await shop.http().post('/orders').set('Cookie', wechat.cookie).set('Idempotency-Key', 'merge-key-1').send({ items: [{ productId, quantity: 5 }] }).expect(200);
    expect(replay.body.outTradeNo).toBe(own.body.outTradeNo);
  });

  it('a WeChat login without a guest cookie moves nobody\'s orders', async () => {
    const guest = await guestLogin(shop.baseUrl);
    const order = await shop.http().post('/orders').set('Cookie', guest.cookie).send({ items: [{ productId, quantity: 1 }] }).expect(201);
    const wechat = await loginAs(shop.baseUrl, 'o_guest_other_browser');
    expect((await shop.http().get('/orders').set('Cookie', wechat.cookie).expect(200)).body.total).toBe(0);
    await shop.http().get(`/orders/${order.body.outTradeNo}`).set('Cookie', guest.cookie).expect(200);
  });
});

describe('guest sessions are rate-limited per address like /auth/wechat/authorize', () => {
  let shop: Shop;
  beforeAll(async () => {
    shop = await Shop.start({ env: { AUTH_AUTHORIZE_RATE_LIMIT: '2' } });
  });
  afterAll(() => shop?.close());

  it('a client creating guest sessions in a loop gets 429 with Retry-After, and no user row for it', async () => {
    await shop.http().post('/auth/guest').expect(201);
    await shop.http().post('/auth/guest').expect(201);
    const users = Number((await shop.t.app.get(DataSource).query('SELECT COUNT(*) AS n FROM users'))[0].n);
    const res = await shop.http().post('/auth/guest').expect(429);
    expect(res.body.code).toBe('RATE_LIMITED');
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number((await shop.t.app.get(DataSource).query('SELECT COUNT(*) AS n FROM users'))[0].n)).toBe(users);
  });
});
