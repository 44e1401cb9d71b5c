import { getDataSourceToken } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { dbDate } from '../../src/database/transactions';
import { Shop } from '../helpers/shop';

const beijingDate = (ms: number) => new Date(ms + 8 * 3600_000).toISOString().slice(0, 10);

interface OrderItem {
  outTradeNo: string;
  status: string;
  openid: string;
  createdAt: string;
}

describe('GET /admin/orders', () => {
  let shop: Shop;
  const a: string[] = [];
  let b: string;
  let paid: string;
  let cancelled: string;
  let old: string;
  const oldAt = Date.now() - 5 * 86_400_000;

  beforeAll(async () => {
    shop = await Shop.start();
    const alice = await shop.login('o_orders_alice');
    const bob = await shop.login('o_orders_bob');
    const product = (await shop.product('订单筛选', 100)).id;
    for (let i = 0; i < 5; i++) a.push(await shop.placeOrder(alice, [{ productId: product, quantity: 1 }]));
    b = await shop.placeOrder(bob, [{ productId: product, quantity: 2 }]);
    // a[4] paid, a[3] cancelled, a[0] created five days ago (moved in the database)
    paid = a[4];
    await shop.sandbox.pay(await shop.prepay(alice, paid));
    await shop.waitForStatus(paid, 'PAID');
    cancelled = a[3];
    await shop.http().post(`/orders/${cancelled}/cancel`).set(alice.headers).expect(200);
    old = a[0];
    const ds = shop.t.app.get<DataSource>(getDataSourceToken());
    await ds.query('UPDATE orders SET created_at = ? WHERE out_trade_no = ?', [dbDate(ds, new Date(oldAt)), old]);
  });
  afterAll(() => shop?.close());

  const list = async (query: string) => (await shop.admin().get(`/admin/orders?${query}`).expect(200)).body as { items: OrderItem[]; page: number; pageSize: number; total: number };
  const nos = (items: OrderItem[]) => items.map((o) => o.outTradeNo);

  it('lists every order newest first, with the admin fields', async () => {
    const all = await list('');
    expect(all).toMatchObject({ page: 1, pageSize: 50, total: 6 });
    expect(nos(all.items)).toEqual([b, ...[...a].reverse()]);
    expect(all.items[0]).toMatchObject({ openid: 'o_orders_bob', status: 'NOTPAY' });
  });

  it('filters by status and openid, alone and together', async () => {
    expect(nos((await list('status=PAID')).items)).toEqual([paid]);
    expect(nos((await list('status=CLOSED')).items)).toEqual([cancelled]);
    expect((await list('status=NOTPAY')).total).toBe(4);
    expect(nos((await list('openid=o_orders_bob')).items)).toEqual([b]);
    expect((await list('openid=o_orders_alice')).total).toBe(5);
    expect(nos((await list('openid=o_orders_alice&status=NOTPAY')).items)).toEqual([a[2], a[1], a[0]]);
    expect(await list('openid=o_orders_bob&status=PAID')).toMatchObject({ items: [], total: 0 });
    expect((await list('openid=nobody')).total).toBe(0);
  });

  it('filters by Beijing date range (from and to inclusive)', async () => {
    const today = beijingDate(Date.now());
    const oldDay = beijingDate(oldAt);
    expect(nos((await list(`from=${today}`)).items)).not.toContain(old);
    expect((await list(`from=${today}`)).total).toBe(5);
    expect(nos((await list(`to=${oldDay}`)).items)).toEqual([old]);
    expect(nos((await list(`from=${oldDay}&to=${oldDay}`)).items)).toEqual([old]);
    expect((await list(`from=${oldDay}&to=${today}`)).total).toBe(6);
    expect(nos((await list(`from=${oldDay}&to=${oldDay}&status=NOTPAY&openid=o_orders_alice`)).items)).toEqual([old]);
    expect((await list(`from=${beijingDate(oldAt + 86_400_000)}&to=${beijingDate(oldAt + 2 * 86_400_000)}`)).total).toBe(0);
  });

  it('pages through the results without gaps or repeats', async () => {
    const pages = [];
    for (let page = 1; page <= 3; page++) pages.push(await list(`openid=o_orders_alice&pageSize=2&page=${page}`));
    expect(pages.map((p) => [p.page, p.pageSize, p.total, p.items.length])).toEqual([
      [1, 2, 5, 2],
      [2, 2, 5, 2],
      [3, 2, 5, 1],
    ]);
    expect(pages.flatMap((p) => nos(p.items))).toEqual([...a].reverse());
    expect(await list('openid=o_orders_alice&pageSize=2&page=4')).toMatchObject({ items: [], total: 5 });
    expect((await list('pageSize=200')).items).toHaveLength(6);
  });

  it.each([
    ['status=BOGUS', 'status must be one of'],
    ['from=2026-1-1', 'from must be a date as YYYY-MM-DD'],
    ['to=yesterday', 'to must be a date as YYYY-MM-DD'],
    ['from=2026-02-30', 'not a calendar date'],
    ['from=2026-03-02&to=2026-03-01', 'from must not be after to'],
    ['page=0', 'page must be at least 1'],
    ['page=x', 'page must be an integer'],
    ['pageSize=201', 'pageSize must not be greater than 200'],
  ])('answers 400 for %s', async (query, message) => {
    const res = await shop.admin().get(`/admin/orders?${query}`).expect(400);
    expect(res.body.message).toContain(message);
  });

  it('needs the admin token', async () => {
    await shop.http().get('/admin/orders').expect(401);
  });
});
