import { DataSource } from 'typeorm';
import { Shop } from '../helpers/shop';
import { StatementCounter } from '../helpers/statement-counter';

/**
 * POST /orders prices and permits orders from a short-lived in-process catalog copy
 * (CATALOG_CACHE_TTL, issue 16): a sold-out product is refused from memory, this instance's product
 * writes (admin edits, units given back by a cancel) take effect at once, another instance's within
 * the TTL, and the guarded stock UPDATE still decides every unit.
 */
describe('the catalog copy behind POST /orders', () => {
  describe('long TTL (60s): what is and is not served from the copy', () => {
    let shop: Shop;
    let counter: StatementCounter;
    let db: DataSource;
    beforeAll(async () => {
      shop = await Shop.start({ env: { CATALOG_CACHE_TTL: '60s', SANDBOX_INSTANCE_LOCK: 'false' } });
      db = shop.t.app.get(DataSource);
      counter = StatementCounter.attach(shop.t.app);
    });
    afterAll(() => shop?.close());

    const stockOf = async (productId: number): Promise<number> => (await db.query('SELECT stock FROM products WHERE id = ?', [productId]))[0].stock;

    it('refuses a product this instance sold out from memory: 409 OUT_OF_STOCK after the session lookup only, stock never below 0', async () => {
      const badge = await shop.product('徽章', 1200, 2);
      const shoppers = await Promise.all(['o_cc_a', 'o_cc_b', 'o_cc_c'].map((o) => shop.login(o)));
      expect((await shop.order(shoppers[0], [{ productId: badge.id, quantity: 1 }])).status).toBe(201);
      expect((await shop.order(shoppers[1], [{ productId: badge.id, quantity: 1 }])).status).toBe(201);
      const late = await counter.measure(() => shop.order(shoppers[2], [{ productId: badge.id, quantity: 1 }]));
      expect(late.result.status).toBe(409);
      expect(late.result.body).toMatchObject({ code: 'OUT_OF_STOCK', message: `not enough stock left for 徽章 (product ${badge.id})` });
      // The session lookup; no products read, no transaction.
      expect(late.statements).toBe(1);
      expect(late.sql.join('\n')).not.toMatch(/products|BEGIN|START TRANSACTION/);
      expect(await stockOf(badge.id)).toBe(0);
    });

    it('a sale: 12 shoppers at once for 3 units — exactly 3 orders, 9 × 409, and only the 3 admitted creates open a transaction', async () => {
      const pin = await shop.product('限量徽章', 500, 3);
      const shoppers = await Promise.all(Array.from({ length: 12 }, (_, i) => shop.login(`o_cc_sale_${i}`)));
      const race = await counter.measure(() => Promise.all(shoppers.map((s) => shop.order(s, [{ productId: pin.id, quantity: 1 }]))));
      expect(race.result.filter((r) => r.status === 201)).toHaveLength(3);
      const refused = race.result.filter((r) => r.status !== 201);
      expect(refused).toHaveLength(9);
      for (const r of refused) expect(r.body).toMatchObject({ statusCode: 409, code: 'OUT_OF_STOCK' });
      // Creates beyond the stock waited for the admitted ones and were refused from memory: 3 transactions, 3 COMMITs, no ROLLBACK.
      expect(race.sql.filter((sql) => /BEGIN|START TRANSACTION/.test(sql))).toHaveLength(3);
      expect(race.sql.filter((sql) => /ROLLBACK/.test(sql))).toHaveLength(0);
      expect(await stockOf(pin.id)).toBe(0);
    });

    it('takes a unit given back by a cancel on this instance at once', async () => {
      const cup = await shop.product('杯子', 3900, 1);
      const first = await shop.login('o_cc_cancel_1');
      const second = await shop.login('o_cc_cancel_2');
      const no = await shop.placeOrder(first, [{ productId: cup.id, quantity: 1 }]);
      expect((await shop.order(second, [{ productId: cup.id, quantity: 1 }])).body.code).toBe('OUT_OF_STOCK');
      await shop.http().post(`/orders/${no}/cancel`).set(first.headers).expect(200);
      const again = await shop.order(second, [{ productId: cup.id, quantity: 1 }]);
      expect(again.status).toBe(201);
      expect(await stockOf(cup.id)).toBe(0);
    });

    it("applies this instance's admin edits at once: price, restock, deactivation", async () => {
      const tea = await shop.product('红茶', 1000, 1);
      const buyer = await shop.login('o_cc_admin');
      expect((await shop.order(buyer, [{ productId: tea.id, quantity: 1 }])).body.total).toBe(1000);
      await shop.admin().patch(`/admin/products/${tea.id}`).send({ price: 1500, stock: 3 }).expect(200);
      const repriced = await shop.order(buyer, [{ productId: tea.id, quantity: 2 }]);
      expect(repriced.status).toBe(201);
      expect(repriced.body.total).toBe(3000);
      await shop.admin().patch(`/admin/products/${tea.id}`).send({ active: false }).expect(200);
      const gone = await shop.order(buyer, [{ productId: tea.id, quantity: 1 }]);
      expect(gone.status).toBe(400);
      expect(gone.body.code).toBe('UNKNOWN_PRODUCT');
    });

    it("serves another instance's write only after the TTL, and never oversells on a stale stock", async () => {
      const mug = await shop.product('马克杯', 3900, 5);
      const buyer = await shop.login('o_cc_other');
      expect((await shop.order(buyer, [{ productId: mug.id, quantity: 1 }])).body.total).toBe(3900);
      // Another instance (same database, not this process) reprices it and sells the remaining units.
      await db.query('UPDATE products SET price = ?, stock = 0 WHERE id = ?', [4900, mug.id]);
      // The copy still says 3,900 fen and 4 units: the price is the copy's (as if ordered a moment earlier),
      // but the guarded UPDATE finds no unit and the order is refused, nothing written.
      const before = (await db.query('SELECT COUNT(*) AS n FROM orders'))[0].n;
      const stale = await shop.order(buyer, [{ productId: mug.id, quantity: 1 }]);
      expect(stale.status).toBe(409);
      expect(stale.body.code).toBe('OUT_OF_STOCK');
      expect(Number((await db.query('SELECT COUNT(*) AS n FROM orders'))[0].n)).toBe(Number(before));
      expect(await stockOf(mug.id)).toBe(0);
      // A restock there: this copy's stock hint is now 0 (learned from the refusal), so it refuses until it expires.
      await db.query('UPDATE products SET stock = 2 WHERE id = ?', [mug.id]);
      expect((await shop.order(buyer, [{ productId: mug.id, quantity: 1 }])).body.code).toBe('OUT_OF_STOCK');
      expect(await stockOf(mug.id)).toBe(2);
    });
  });

  describe('short TTL (200ms)', () => {
    let shop: Shop;
    let db: DataSource;
    beforeAll(async () => {
      shop = await Shop.start({ env: { CATALOG_CACHE_TTL: '200ms', SANDBOX_INSTANCE_LOCK: 'false' } });
      db = shop.t.app.get(DataSource);
    });
    afterAll(() => shop?.close());

    it("sees another instance's price and restock once the copy is older than the TTL", async () => {
      const pen = await shop.product('钢笔', 2000, 1);
      const buyer = await shop.login('o_cc_short');
      expect((await shop.order(buyer, [{ productId: pen.id, quantity: 1 }])).status).toBe(201);
      await db.query('UPDATE products SET price = ?, stock = 1 WHERE id = ?', [2500, pen.id]);
      await new Promise((r) => setTimeout(r, 400));
      const fresh = await shop.order(buyer, [{ productId: pen.id, quantity: 1 }]);
      expect(fresh.status).toBe(201);
      expect(fresh.body.total).toBe(2500);
    });
  });

  describe('CATALOG_CACHE_TTL=0', () => {
    let shop: Shop;
    let counter: StatementCounter;
    let db: DataSource;
    beforeAll(async () => {
      shop = await Shop.start({ env: { CATALOG_CACHE_TTL: '0', SANDBOX_INSTANCE_LOCK: 'false' } });
      db = shop.t.app.get(DataSource);
      counter = StatementCounter.attach(shop.t.app);
    });
    afterAll(() => shop?.close());

    it('reads the products on every order', async () => {
      const pen = await shop.product('铅笔', 100, 10);
      const buyer = await shop.login('o_cc_off');
      expect((await shop.order(buyer, [{ productId: pen.id, quantity: 1 }])).status).toBe(201);
      await db.query('UPDATE products SET price = ? WHERE id = ?', [300, pen.id]);
      const next = await counter.measure(() => shop.order(buyer, [{ productId: pen.id, quantity: 1 }]));
      expect(next.result.body.total).toBe(300);
      // TypeORM's product read (SELECT "Product"."id" AS "Product_id", …), besides the guarded UPDATE.
      expect(next.sql.filter((sql) => /SELECT [`"]Product[`"]\./.test(sql))).toHaveLength(1);
    });
  });
});
