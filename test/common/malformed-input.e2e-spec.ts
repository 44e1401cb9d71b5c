// Malformed query strings and absurd numbers are the client's mistake: a 400 that says what was wrong, never a 500.
import { Login } from '../helpers/login';
import { Shop } from '../helpers/shop';

/** A tiny seeded generator (mulberry32), so a failing case can be replayed from its seed. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = ['%', '%ZZ', '%E4%B8', '%00', '=', '&', '[]', '[a]', 'page', 'pageSize', 'status', 'from', 'to', '1e20', '-1', 'NaN', '9'.repeat(30), '0x10', '+', '中文', "'", '"', '<', ';', '__proto__', 'constructor'];
const ROUTES: Array<[string, string]> = [
  ['GET', '/health'],
  ['GET', '/orders'],
  ['GET', '/orders/W000'],
  ['POST', '/orders'],
  ['POST', '/orders/W000/pay'],
  ['POST', '/orders/W000/cancel'],
  ['GET', '/products'],
  ['GET', '/admin/orders'],
  ['GET', '/admin/products'],
  ['GET', '/admin/notifications'],
  ['GET', '/auth/me'],
  ['GET', '/auth/wechat/authorize'],
  ['GET', '/auth/wechat/callback'],
  ['POST', '/notify/wechatpay/transaction'],
  ['POST', '/notify/wechatpay/refund'],
  ['POST', '/notify/wechatpay/v2/transaction'],
  ['POST', '/notify/wechatpay/v2/refund'],
];

describe('malformed query strings and absurd numbers', () => {
  let shop: Shop;
  let alice: Login;

  beforeAll(async () => {
    shop = await Shop.start();
    alice = await shop.login('o_alice_malformed');
  });
  afterAll(() => shop?.close());

  it('a malformed percent-escape in a query parameter name or value (/health?%ZZ) is a 400, not a 500', async () => {
    for (const path of ['/health?%ZZ', '/health?a=%ZZ', '/orders?page=%E4%B8', '/admin/orders?%']) {
      const res = await shop.http().get(path).set(alice.headers).set('Authorization', 'Bearer test-admin-token-0123456789');
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('MALFORMED_QUERY');
      expect(res.body.message).toMatch(/percent/);
    }
  });

  it('?page=1e20 on /orders and /admin/orders is a 400 naming page, not a 500 from the database', async () => {
    for (const page of ['1e20', '99999999999', '1e6']) {
      const mine = await shop.http().get(`/orders?page=${page}`).set(alice.headers);
      expect(mine.status).toBe(400);
      expect(JSON.stringify(mine.body)).toMatch(/page/);
      const admin = await shop.admin().get(`/admin/orders?page=${page}`);
      expect(admin.status).toBe(400);
      expect(JSON.stringify(admin.body)).toMatch(/page/);
    }
  });

  it('random query strings and JSON / non-JSON bodies on every route never get a 5xx (seeded property test)', async () => {
    const seed = Number(process.env.FUZZ_SEED ?? 20261202);
    const random = rng(seed);
    const pick = <T>(xs: T[]) => xs[Math.floor(random() * xs.length)];
    const failures: string[] = [];
    for (let i = 0; i < 150; i++) {
      const [method, route] = pick(ROUTES);
      let query = '';
      const n = 1 + Math.floor(random() * 5);
      for (let j = 0; j < n; j++) query += pick(PIECES);
      const url = `${route}?${query}`;
      const req = method === 'GET' ? shop.http().get(url) : shop.http().post(url);
      if (random() < 0.5) req.set(alice.headers);
      else req.set('Authorization', 'Bearer test-admin-token-0123456789');
      if (method === 'POST') {
        const kind = Math.floor(random() * 4);
        if (kind === 0) req.set('Content-Type', 'application/json').send('{"items":');
        else if (kind === 1) req.set('Content-Type', 'text/plain').send(query);
        else if (kind === 2) req.send({ items: [{ productId: pick(PIECES), quantity: pick([1, -1, 1e20, 'x', null]) }] });
        else req.send(JSON.parse(JSON.stringify({ [pick(PIECES)]: pick(PIECES) })));
      }
      const res = await req.ok(() => true);
      if (res.status >= 500) failures.push(`seed ${seed} #${i}: ${method} ${url} → ${res.status} ${JSON.stringify(res.body)}`);
    }
    expect(failures).toEqual([]);
  });
});
