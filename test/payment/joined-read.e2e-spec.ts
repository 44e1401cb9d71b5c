import { DataSource } from 'typeorm';
import type { SessionUser } from '../../src/auth/session-user';
import { Order } from '../../src/payment/entities/order.entity';
import { OrderItem } from '../../src/payment/entities/order-item.entity';
import { PaymentAttempt } from '../../src/payment/entities/payment-attempt.entity';
import { OrderNotFoundError } from '../../src/payment/payment.errors';
import { OrderWithChildren, ownOrderWithChildren } from '../../src/payment/order-pay.service';
import { Shop } from '../helpers/shop';

/**
 * The joined read of a pay and a status poll (order, items, attempts) is hand-mapped SQL built once;
 * it must give exactly the entities TypeORM's query builder gave (same values, types, prototypes).
 */
describe('the joined read of an order, its items and attempts', () => {
  let shop: Shop;
  beforeAll(async () => {
    shop = await Shop.start({});
  });
  afterAll(() => shop?.close());

  it("equals the query builder's getOne, before and after payment attempts; another shopper's order is 404", async () => {
    const a = await shop.product('联表读取 A', 100, 10);
    const b = await shop.product('联表读取 B', 200, 10);
    const hal = await shop.login('o_hal_joined_read');
    const no: string = (await shop.order(hal, [{ productId: a.id, quantity: 1 }, { productId: b.id, quantity: 2 }])).body.outTradeNo;
    const orders = shop.t.app.get(DataSource).getRepository(Order);
    const builder = async (): Promise<OrderWithChildren> => {
      const found = (await orders
        .createQueryBuilder('o')
        .leftJoinAndMapMany('o.items', OrderItem, 'i', 'i.order_id = o.id')
        .leftJoinAndMapMany('o.attempts', PaymentAttempt, 'a', 'a.order_id = o.id')
        .where('o.out_trade_no = :no', { no })
        .orderBy('i.id', 'ASC')
        .addOrderBy('a.seq', 'ASC')
        .getOne()) as Order & { items?: OrderItem[]; attempts?: PaymentAttempt[] };
      const { items = [], attempts = [] } = found;
      delete found.items;
      delete found.attempts;
      return { order: found, items, attempts };
    };
    const user = { userId: (await builder()).order.userId } as unknown as SessionUser;

    const before = await ownOrderWithChildren(orders, user, no);
    expect(before).toStrictEqual(await builder());
    expect(before.items.map((i) => i.quantity)).toEqual([1, 2]);
    expect(before.attempts).toEqual([]);

    await shop.http().post(`/orders/${no}/pay`).set(hal.headers).expect(200);
    await shop.http().post(`/orders/${no}/pay`).set(hal.headers).send({ channel: 'native' }).expect(200);
    const after = await ownOrderWithChildren(orders, user, no);
    expect(after).toStrictEqual(await builder());
    expect(after.attempts.map((x) => [x.seq, x.channel, x.status])).toEqual([
      [1, 'jsapi', 'CLOSED'],
      [2, 'native', 'NOTPAY'],
    ]);
    expect(Object.getPrototypeOf(after.order)).toBe(Order.prototype);
    expect(after.attempts[1].prepayAt).toBeInstanceOf(Date);

    await expect(ownOrderWithChildren(orders, { userId: '999999' } as unknown as SessionUser, no)).rejects.toBeInstanceOf(OrderNotFoundError);
    await expect(ownOrderWithChildren(orders, user, 'NO_SUCH_ORDER')).rejects.toBeInstanceOf(OrderNotFoundError);
  });
});
