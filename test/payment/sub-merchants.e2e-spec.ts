import { Shop } from '../helpers/shop';

/** Service-provider mode (issue 15), data side: sub-merchants, products and orders per sub-merchant. */
describe('service-provider mode: sub-merchants as data', () => {
  const DEFAULT = '1900000109';
  const SECOND = '1900000110';
  const SUB_SECRET = 'Sub0AppSecret0Never0Answered0000';
  let shop: Shop;

  beforeAll(async () => {
    shop = await Shop.start({ env: { WECHATPAY_SUB_MCHID: DEFAULT } });
  });
  afterAll(() => shop?.close());

  const adminProduct = async (body: Record<string, unknown>) => shop.admin().post('/admin/products').send(body);

  it('GET /admin/deployment says service provider with its default sub-merchant (admin token required)', async () => {
    const res = await shop.admin().get('/admin/deployment').expect(200);
    expect(res.body).toEqual({ wechatMode: 'sandbox', apiVersion: 'v3', merchantType: 'partner', defaultSubMchid: DEFAULT });
    expect((await shop.http().get('/admin/deployment')).status).toBe(401);
  });

  it('seeds the default sub-merchant from WECHATPAY_SUB_MCHID and lists it camelCase', async () => {
    const res = await shop.admin().get('/admin/sub-merchants').expect(200);
    expect(res.body).toEqual([expect.objectContaining({ subMchid: DEFAULT, isDefault: true, enabled: true, subAppid: null, hasSubAppSecret: false })]);
  });

  it('adds a sub-merchant with its own official account; the secret is stored encrypted and never answered nor audited', async () => {
    const res = await shop.admin().post('/admin/sub-merchants').send({ subMchid: SECOND, name: '二号店', subAppid: 'wx1234567890abcdef', subAppSecret: SUB_SECRET }).expect(201);
    expect(res.body).toMatchObject({ subMchid: SECOND, name: '二号店', subAppid: 'wx1234567890abcdef', hasSubAppSecret: true, enabled: true, isDefault: false });
    expect(JSON.stringify(res.body)).not.toContain(SUB_SECRET);
    const listed = await shop.admin().get('/admin/sub-merchants').expect(200);
    expect(JSON.stringify(listed.body)).not.toContain(SUB_SECRET);
    const db = await rawQuery(shop, `SELECT sub_appsecret_enc AS enc FROM sub_merchants WHERE sub_mchid = '${SECOND}'`);
    expect(String(db[0].enc)).toMatch(/^v1\./);
    expect(String(db[0].enc)).not.toContain(SUB_SECRET);
    const audit = await shop.admin().get('/admin/audit?action=sub_merchant.create').expect(200);
    expect(JSON.stringify(audit.body)).toContain(SECOND);
    expect(JSON.stringify(audit.body)).not.toContain(SUB_SECRET);
  });

  it('refuses bad sub-merchant input with a 400 naming the field, and a duplicate with 409; nothing is written', async () => {
    const bad = [
      [{ name: 'x' }, 'subMchid is required'],
      [{ subMchid: '12ab', name: 'x' }, 'subMchid must be'],
      [{ subMchid: '1900000199', name: '' }, 'name must be'],
      [{ subMchid: '1900000199', name: 'x', subAppid: 'wx1234567890abcdef' }, 'subAppid and subAppSecret go together'],
      [{ subMchid: '1900000199', name: 'x', subAppid: 'nope', subAppSecret: SUB_SECRET }, 'subAppid must be'],
      [{ subMchid: '1900000199', name: 'x', enabled: 'yes' }, 'enabled must be true or false'],
    ] as const;
    for (const [body, message] of bad) {
      const res = await shop.admin().post('/admin/sub-merchants').send(body);
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body.message)).toContain(message);
    }
    const dup = await shop.admin().post('/admin/sub-merchants').send({ subMchid: SECOND, name: 'again' });
    expect(dup.status).toBe(409);
    expect(dup.body.code).toBe('SUB_MERCHANT_EXISTS');
    const listed = await shop.admin().get('/admin/sub-merchants').expect(200);
    expect(listed.body.map((s: { subMchid: string }) => s.subMchid)).toEqual([DEFAULT, SECOND]);
    const unknown = await shop.admin().patch('/admin/sub-merchants/1900000199').send({ name: 'x' });
    expect(unknown.status).toBe(404);
    const noAdmin = await shop.http().get('/admin/sub-merchants');
    expect(noAdmin.status).toBe(401);
  });

  it('products belong to the default sub-merchant unless named; an unregistered subMchid is a 400', async () => {
    const mine = await adminProduct({ name: '默认店商品', price: 100 });
    expect(mine.status).toBe(201);
    expect(mine.body.subMchid).toBe(DEFAULT);
    const theirs = await adminProduct({ name: '二号店商品', price: 200, subMchid: SECOND });
    expect(theirs.body.subMchid).toBe(SECOND);
    const unknown = await adminProduct({ name: '无主商品', price: 300, subMchid: '1900000199' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.code).toBe('UNKNOWN_SUB_MERCHANT');
    const all = await shop.admin().get('/admin/products').expect(200);
    expect(all.body.map((p: { name: string }) => p.name)).not.toContain('无主商品');
    const moved = await shop.admin().patch(`/admin/products/${mine.body.id}`).send({ subMchid: '1900000199', name: '改名' });
    expect(moved.status).toBe(400);
    expect(moved.body.code).toBe('UNKNOWN_SUB_MERCHANT');
    // Refused whole: neither the sub-merchant nor the name changed.
    expect((await shop.admin().get('/admin/products').expect(200)).body.find((p: { id: number }) => p.id === mine.body.id)).toMatchObject({ name: '默认店商品', subMchid: DEFAULT });
    const shopList = await shop.http().get('/products').expect(200);
    expect(shopList.body.find((p: { id: number }) => p.id === theirs.body.id).subMchid).toBe(SECOND);
  });

  it('an order records its sub-merchant; an order mixing two sub-merchants is a 400 MIXED_SUB_MERCHANTS naming both, and writes nothing', async () => {
    const a = await shop.product('A 店杯子', 500, 5);
    const b = (await adminProduct({ name: 'B 店杯子', price: 600, stock: 5, subMchid: SECOND })).body;
    const alice = await shop.login('o_alice_sub_merchants');
    const ok = await shop.order(alice, [{ productId: b.id, quantity: 1 }]);
    expect(ok.status).toBe(201);
    expect(ok.body.subMchid).toBe(SECOND);
    const read = await shop.http().get(`/orders/${ok.body.outTradeNo}`).set(alice.headers).expect(200);
    expect(read.body.subMchid).toBe(SECOND);

    const before = await rawQuery(shop, 'SELECT COUNT(*) AS n FROM orders');
    const mixed = await shop.order(alice, [
      { productId: a.id, quantity: 1 },
      { productId: b.id, quantity: 1 },
    ]);
    expect(mixed.status).toBe(400);
    expect(mixed.body.code).toBe('MIXED_SUB_MERCHANTS');
    expect(mixed.body.message).toContain(DEFAULT);
    expect(mixed.body.message).toContain(SECOND);
    expect(await rawQuery(shop, 'SELECT COUNT(*) AS n FROM orders')).toEqual(before);
    const stock = await shop.admin().get('/admin/products').expect(200);
    expect(stock.body.find((p: { id: number }) => p.id === a.id).stock).toBe(5);
    expect(stock.body.find((p: { id: number }) => p.id === b.id).stock).toBe(4);
  });

  it("a disabled sub-merchant's products cannot be ordered (409), again once re-enabled", async () => {
    const c = (await adminProduct({ name: 'B 店徽章', price: 700, stock: 2, subMchid: SECOND })).body;
    const bob = await shop.login('o_bob_sub_merchants');
    const off = await shop.admin().patch(`/admin/sub-merchants/${SECOND}`).send({ enabled: false }).expect(200);
    expect(off.body.enabled).toBe(false);
    const before = await rawQuery(shop, 'SELECT (SELECT COUNT(*) FROM orders) AS orders, (SELECT COUNT(*) FROM order_items) AS items');
    const refused = await shop.order(bob, [{ productId: c.id, quantity: 1 }]);
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('SUB_MERCHANT_DISABLED');
    expect(refused.body.message).toContain(SECOND);
    expect(await rawQuery(shop, 'SELECT (SELECT COUNT(*) FROM orders) AS orders, (SELECT COUNT(*) FROM order_items) AS items')).toEqual(before);
    const stock = await shop.admin().get('/admin/products').expect(200);
    expect(stock.body.find((p: { id: number }) => p.id === c.id).stock).toBe(2);
    const audit = await shop.admin().get('/admin/audit?action=sub_merchant.update').expect(200);
    expect(JSON.stringify(audit.body)).toContain('"enabled":false');
    await shop.admin().patch(`/admin/sub-merchants/${SECOND}`).send({ enabled: true }).expect(200);
    expect((await shop.order(bob, [{ productId: c.id, quantity: 1 }])).status).toBe(201);
  });
});

describe('service-provider mode: a product whose sub-merchant is not registered (data drift)', () => {
  let shop: Shop;
  beforeAll(async () => {
    shop = await Shop.start({ env: { WECHATPAY_SUB_MCHID: '1900000109' } });
  });
  afterAll(() => shop?.close());

  it('cannot be ordered (409 naming the sub-merchant), and nothing is written', async () => {
    // The API never gives a product an unregistered sub-merchant; a row edited by hand (or restored
    // from another deployment) can still name one.
    const p = await shop.product('漂移商品', 100, 3);
    const { DataSource } = await import('typeorm');
    await shop.t.app.get(DataSource).query(`UPDATE products SET sub_mchid = '1900000188' WHERE id = ${Number(p.id)}`);
    const carol = await shop.login('o_carol_drift');
    const before = await rawQuery(shop, 'SELECT (SELECT COUNT(*) FROM orders) AS orders, (SELECT COUNT(*) FROM order_items) AS items');
    const refused = await shop.order(carol, [{ productId: p.id, quantity: 1 }]);
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ code: 'SUB_MERCHANT_DISABLED', message: expect.stringContaining('1900000188 is not registered') });
    expect(await rawQuery(shop, 'SELECT (SELECT COUNT(*) FROM orders) AS orders, (SELECT COUNT(*) FROM order_items) AS items')).toEqual(before);
    expect((await shop.admin().get('/admin/products').expect(200)).body.find((x: { id: number }) => x.id === p.id).stock).toBe(3);
  });
});

describe('direct mode: no sub-merchants', () => {
  let shop: Shop;
  beforeAll(async () => {
    shop = await Shop.start();
  });
  afterAll(() => shop?.close());

  it('keeps product and order JSON without subMchid, and answers 404 PARTNER_MODE_OFF for sub-merchant routes and a product subMchid', async () => {
    const p = await shop.product('直连商品', 100);
    expect(p).not.toHaveProperty('subMchid');
    const alice = await shop.login('o_alice_direct_sub');
    const order = await shop.order(alice, [{ productId: p.id, quantity: 1 }]);
    expect(order.status).toBe(201);
    expect(order.body).not.toHaveProperty('subMchid');
    const routes = await shop.admin().get('/admin/sub-merchants');
    expect(routes.status).toBe(404);
    expect(routes.body.code).toBe('PARTNER_MODE_OFF');
    const named = await shop.admin().post('/admin/products').send({ name: 'x', price: 1, subMchid: '1900000109' });
    expect(named.status).toBe(404);
    expect(named.body.code).toBe('PARTNER_MODE_OFF');
    // What the console asks first, so that in direct mode it never calls the sub-merchant routes.
    expect((await shop.admin().get('/admin/deployment').expect(200)).body).toEqual({ wechatMode: 'sandbox', apiVersion: 'v3', merchantType: 'direct' });
  });
});

async function rawQuery(shop: Shop, sql: string): Promise<Array<Record<string, unknown>>> {
  const { DataSource } = await import('typeorm');
  const ds = shop.t.app.get(DataSource);
  const rows = (await ds.query(sql)) as Array<Record<string, unknown>>;
  return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'bigint' || typeof v === 'string' ? String(v) : v])));
}
