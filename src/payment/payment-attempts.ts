import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, In, LessThanOrEqual, QueryRunner, Repository } from 'typeorm';
import { dbDate } from '../database/transactions';
import { Clock } from '../common/clock';
import { Order } from './entities/order.entity';
import { AttemptStatus, PayChannel, PaymentAttempt } from './entities/payment-attempt.entity';

export interface AttemptView {
  outTradeNo: string;
  channel: PayChannel;
  status: AttemptStatus;
  createdAt: string;
}

/** The out_trade_no of an order's `seq`-th attempt: the order's own for the first, then `_2`, `_3`, … (≤ 32 chars). */
export function attemptNumber(orderOutTradeNo: string, seq: number): string {
  if (seq <= 1) return orderOutTradeNo;
  const suffix = `_${seq}`;
  return orderOutTradeNo.slice(0, 32 - suffix.length) + suffix;
}

/**
 * Payment attempts: out_trade_no → attempt → order. State changes are guarded UPDATEs on the status
 * they leave, like the order's; an attempt is only ever opened with the next `seq` (unique per order),
 * so two racing requests cannot both open one.
 */
@Injectable()
export class PaymentAttempts {
  constructor(
    @InjectRepository(PaymentAttempt) private readonly attempts: Repository<PaymentAttempt>,
    private readonly clock: Clock,
  ) {}

  byNumber(outTradeNo: string): Promise<PaymentAttempt | null> {
    return this.attempts.findOneBy({ outTradeNo });
  }

  /** Every attempt of the order, oldest first. */
  ofOrder(orderId: string): Promise<PaymentAttempt[]> {
    return this.attempts.find({ where: { orderId }, order: { seq: 'ASC' } });
  }

  async latest(orderId: string): Promise<PaymentAttempt | null> {
    return this.attempts.findOne({ where: { orderId }, order: { seq: 'DESC' } });
  }

  /** Attempts still open (NOTPAY), oldest first. */
  openOf(orderId: string): Promise<PaymentAttempt[]> {
    return this.attempts.find({ where: { orderId, status: 'NOTPAY' }, order: { seq: 'ASC' } });
  }

  /** The attempt that paid the order (its transaction_id), if any. */
  async paidOf(order: Order): Promise<PaymentAttempt | null> {
    if (!order.transactionId) return null;
    return this.attempts.findOneBy({ orderId: order.id, transactionId: order.transactionId });
  }

  /**
   * Attempt `seq` as it will be written, not written yet: pay writes it with its prepay, in the
   * statement that records the prepay (`insertPrepaid`; the unique out_trade_no and (order, seq)
   * keep a racing second one out).
   */
  planned(order: Order, seq: number, channel: PayChannel, payer: { appid: string | null; openid: string | null }): PaymentAttempt {
    const now = this.clock.now();
    const row: Omit<PaymentAttempt, 'id'> = {
      orderId: order.id,
      outTradeNo: attemptNumber(order.outTradeNo, seq),
      seq,
      channel,
      status: 'NOTPAY' as const,
      appid: payer.appid,
      openid: payer.openid,
      prepayId: null,
      prepayUrl: null,
      prepayAt: null,
      timeExpire: null,
      transactionId: null,
      lastQueriedAt: null,
      createdAt: now,
      updatedAt: now,
    };
    return Object.assign(new PaymentAttempt(), row);
  }

  /**
   * Writes a planned attempt with its prepay, guarded on its order still being NOTPAY, in one
   * statement (INSERT … SELECT from the order's row: on MariaDB it share-locks that row until commit —
   * the statement's own when autocommitted, as pay sends it — so a payment or close of the order
   * waits for it, and then sees the attempt). False: the order left NOTPAY
   * meanwhile and nothing was written. Throws a duplicate-key error when another request wrote this
   * attempt first (its unique number and (order, seq) are the claim).
   */
  async insertPrepaid(
    runner: QueryRunner,
    attempt: PaymentAttempt,
    prepay: { prepayId?: string; prepayUrl?: string; timeExpire: string },
    now = this.clock.now(),
  ): Promise<boolean> {
    Object.assign(attempt, { prepayId: prepay.prepayId ?? null, prepayUrl: prepay.prepayUrl ?? null, prepayAt: now, timeExpire: prepay.timeExpire, updatedAt: now });
    const d = (date: Date) => dbDate(runner.connection, date);
    const res = (await runner.query(
      `INSERT INTO payment_attempts (order_id, out_trade_no, seq, channel, status, appid, openid, prepay_id, prepay_url, prepay_at, time_expire, created_at, updated_at)
       SELECT id, ?, ?, ?, 'NOTPAY', ?, ?, ?, ?, ?, ?, ?, ? FROM orders WHERE id = ? AND status = 'NOTPAY'`,
      [
        attempt.outTradeNo,
        attempt.seq,
        attempt.channel,
        attempt.appid,
        attempt.openid,
        attempt.prepayId,
        attempt.prepayUrl,
        d(now),
        attempt.timeExpire,
        d(attempt.createdAt),
        d(now),
        attempt.orderId,
      ],
      true,
    )) as { raw: unknown; affected?: number };
    if (!res.affected) return false;
    const raw = res.raw as { insertId?: number | string } | number | bigint | undefined;
    const id = typeof raw === 'object' && raw !== null ? raw.insertId : raw;
    if (id !== undefined) attempt.id = String(id);
    return true;
  }

  /** Records the attempt's prepay, guarded on NOTPAY; in the caller's transaction when given. */
  async recordPrepay(
    attempt: PaymentAttempt,
    prepay: { prepayId?: string; prepayUrl?: string; timeExpire: string },
    manager?: EntityManager,
    now = this.clock.now(),
  ): Promise<boolean> {
    const res = await (manager ? manager.getRepository(PaymentAttempt) : this.attempts).update(
      { id: attempt.id, status: 'NOTPAY' },
      { prepayId: prepay.prepayId ?? null, prepayUrl: prepay.prepayUrl ?? null, prepayAt: now, timeExpire: prepay.timeExpire, updatedAt: now },
    );
    return !!res.affected;
  }

  async markQueried(outTradeNo: string): Promise<void> {
    await this.attempts.update({ outTradeNo }, { lastQueriedAt: this.clock.now() });
  }

  /** NOTPAY → CLOSED for one attempt (closed at WeChat, or never prepaid); false when it was no longer NOTPAY. */
  async markClosed(attempt: PaymentAttempt, manager?: EntityManager): Promise<boolean> {
    const now = this.clock.now();
    const repo = manager ? manager.getRepository(PaymentAttempt) : this.attempts;
    const res = await repo.update({ id: attempt.id, status: 'NOTPAY' }, { status: 'CLOSED', updatedAt: now });
    return !!res.affected;
  }

  /** Every open attempt of the order → CLOSED, in the caller's transaction (the order is being closed). */
  async closeAllOpen(manager: EntityManager, orderId: string): Promise<void> {
    await manager.update(PaymentAttempt, { orderId, status: 'NOTPAY' }, { status: 'CLOSED', updatedAt: this.clock.now() });
  }

  /** A paid attempt fully refunded → REFUNDED (guarded). */
  async markRefunded(manager: EntityManager, outTradeNo: string): Promise<void> {
    await manager.update(PaymentAttempt, { outTradeNo, status: 'PAID' }, { status: 'REFUNDED', updatedAt: this.clock.now() });
  }

  /**
   * Duplicate payments not refunded yet (an attempt PAID with a transaction other than its order's),
   * unchanged for `olderThanMs`, oldest first — the payment jobs pursue their refund again.
   */
  async unresolvedDuplicates(olderThanMs: number, limit: number): Promise<Array<{ order: Order; attempt: PaymentAttempt }>> {
    const rows = await this.attempts
      .createQueryBuilder('a')
      .innerJoinAndMapOne('a.order', Order, 'o', 'o.id = a.order_id')
      .where("a.status = 'PAID' AND a.transaction_id IS NOT NULL")
      .andWhere('(o.transaction_id IS NULL OR a.transaction_id <> o.transaction_id)')
      .andWhere('a.updated_at <= :cutoff', { cutoff: new Date(this.clock.nowMs() - olderThanMs) })
      .orderBy('a.updatedAt', 'ASC')
      .limit(limit)
      .getMany();
    return rows.map((a) => ({ attempt: a, order: (a as PaymentAttempt & { order: Order }).order }));
  }

  /** Claims one retry of a duplicate's refund (guarded on its last change: once per sweep, on one instance). */
  async claimRetry(attempt: PaymentAttempt): Promise<boolean> {
    const res = await this.attempts.update({ id: attempt.id, status: 'PAID', updatedAt: LessThanOrEqual(attempt.updatedAt) }, { updatedAt: this.clock.now() });
    return !!res.affected;
  }

  /** Per order id: its attempts (the JSON's `payments`), and the rows themselves. */
  async views(orderIds: string[]): Promise<Map<string, AttemptView[]>> {
    const out = new Map<string, AttemptView[]>();
    for (const [orderId, rows] of await this.rowsOf(orderIds)) {
      out.set(orderId, rows.map((a) => ({ outTradeNo: a.outTradeNo, channel: a.channel, status: a.status, createdAt: a.createdAt.toISOString() })));
    }
    return out;
  }

  async rowsOf(orderIds: string[]): Promise<Map<string, PaymentAttempt[]>> {
    const out = new Map<string, PaymentAttempt[]>();
    if (!orderIds.length) return out;
    const rows = await this.attempts.find({ where: { orderId: In(orderIds) }, order: { seq: 'ASC' } });
    for (const a of rows) {
      const list = out.get(String(a.orderId)) ?? [];
      list.push(a);
      out.set(String(a.orderId), list);
    }
    return out;
  }
}
