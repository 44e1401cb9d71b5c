import request from 'supertest';
import { loginCookie } from '../helpers/login';
import { Shop } from '../helpers/shop';

/** Issue 12 items 15 and 16, server side: the decline page and why a closed order was closed. */
describe('what a shopper is told', () => {
  let shop: Shop;
  beforeAll(async () => {
    shop = await Shop.start({ schedules: true, env: { ORDER_CLOSE_AFTER: '2s', PAYMENT_CLOSE_INTERVAL: '1s' } });
  });
  afterAll(() => shop?.close());

  async function declinedCallback(accept?: string) {
    const start = await fetch(`${shop.baseUrl}/auth/wechat/authorize?scope=snsapi_userinfo&redirect=%2F%23%2Forders`, { redirect: 'manual' });
    const cookie = loginCookie(start);
    const wechat = new URL(start.headers.get('location')!.replace('#wechat_redirect', ''));
    // The sandbox's 拒绝 button: back to the site with the state only.
    const form = new URLSearchParams({ ...Object.fromEntries(wechat.searchParams), action: 'deny' });
    const deny = await fetch(`${shop.baseUrl}${wechat.pathname}`, { method: 'POST', body: form, redirect: 'manual', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    expect(deny.status).toBe(302);
    const back = new URL(deny.headers.get('location')!);
    expect(back.searchParams.get('code')).toBeNull();
    const req = request(shop.baseUrl).get(`${back.pathname}${back.search}`).set('Cookie', cookie);
    return accept ? req.set('Accept', accept) : req;
  }

  it('declining WeChat consent in a browser ends on a Chinese page with a way back, not a raw English JSON 400', async () => {
    const res = await declinedCallback('text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8');
    expect(res.status).toBe(400);
    expect(res.type).toBe('text/html');
    expect(res.text).toContain('你已拒绝微信授权');
    expect(res.text).not.toMatch(/MISSING_CODE|statusCode/);
    // Authorize again, with the scope and the page the login was going to.
    expect(res.text).toContain('href="/auth/wechat/authorize?scope=snsapi_userinfo&amp;redirect=%2F%23%2Forders"');
    // An API client still gets the machine-readable answer.
    const api = await declinedCallback();
    expect(api.status).toBe(400);
    expect(api.body.code).toBe('MISSING_CODE');
  });

  it('a login started on the other loopback name returns there (its cookies are there), and one started under a forged Host returns to PUBLIC_BASE_URL', async () => {
    const redirectUri = (location: string) => new URL(location.replace('#wechat_redirect', '')).searchParams.get('redirect_uri');
    const other = shop.baseUrl.replace('127.0.0.1', 'localhost');
    const fromOther = await request(shop.baseUrl).get('/auth/wechat/authorize?redirect=%2F').set('Host', new URL(other).host).expect(302);
    expect(redirectUri(fromOther.headers.location)).toBe(`${other}/auth/wechat/callback`);
    const forged = await request(shop.baseUrl).get('/auth/wechat/authorize?redirect=%2F').set('Host', 'evil.example').expect(302);
    expect(redirectUri(forged.headers.location)).toBe(`${shop.baseUrl}/auth/wechat/callback`);
    const otherPort = await request(shop.baseUrl).get('/auth/wechat/authorize?redirect=%2F').set('Host', 'localhost:1').expect(302);
    expect(redirectUri(otherPort.headers.location)).toBe(`${shop.baseUrl}/auth/wechat/callback`);
  });

  it('a cancelled order and one left to expire are told apart (closeReason) for the shopper and the operator', async () => {
    const product = await shop.product('关闭原因', 100);
    const buyer = await shop.login('o_close_reason');
    const cancelled = await shop.placeOrder(buyer, [{ productId: product.id, quantity: 1 }]);
    const expired = await shop.placeOrder(buyer, [{ productId: product.id, quantity: 1 }]);
    const open = (await shop.http().get(`/orders/${expired}`).set(buyer.headers).expect(200)).body;
    expect(open.closeReason).toBeNull();
    await shop.http().post(`/orders/${cancelled}/cancel`).set(buyer.headers).expect(200);
    await shop.waitForStatus(expired, 'CLOSED', 15_000);
    expect((await shop.http().get(`/orders/${cancelled}`).set(buyer.headers).expect(200)).body).toMatchObject({ status: 'CLOSED', closeReason: 'cancelled' });
    expect((await shop.http().get(`/orders/${expired}`).set(buyer.headers).expect(200)).body).toMatchObject({ status: 'CLOSED', closeReason: 'expired' });
    const list = (await shop.http().get('/orders').set(buyer.headers).expect(200)).body.items as Array<{ outTradeNo: string; closeReason: string | null; createdAt: string }>;
    expect(Object.fromEntries(list.map((o) => [o.outTradeNo, o.closeReason]))).toEqual({ [cancelled]: 'cancelled', [expired]: 'expired' });
    expect(list.every((o) => !Number.isNaN(Date.parse(o.createdAt)))).toBe(true);
    expect((await shop.admin().get(`/admin/orders/${expired}`).expect(200)).body.closeReason).toBe('expired');
  });
});
