import { DataSource } from 'typeorm';
import { Login } from '../helpers/login';
import { Shop } from '../helpers/shop';

/** Issue 11 item 6: SameSite=Lax was the only defence of the shopper's state-changing routes. */
describe('cross-site requests on state-changing shopper routes', () => {
  let shop: Shop;
  let login: Login;
  let productId: number;

  beforeAll(async () => {
    shop = await Shop.start();
    login = await shop.login('o_cross_site');
    productId = (await shop.product('CSRF tea', 100, 10)).id;
  });
  afterAll(() => shop?.close());

  const orderStatus = async (no: string) => (await shop.t.app.get(DataSource).query('SELECT status FROM orders WHERE out_trade_no = ?', [no]))[0].status;

  it('a cross-site form POST carrying the session cookie cannot cancel an order (403, order unchanged)', async () => {
    const no = await shop.placeOrder(login, [{ productId, quantity: 1 }]);
    const res = await shop
      .http()
      .post(`/orders/${no}/cancel`)
      .set('Cookie', login.cookie)
      .set('Origin', 'https://evil.example')
      .set('Content-Type', 'application/x-www-form-urlencoded')
      .send('x=1');
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ code: 'CROSS_SITE_REQUEST', message: expect.stringContaining('https://evil.example') });
    expect(await orderStatus(no)).toBe('NOTPAY');
  });

  it('a cross-site request with only a foreign Referer (Origin stripped) or Origin "null" (sandboxed frame) is refused too', async () => {
    const no = await shop.placeOrder(login, [{ productId, quantity: 1 }]);
    const referer = await shop.http().post(`/orders/${no}/cancel`).set('Cookie', login.cookie).set('Referer', 'https://evil.example/page');
    expect(referer.status).toBe(403);
    expect(referer.body.message).toContain('Referer');
    const nullOrigin = await shop.http().post(`/orders/${no}/cancel`).set('Cookie', login.cookie).set('Origin', 'null');
    expect(nullOrigin.status).toBe(403);
    const order = await shop.http().post('/orders').set('Cookie', login.cookie).set('Origin', 'https://evil.example').send({ items: [{ productId, quantity: 1 }] });
    expect(order.status).toBe(403);
    expect(await orderStatus(no)).toBe('NOTPAY');
  });

  it('our own pages (same Origin), non-browser clients (no Origin) and Bearer-authenticated clients still work', async () => {
    const no = await shop.placeOrder(login, [{ productId, quantity: 1 }]);
    await shop.http().post(`/orders/${no}/cancel`).set('Cookie', login.cookie).set('Origin', shop.baseUrl).expect(200);
    const second = await shop.http().post('/orders').set('Cookie', login.cookie).set('Referer', `${shop.baseUrl}/orders`).send({ items: [{ productId, quantity: 1 }] });
    expect(second.status).toBe(201);
    const third = await shop.http().post('/orders').set(login.headers).set('Origin', 'https://partner.example').send({ items: [{ productId, quantity: 1 }] });
    expect(third.status).toBe(201);
  });

  it('a non-JSON body on a JSON route is 415 naming the content type, and writes nothing', async () => {
    const count = async () => Number((await shop.t.app.get(DataSource).query('SELECT COUNT(*) AS n FROM orders'))[0].n);
    const before = await count();
    for (const [type, body] of [
      ['text/plain', '{"items":[{"productId":1,"quantity":1}]}'],
      ['application/x-www-form-urlencoded', 'items=1'],
      ['multipart/form-data; boundary=x', '--x\r\n\r\n--x--'],
    ]) {
      const res = await shop.http().post('/orders').set(login.headers).set('Content-Type', type).send(body);
      expect(res.status).toBe(415);
      expect(res.body).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE', message: expect.stringContaining(type.split(';')[0]) });
    }
    const admin = await shop.admin().post('/admin/products').set('Content-Type', 'text/plain').send('{"name":"x","price":1}');
    expect(admin.status).toBe(415);
    expect(await count()).toBe(before);
  });

  it('WeChat notifications and the sandbox are not affected (they are not cookie-session routes)', async () => {
    const res = await shop.http().post('/notify/wechatpay/transaction').set('Origin', 'https://evil.example').set('Content-Type', 'text/plain').send('x');
    expect(res.status).toBe(401);
  });
});
