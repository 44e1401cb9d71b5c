import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, Repository } from 'typeorm';
import { Clock } from '../common/clock';
import { OrderEvent } from './entities/order-event.entity';
import { OrderItem } from './entities/order-item.entity';
import { Order } from './entities/order.entity';

export interface TimelineEntry {
  type: string;
  at: string;
  detail: unknown;
}

/** The order's timeline (order_events, and its 'created' entry from the order's row), keyed by the order's own number whatever attempt an event is about. */
@Injectable()
export class OrderTimeline {
  constructor(
    @InjectRepository(OrderEvent) private readonly events: Repository<OrderEvent>,
    @InjectRepository(Order) private readonly orders: Repository<Order>,
    @InjectRepository(OrderItem) private readonly items: Repository<OrderItem>,
    private readonly clock: Clock,
  ) {}

  async record(outTradeNo: string, type: string, detail: unknown, manager?: EntityManager): Promise<void> {
    const row = { outTradeNo, type: type.slice(0, 32), detail: detail === undefined ? null : JSON.stringify(detail), createdAt: this.clock.now() };
    await (manager ? manager.insert(OrderEvent, row) : this.events.insert(row));
  }

  /**
   * The timeline, oldest first. Its first entry, 'created', is not a row of its own: it is what the
   * order's row and its items say (both written in the create's one transaction and never changed in
   * what it shows: total, products, quantities, creation time), so a create writes one row fewer. Orders
   * created before that have a stored 'created' row, shown as it is.
   */
  async list(outTradeNo: string): Promise<TimelineEntry[]> {
    const rows = await this.events.find({ where: { outTradeNo }, order: { id: 'ASC' } });
    const entries: TimelineEntry[] = rows.map((e) => ({ type: e.type, at: e.createdAt.toISOString(), detail: e.detail ? JSON.parse(e.detail) : null }));
    if (rows.some((e) => e.type === 'created')) return entries;
    const order = await this.orders.findOneBy({ outTradeNo });
    if (!order) return entries;
    const items = await this.items.find({ where: { orderId: order.id }, order: { id: 'ASC' } });
    return [createdEntry(order, items), ...entries];
  }
}

/** The 'created' entry of an order's timeline, from its row and items (what a create once stored as order_events). */
export function createdEntry(order: Pick<Order, 'total' | 'createdAt'>, items: Array<Pick<OrderItem, 'productId' | 'quantity'>>): TimelineEntry {
  return {
    type: 'created',
    at: order.createdAt.toISOString(),
    detail: { total: order.total, items: items.map((i) => ({ productId: Number(i.productId), quantity: i.quantity })) },
  };
}
