import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, Repository } from 'typeorm';
import { Clock } from '../common/clock';
import { OrderEvent } from './entities/order-event.entity';
import { OrderItem } from './entities/order-item.entity';
import { Order } from './entities/order.entity';
import { PaymentAttempt } from './entities/payment-attempt.entity';
import { attemptNumber } from './payment-attempts';

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
    @InjectRepository(PaymentAttempt) private readonly attempts: Repository<PaymentAttempt>,
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
   * created before that have a stored 'created' row, shown as it is. Likewise each attempt's
   * 'attempt_opened' and 'prepay' entries are what its payment_attempts row says (payStepEntries).
   */
  async list(outTradeNo: string): Promise<TimelineEntry[]> {
    const rows = await this.events.find({ where: { outTradeNo }, order: { id: 'ASC' } });
    const stored: TimelineEntry[] = rows.map((e) => ({ type: e.type, at: e.createdAt.toISOString(), detail: e.detail ? JSON.parse(e.detail) : null }));
    const attempts = await this.attempts
      .createQueryBuilder('a')
      .innerJoin(Order, 'o', 'o.id = a.order_id')
      .where('o.out_trade_no = :no', { no: outTradeNo })
      .orderBy('a.seq', 'ASC')
      .getMany();
    const entries = withPaySteps(stored, payStepEntries(outTradeNo, attempts, stored));
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

/**
 * The pay steps' entries, from the attempts' rows (oldest first): a prepaid attempt's 'prepay' (at its
 * prepay_at; channel, number, prepay_id, time_expire) and, for a later attempt (seq > 1), its
 * 'attempt_opened' just before, naming the attempt before it. Pay once stored these as order_events
 * in the transaction that wrote the prepay, at the same instant; now that write is the attempt's row
 * alone. An attempt whose entry is stored (pay before this, or issue 13's, which opened an attempt
 * before prepaying it; a 'prepay' row naming no attempt is from before attempts, about the first) is
 * shown by its row, not again. What a row cannot tell: a prepay recorded twice by two racing requests
 * for the same attempt (the same prepay from WeChat) shows once, at the later one.
 */
export function payStepEntries(
  orderOutTradeNo: string,
  attempts: Array<Pick<PaymentAttempt, 'outTradeNo' | 'seq' | 'channel' | 'prepayId' | 'prepayAt' | 'timeExpire'>>,
  stored: TimelineEntry[],
): TimelineEntry[] {
  const storedFor = (type: string, attempt: string, orUnnamed: boolean) =>
    stored.some((e) => {
      if (e.type !== type) return false;
      const named = (e.detail as { attempt?: unknown } | null)?.attempt;
      return named === attempt || (orUnnamed && named === undefined);
    });
  const out: TimelineEntry[] = [];
  for (const a of attempts) {
    if (!a.prepayAt) continue;
    const at = a.prepayAt.toISOString();
    if (a.seq > 1 && !storedFor('attempt_opened', a.outTradeNo, false)) {
      out.push({ type: 'attempt_opened', at, detail: { attempt: a.outTradeNo, channel: a.channel, previous: attemptNumber(orderOutTradeNo, a.seq - 1) } });
    }
    if (!storedFor('prepay', a.outTradeNo, a.seq === 1)) {
      out.push({
        type: 'prepay',
        at,
        detail: { channel: a.channel, attempt: a.outTradeNo, ...(a.prepayId ? { prepayId: a.prepayId } : {}), reused: false, ...(a.timeExpire ? { timeExpire: a.timeExpire } : {}) },
      });
    }
  }
  return out;
}

/**
 * Stored entries that a pay records before its write and that may carry the same millisecond as it
 * (the lead-up: the previous attempt queried and closed, a failed prepay): on a tie they come first,
 * anything else after (what follows a prepay: notifications, queries, closes, refunds).
 */
const LEAD_UP = (e: TimelineEntry) => e.type === 'created' || e.type === 'prepay_failed' || e.type === 'attempt_closed' || e.type.startsWith('switch-check:');

/**
 * `derived` (in time order) placed among `stored` (in the order written): each before the first stored
 * entry that is later than it, or as late and not part of its lead-up; stored entries keep their order.
 */
export function withPaySteps(stored: TimelineEntry[], derived: TimelineEntry[]): TimelineEntry[] {
  if (!derived.length) return stored;
  const out: TimelineEntry[] = [];
  let d = 0;
  for (const s of stored) {
    const sAt = Date.parse(s.at);
    while (d < derived.length) {
      const dAt = Date.parse(derived[d].at);
      if (dAt < sAt || (dAt === sAt && !LEAD_UP(s))) out.push(derived[d++]);
      else break;
    }
    out.push(s);
  }
  return out.concat(derived.slice(d));
}
