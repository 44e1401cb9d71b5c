import { Inject, Injectable, Logger } from '@nestjs/common';
import { merchantOf } from './merchant-ref';
import { InjectDataSource, InjectRepository } from '@nestjs/typeorm';
import { DataSource, EntityManager, Repository } from 'typeorm';
import type { SessionUser } from '../auth/session-user';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { LeaseService } from '../database/lease.service';
import { inTransaction } from '../database/transactions';
import { WechatPayApiError, WechatPayNetworkError } from '../wechat/pay/errors';
import { PAYMENT_GATEWAY, PaymentGateway } from '../wechat/pay/payment-gateway';
import type { Transaction } from '../wechat/pay/types';
import { OrderEvent } from './entities/order-event.entity';
import { OrderItem } from './entities/order-item.entity';
import { Order } from './entities/order.entity';
import { PaymentAttempt } from './entities/payment-attempt.entity';
import { Product } from './entities/product.entity';
import { CatalogService } from './catalog.service';
import { OrderTimeline } from './order-timeline';
import { PaymentApplier, PaymentSource } from './payment-applier.service';
import { PaymentAttempts } from './payment-attempts';
import { OrderStateError } from './payment.errors';
import { ShopperLimits } from './shopper-limits';
import { timeExpireMs } from './time';

const READ_QUERY_SPACING_MS = 2000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export type CloseOutcome = 'closed' | 'paid' | 'unchanged';

/** WeChat's passing failures: SYSTEM_ERROR and other 5xx, 429 FREQUENCY_LIMITED, and the network. */
export function isRetryable(error: unknown): boolean {
  return (error instanceof WechatPayApiError && (error.isServerError || error.isRateLimited)) || error instanceof WechatPayNetworkError;
}

/**
 * Idempotent WeChat calls (prepay with the same parameters — same out_trade_no, same body — and close)
 * are retried on 5xx, 429 and network errors, `attempts` calls in all, waiting `backoffMs`, then
 * twice that, … (plus a little jitter) in between.
 */
export async function withRetries<T>(call: () => Promise<T>, attempts = 3, backoffMs = 100): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (!isRetryable(error) || attempt >= attempts) throw error;
      const wait = backoffMs * 2 ** (attempt - 1);
      await sleep(wait + Math.floor(Math.random() * Math.min(50, wait / 2 + 1)));
    }
  }
}

/** Query outcomes that mean "paid" (the payment was applied here, now or before). */
export function isPaidOutcome(state: string): boolean {
  return state === 'applied' || state === 'duplicate' || state === 'paid_after_close' || state === 'duplicate_payment';
}

/**
 * An order's life after checkout, per payment attempt: asking WeChat (query-on-read, the sweeps),
 * cancel, and close — at WeChat first, every open attempt (query → close), then here with the stock
 * released. Every state change is a guarded UPDATE.
 */
@Injectable()
export class OrderLifecycle {
  private readonly logger = new Logger(OrderLifecycle.name);

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @InjectRepository(Order) private readonly orders: Repository<Order>,
    private readonly attempts: PaymentAttempts,
    private readonly timeline: OrderTimeline,
    private readonly applier: PaymentApplier,
    @Inject(PAYMENT_GATEWAY) private readonly gateway: PaymentGateway,
    private readonly config: AppConfig,
    private readonly clock: Clock,
    private readonly leases: LeaseService,
    private readonly limits: ShopperLimits,
    private readonly catalog: CatalogService,
  ) {}

  /** For an unpaid order whose latest prepay is a few seconds old: the truth from WeChat, applied. */
  async maybeQuery(order: Order, user: SessionUser, attempts?: PaymentAttempt[]): Promise<boolean> {
    if (order.status !== 'NOTPAY') return false;
    // `attempts`: every attempt of the order as read with it (oldest first), else read the open ones now.
    const open = attempts ? attempts.filter((a) => a.status === 'NOTPAY') : await this.attempts.openOf(order.id);
    const attempt = open.filter((a) => a.prepayAt).pop();
    if (!attempt?.prepayAt) return false;
    const now = this.clock.nowMs();
    if (now - attempt.prepayAt.getTime() < this.config.orders.queryOnReadAfterMs) return false;
    if (attempt.lastQueriedAt && now - attempt.lastQueriedAt.getTime() < READ_QUERY_SPACING_MS) return false;
    if (!this.limits.mayQueryOnRead(user)) return false;
    try {
      return isPaidOutcome(await this.queryAndApply(order, attempt, 'query'));
    } catch (error) {
      this.logger.warn(`query of ${attempt.outTradeNo} on read failed: ${(error as Error).message}`);
      return false;
    }
  }

  /**
   * Queries one attempt at WeChat and applies a SUCCESS; records the query on the order's timeline.
   * Returns the applier's outcome for a payment, else WeChat's trade_state (or ORDER_NOT_EXIST).
   */
  async queryAndApply(order: Order, attempt: PaymentAttempt, source: PaymentSource): Promise<string> {
    await this.attempts.markQueried(attempt.outTradeNo);
    const tag = attempt.seq > 1 ? { attempt: attempt.outTradeNo } : {};
    let tx: Transaction;
    try {
      tx = await this.gateway.query(attempt.outTradeNo, merchantOf(order), attempt.appid ?? undefined);
    } catch (error) {
      if (error instanceof WechatPayApiError && error.httpStatus === 404) {
        await this.timeline.record(order.outTradeNo, `${source}:ORDER_NOT_EXIST`, { requestId: error.requestId, ...tag });
        return 'ORDER_NOT_EXIST';
      }
      throw error;
    }
    if (tx.trade_state === 'SUCCESS' || (tx.trade_state === 'REFUND' && tx.transaction_id)) {
      return (await this.applier.apply({ ...tx, trade_state: 'SUCCESS' }, source)).outcome;
    }
    await this.timeline.record(order.outTradeNo, `${source}:${tx.trade_state}`, { tradeStateDesc: tx.trade_state_desc, ...tag });
    return tx.trade_state;
  }

  /** Looks an attempt up by its number (the sweeps, tests) and queries it. */
  async queryByNumber(outTradeNo: string, source: PaymentSource): Promise<string> {
    const attempt = await this.attempts.byNumber(outTradeNo);
    const order = attempt ? await this.orders.findOneBy({ id: attempt.orderId }) : null;
    if (!attempt || !order) return 'unknown_order';
    return this.queryAndApply(order, attempt, source);
  }

  async cancel(order: Order): Promise<Order> {
    if (order.status === 'CLOSED') return order;
    if (order.status !== 'NOTPAY') {
      throw new OrderStateError('ORDER_NOT_CANCELLABLE', `order ${order.outTradeNo} is ${order.status}; paid orders cannot be cancelled (ask for a refund)`, order.status);
    }
    const result = await this.closeOrder(order, 'cancelled', 'cancel-check');
    if (result === 'paid') {
      throw new OrderStateError('ORDER_PAID', `order ${order.outTradeNo} was paid in the meantime and cannot be cancelled`, 'PAID');
    }
    return this.orders.findOneByOrFail({ id: order.id });
  }

  /**
   * Closes every open attempt at WeChat first (those with a prepay), then the order here, releasing
   * stock. If WeChat refuses to close one, what it says about it decides (see settleRefusedClose).
   */
  async closeOrder(order: Order, reason: 'cancelled' | 'expired', source: PaymentSource): Promise<CloseOutcome> {
    const attempts = await this.attempts.ofOrder(order.id);
    // The caller's view may be stale: an attempt paid meanwhile means the order is paid.
    if (attempts.some((a) => a.status === 'PAID' || a.status === 'REFUNDED')) return 'paid';
    for (const attempt of attempts) {
      if (attempt.status !== 'NOTPAY' || (!attempt.prepayAt && !attempt.prepayId)) continue;
      const outcome = await this.closeAttemptAtWechat(order, attempt, reason, source);
      if (outcome !== 'closed') return outcome;
    }
    return (await this.closeLocally(order.outTradeNo, reason)) ? 'closed' : 'unchanged';
  }

  /**
   * One attempt closed at WeChat: 'closed' when WeChat closed it (or it is closed, unknown or past its
   * time_expire there), 'paid' when it turned out paid (applied), 'unchanged' for an anomaly; WeChat's
   * refusal is thrown while the shopper may still pay it (NOTPAY before expiry, USERPAYING).
   */
  async closeAttemptAtWechat(order: Order, attempt: PaymentAttempt, reason: string, source: PaymentSource): Promise<CloseOutcome> {
    try {
      await withRetries(() => this.gateway.close(attempt.outTradeNo, merchantOf(order), attempt.appid ?? undefined));
      return 'closed';
    } catch (error) {
      if (error instanceof WechatPayApiError && error.httpStatus >= 400 && error.httpStatus < 500 && !error.isRateLimited) {
        return this.settleRefusedClose(order, attempt, reason, source, error);
      }
      throw error;
    }
  }

  /**
   * WeChat answered the close with a 4xx. For a paid order its FAQ names ORDER_PAID, but neither that
   * code nor its HTTP status is confirmed, and other implementations answer e.g. 400 INVALID_REQUEST
   * or 403 TRADE_ERROR (404 ORDER_NOT_EXIST is a refusal too). So the code is never trusted to mean
   * "paid" or "not paid": the attempt is queried and the truth applied — paid: the payment is applied
   * (never closed over); closed, revoked or unknown at WeChat: closed; still unpaid: closed only once
   * its time_expire has passed (WeChat takes no payment after it), else the refusal stands.
   */
  private async settleRefusedClose(order: Order, attempt: PaymentAttempt, _reason: string, source: PaymentSource, refusal: WechatPayApiError): Promise<CloseOutcome> {
    await this.timeline.record(order.outTradeNo, `${source}:close_refused`, {
      wechatStatus: refusal.httpStatus,
      wechatCode: refusal.wechatCode,
      requestId: refusal.requestId,
      ...(attempt.seq > 1 ? { attempt: attempt.outTradeNo } : {}),
    });
    const state = await this.queryAndApply(order, attempt, source);
    if (isPaidOutcome(state)) return 'paid';
    switch (state) {
      case 'CLOSED':
      case 'REVOKED':
      case 'ORDER_NOT_EXIST':
        return 'closed';
      case 'NOTPAY':
      case 'PAYERROR':
        if (this.clock.nowMs() >= timeExpireMs(order.expiresAt)) return 'closed';
        throw refusal;
      case 'USERPAYING':
        // The shopper is entering the password right now: neither closed nor paid yet.
        throw refusal;
      default:
        // anomaly, conflict, unknown_order: flagged and recorded by the applier; nothing to close.
        return 'unchanged';
    }
  }

  /** NOTPAY → CLOSED (its open attempts too) and the reserved stock back, in one transaction; false when it was no longer NOTPAY. */
  async closeLocally(outTradeNo: string, reason: string): Promise<boolean> {
    let released: string[] = [];
    const closed = await inTransaction(this.dataSource, async (_runner, manager) => {
      const now = this.clock.now();
      const res = await manager.update(Order, { outTradeNo, status: 'NOTPAY' }, { status: 'CLOSED', closedAt: now, updatedAt: now });
      if (!res.affected) return false;
      const order = await manager.findOneByOrFail(Order, { outTradeNo });
      await this.attempts.closeAllOpen(manager, order.id);
      released = await this.releaseStock(manager, order.id);
      // `by`: which instance closed it (several may sweep; each order is closed by one).
      await manager.insert(OrderEvent, { outTradeNo, type: 'closed', detail: JSON.stringify({ reason, by: this.leases.owner }), createdAt: now });
      return true;
    });
    // Committed: the units are back, so this instance's catalog cache must not refuse them from memory.
    if (closed) this.catalog.evict(released);
    return closed;
  }

  /** The products whose reserved units went back. */
  private async releaseStock(manager: EntityManager, orderId: string): Promise<string[]> {
    const lines = await manager.findBy(OrderItem, { orderId });
    for (const line of lines) {
      await manager
        .createQueryBuilder()
        .update(Product)
        .set({ stock: () => 'stock + :q' })
        .where('id = :id AND stock IS NOT NULL', { id: line.productId })
        .setParameter('q', line.quantity)
        .execute();
    }
    return lines.map((line) => String(line.productId));
  }

  /** Reconcile sweep: open attempts whose prepay is older than PAYMENT_RECONCILE_AFTER and not queried since. */
  async staleAttempts(limit: number): Promise<Array<{ order: Order; attempt: PaymentAttempt }>> {
    const cutoff = new Date(this.clock.nowMs() - this.config.orders.reconcileAfterMs);
    const attempts = await this.dataSource
      .getRepository(PaymentAttempt)
      .createQueryBuilder('a')
      .innerJoin(Order, 'o', 'o.id = a.order_id')
      .where("a.status = 'NOTPAY' AND o.status = 'NOTPAY'")
      .andWhere('a.prepay_at IS NOT NULL AND a.prepay_at <= :cutoff', { cutoff })
      .andWhere('(a.last_queried_at IS NULL OR a.last_queried_at <= :cutoff)', { cutoff })
      .orderBy('a.prepayAt', 'ASC')
      .limit(limit)
      .getMany();
    return this.withOrders(attempts);
  }

  /** Auto-close sweep: orders unpaid ORDER_CLOSE_AFTER after creation. */
  async expiredOrders(limit: number): Promise<Order[]> {
    return this.orders
      .createQueryBuilder('o')
      .where("o.status = 'NOTPAY'")
      .andWhere('o.created_at <= :cutoff', { cutoff: new Date(this.clock.nowMs() - this.config.orders.closeAfterMs) })
      .orderBy('o.created_at', 'ASC')
      .take(limit)
      .getMany();
  }

  /** An expiring order's open attempts that reached WeChat (queried before the close: a late payment is applied, not closed over). */
  async prepaidOpenAttempts(order: Order): Promise<PaymentAttempt[]> {
    return (await this.attempts.openOf(order.id)).filter((a) => a.prepayAt || a.prepayId);
  }

  private async withOrders(attempts: PaymentAttempt[]): Promise<Array<{ order: Order; attempt: PaymentAttempt }>> {
    if (!attempts.length) return [];
    const orders = await this.orders.findBy(attempts.map((a) => ({ id: a.orderId })));
    const byId = new Map(orders.map((o) => [String(o.id), o]));
    return attempts.filter((a) => byId.has(String(a.orderId))).map((a) => ({ order: byId.get(String(a.orderId))!, attempt: a }));
  }
}
