import { Shop } from '../helpers/shop';

/**
 * Stock hoarding and WeChat call floods by one shopper (issue 11, item 2): limits on unpaid orders and
 * reserved units per shopper, and per-shopper throttles on creating, paying and reading orders. None of
 * them touches the notification endpoints or the admin API.
 */
describe('per-shopper limits', () => {
  const stockOf = async (shop: Shop, productId: number): Promise<number> => {
    const list = await shop.admin().get('/admin/products').expect(200);
    return list.body.find((p: { id: number }) => p.id === productId).stock;
  };

  describe('open orders and reserved units', () => {
    let shop: Shop;
    beforeAll(async () => {
      shop = await Shop.start({ env: { ORDER_MAX_OPEN_PER_USER: '3', ORDER_MAX_RESERVED_PER_PRODUCT: '4' } });
    });
    afterAll(() => shop?.close());

    it('lets one shopper hold at most ORDER_MAX_OPEN_PER_USER unpaid orders, even with 12 requests at once', async () => {
      const tea = await shop.product('绿茶', 1500, 50);
      const hoarder = await shop.login('o_hoarder_open');
      const results = await Promise.all(Array.from({ length: 12 }, () => shop.order(hoarder, [{ productId: tea.id, quantity: 1 }])));
      const created = results.filter((r) => r.status === 201);
      const refused = results.filter((r) => r.status === 429);
      expect(created).toHaveLength(3);
      expect(refused).toHaveLength(9);
      for (const r of refused) {
        expect(r.body.code).toBe('TOO_MANY_OPEN_ORDERS');
        expect(r.body.message).toMatch(/3 unpaid orders \(at most 3\)/);
        const retryAfter = Number(r.headers['retry-after']);
        expect(retryAfter).toBeGreaterThanOrEqual(1);
        expect(retryAfter).toBeLessThanOrEqual(5 * 60 + 1); // expiry is rounded up to a whole second
      }
      // Refused requests reserved nothing.
      expect(await stockOf(shop, tea.id)).toBe(47);
      const mine = await shop.http().get('/orders').set(hoarder.headers).expect(200);
      expect(mine.body.total).toBe(3);

      // Another shopper is not affected.
      const other = await shop.login('o_hoarder_neighbour');
      expect((await shop.order(other, [{ productId: tea.id, quantity: 1 }])).status).toBe(201);

      // Cancelling one frees a slot.
      await shop.http().post(`/orders/${created[0].body.outTradeNo}/cancel`).set(hoarder.headers).expect(200);
      expect((await shop.order(hoarder, [{ productId: tea.id, quantity: 1 }])).status).toBe(201);
      expect((await shop.order(hoarder, [{ productId: tea.id, quantity: 1 }])).status).toBe(429);
    });

    it('caps the units of one stocked product a shopper holds unpaid; unstocked products are not capped', async () => {
      const cake = await shop.product('月饼', 2800, 100);
      const pen = await shop.product('签字笔', 300);
      const buyer = await shop.login('o_hoarder_units');
      expect((await shop.order(buyer, [{ productId: cake.id, quantity: 3 }])).status).toBe(201);
      const over = await shop.order(buyer, [{ productId: cake.id, quantity: 2 }]);
      expect(over.status).toBe(429);
      expect(over.body.code).toBe('TOO_MANY_RESERVED_UNITS');
      expect(over.body.message).toContain('at most 4 units of 月饼');
      expect(over.body.details).toMatchObject({ productId: cake.id, heldUnits: 3, requested: 2, limit: 4 });
      expect(Number(over.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(await stockOf(shop, cake.id)).toBe(97);
      // Exactly up to the limit is fine; an unstocked product is not counted.
      expect((await shop.order(buyer, [{ productId: cake.id, quantity: 1 }, { productId: pen.id, quantity: 30 }])).status).toBe(201);

      // A single request over the limit can never succeed: 400, not "retry later".
      const greedy = await shop.login('o_hoarder_greedy');
      const alone = await shop.order(greedy, [{ productId: cake.id, quantity: 5 }]);
      expect(alone.status).toBe(400);
      expect(alone.body.code).toBe('QUANTITY_OVER_LIMIT');
      expect(alone.headers['retry-after']).toBeUndefined();
      expect(await stockOf(shop, cake.id)).toBe(96);
    });

    it('a paid order no longer counts as held', async () => {
      const jam = await shop.product('果酱', 1200, 20);
      const buyer = await shop.login('o_hoarder_pays');
      const first = await shop.paidOrder(buyer, [{ productId: jam.id, quantity: 4 }]);
      expect(await shop.status(first)).toBe('PAID');
      expect((await shop.order(buyer, [{ productId: jam.id, quantity: 4 }])).status).toBe(201);
    });
  });

  describe('throttles', () => {
    let shop: Shop;
    beforeAll(async () => {
      shop = await Shop.start({
        env: {
          ORDER_CREATE_RATE_LIMIT: '3',
          ORDER_PAY_RATE_LIMIT: '2',
          ORDER_READ_RATE_LIMIT: '6',
        },
      });
    });
    afterAll(() => shop?.close());

    it('throttles POST /orders per shopper with 429 and Retry-After; an idempotent replay is free', async () => {
      const soap = await shop.product('肥皂', 500);
      const fast = await shop.login('o_throttle_create');
      const keyed = await shop.order(fast, [{ productId: soap.id, quantity: 1 }], 'k-1');
      expect(keyed.status).toBe(201);
      expect((await shop.order(fast, [{ productId: soap.id, quantity: 1 }])).status).toBe(201);
      expect((await shop.order(fast, [{ productId: soap.id, quantity: 1 }])).status).toBe(201);
      const fourth = await shop.order(fast, [{ productId: soap.id, quantity: 1 }]);
      expect(fourth.status).toBe(429);
      expect(fourth.body.code).toBe('RATE_LIMITED');
      expect(fourth.body.message).toMatch(/too many orders placed/);
      const retryAfter = Number(fourth.headers['retry-after']);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      const replay = await shop.order(fast, [{ productId: soap.id, quantity: 1 }], 'k-1');
      expect(replay.status).toBe(200);
      expect(replay.body.outTradeNo).toBe(keyed.body.outTradeNo);
      const mine = await shop.http().get('/orders').set(fast.headers).expect(200);
      expect(mine.body.total).toBe(3);
      // Per shopper: someone else still orders.
      expect((await shop.order(await shop.login('o_throttle_other'), [{ productId: soap.id, quantity: 1 }])).status).toBe(201);
    });

    it('throttles POST /orders/:no/pay, and the notification of a throttled shopper still applies', async () => {
      const towel = await shop.product('毛巾', 900);
      const payer = await shop.login('o_throttle_pay');
      const no = await shop.placeOrder(payer, [{ productId: towel.id, quantity: 1 }]);
      const prepayId = await shop.prepay(payer, no);
      await shop.prepay(payer, no);
      const third = await shop.http().post(`/orders/${no}/pay`).set(payer.headers);
      expect(third.status).toBe(429);
      expect(third.body.code).toBe('RATE_LIMITED');
      expect(third.headers['retry-after']).toMatch(/^\d+$/);
      // WeChat's notification is not a shopper request: it is applied.
      await shop.sandbox.pay(prepayId);
      await shop.waitForStatus(no, 'PAID');
    });

    it('throttles reads themselves (GET /orders, GET /orders/:no); the admin API is not throttled', async () => {
      const cup = await shop.product('纸杯', 200);
      const reader = await shop.login('o_throttle_read');
      const no = await shop.placeOrder(reader, [{ productId: cup.id, quantity: 1 }]);
      for (let i = 0; i < 5; i++) await shop.http().get(`/orders/${no}`).set(reader.headers).expect(200);
      await shop.http().get('/orders').set(reader.headers).expect(200);
      const seventh = await shop.http().get(`/orders/${no}`).set(reader.headers);
      expect(seventh.status).toBe(429);
      expect(seventh.body.code).toBe('RATE_LIMITED');
      expect(seventh.body.message).toMatch(/too many order reads/);
      expect(Number(seventh.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect((await shop.http().get('/orders').set(reader.headers)).status).toBe(429);
      for (let i = 0; i < 10; i++) await shop.admin().get(`/admin/orders/${no}`).expect(200);
    });
  });

  describe('WeChat queries caused by reads', () => {
    let shop: Shop;
    beforeAll(async () => {
      shop = await Shop.start({ env: { ORDER_QUERY_ON_READ_RATE_LIMIT: '2', PAYMENT_QUERY_ON_READ_AFTER: '0s' } });
    });
    afterAll(() => shop?.close());

    it('asks WeChat for at most ORDER_QUERY_ON_READ_RATE_LIMIT reads a minute per shopper; other reads answer what we know', async () => {
      const cup = await shop.product('纸杯', 200);
      const reader = await shop.login('o_query_reader');
      const nos: string[] = [];
      for (let i = 0; i < 4; i++) {
        const no = await shop.placeOrder(reader, [{ productId: cup.id, quantity: 1 }]);
        await shop.prepay(reader, no);
        nos.push(no);
      }
      await shop.sandbox.resetCalls();
      for (const no of nos) {
        const res = await shop.http().get(`/orders/${no}`).set(reader.headers).expect(200);
        expect(res.body.status).toBe('NOTPAY');
      }
      expect(await shop.sandbox.callsTo('v3/pay/transactions/out-trade-no')).toBe(2);
      // Another shopper's reads have their own budget.
      const other = await shop.login('o_query_reader_2');
      const theirs = await shop.placeOrder(other, [{ productId: cup.id, quantity: 1 }]);
      await shop.prepay(other, theirs);
      await shop.http().get(`/orders/${theirs}`).set(other.headers).expect(200);
      expect(await shop.sandbox.callsTo('v3/pay/transactions/out-trade-no')).toBe(3);
    });
  });
});
