import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown, Optional } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { SchedulerRegistry } from '@nestjs/schedule';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { LeaseHandle, LeaseService } from '../database/lease.service';
import { WechatPayApiError } from '../wechat/pay/errors';
import { AfterCloseSettlement } from './after-close.service';
import { isPaidOutcome, OrderLifecycle } from './order-lifecycle.service';
import { DuplicatePaymentEvent, ORDER_DUPLICATE_PAYMENT, ORDER_PAID_AFTER_CLOSE, PaidAfterCloseEvent } from './payment-applier.service';
import { PaymentAttempts } from './payment-attempts';
import { REFUND_PROGRESS, RefundProgress } from './refund-progress';
import { Limiter, mapLimit } from './time';

export interface SweepResult {
  ran: boolean;
  examined: number;
  paid: number;
  closed: number;
  rateLimited: boolean;
  /** resolvePaidAfterClose: orders whose settlement was pursued again. */
  retried?: number;
}


/**
 * (a) Reconcile: unpaid orders whose prepay is older than PAYMENT_RECONCILE_AFTER are queried at
 * WeChat (notifications get lost). (b) Auto-close: orders unpaid ORDER_CLOSE_AFTER after creation are
 * queried, then closed at WeChat and here, stock released. (c) Payments after close that are still
 * unresolved after a while: their follow-up (refund, or reinstatement with a refund as fallback) is an
 * in-process event, lost if the process dies after the commit or the refund fails; the event is
 * emitted again (the handlers are idempotent). A database lease makes each sweep run on one instance
 * at a time (renewed while a long sweep runs); guarded updates make each order change once anyway.
 * WeChat calls of all sweeps together stay within PAYMENT_WECHAT_CONCURRENCY; FREQUENCY_LIMITED backs
 * the sweeps off (doubling, up to 5 minutes).
 */
@Injectable()
export class PaymentJobs implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(PaymentJobs.name);
  private backoffUntil = 0;
  private backoffMs = 0;
  private running = new Set<string>();
  /** Shared by every sweep of this instance: at most PAYMENT_WECHAT_CONCURRENCY orders (so WeChat calls) in flight. */
  private readonly wechatSlots: Limiter;

  constructor(
    private readonly lifecycle: OrderLifecycle,
    private readonly afterClose: AfterCloseSettlement,
    private readonly attempts: PaymentAttempts,
    private readonly leases: LeaseService,
    private readonly config: AppConfig,
    private readonly clock: Clock,
    private readonly events: EventEmitter2,
    @Optional() private readonly scheduler?: SchedulerRegistry,
    @Optional() @Inject(REFUND_PROGRESS) private readonly refunds?: RefundProgress,
  ) {
    this.wechatSlots = new Limiter(config.orders.wechatConcurrency);
  }

  onApplicationBootstrap(): void {
    if (!this.scheduler) return; // schedules off (tests drive the sweeps by hand)
    const every = (name: string, ms: number, fn: () => Promise<unknown>) => {
      const timer = setInterval(() => {
        if (this.running.has(name)) return;
        this.running.add(name);
        fn()
          .catch((error: Error) => this.logger.error(`${name} failed: ${error.message}`))
          .finally(() => this.running.delete(name));
      }, ms);
      this.scheduler!.addInterval(name, timer);
    };
    every('payment.reconcile', this.config.orders.reconcileIntervalMs, () => this.reconcile());
    every('payment.close', this.config.orders.closeIntervalMs, () => this.closeExpired());
    every('payment.after_close', this.config.orders.reconcileIntervalMs, () => this.resolvePaidAfterClose());
  }

  onApplicationShutdown(): void {
    for (const name of ['payment.reconcile', 'payment.close', 'payment.after_close']) {
      try {
        this.scheduler?.deleteInterval(name);
      } catch {
        // not registered
      }
    }
  }

  private leaseTtl(intervalMs: number): number {
    return Math.max(60_000, intervalMs * 3);
  }

  /** Open attempts whose prepay is older than PAYMENT_RECONCILE_AFTER, queried by their own number. */
  async reconcile(): Promise<SweepResult> {
    return this.sweep(
      'payment.reconcile',
      this.config.orders.reconcileIntervalMs,
      'reconcile',
      () => this.lifecycle.staleAttempts(this.config.orders.jobBatch),
      (item) => item.attempt.outTradeNo,
      async ({ order, attempt }, result) => {
        const outcome = await this.lifecycle.queryAndApply(order, attempt, 'reconcile');
        if (outcome === 'applied') result.paid++;
      },
    );
  }

  /** Expired unpaid orders: every open attempt queried (a late payment is applied, not closed over), then closed at WeChat and here. */
  async closeExpired(): Promise<SweepResult> {
    return this.sweep(
      'payment.close',
      this.config.orders.closeIntervalMs,
      'close',
      () => this.lifecycle.expiredOrders(this.config.orders.jobBatch),
      (order) => order.outTradeNo,
      async (order, result) => {
      for (const attempt of await this.lifecycle.prepaidOpenAttempts(order)) {
        const state = await this.lifecycle.queryAndApply(order, attempt, 'close-check');
        if (isPaidOutcome(state)) {
          result.paid++;
          return;
        }
      }
      // Paid between that query and this close: WeChat refuses the close and closeOrder applies the payment.
      const outcome = await this.lifecycle.closeOrder(order, 'expired', 'close-check');
      if (outcome === 'closed') result.closed++;
      if (outcome === 'paid') result.paid++;
      },
    );
  }

  /**
   * (c) Emits ORDER_PAID_AFTER_CLOSE again for payments after close still unresolved `olderThanMs`
   * after their last change, and waits for its handlers: the refund module refunds (idempotent by its
   * number derived from the order, AC<outTradeNo>; a failed refund is retried under a new one), the
   * payment module reinstates or falls back to a refund. With PAID_AFTER_CLOSE_ACTION=hold only
   * orders whose refund was already decided are pursued. Each retry is on the order's timeline.
   */
  async resolvePaidAfterClose(options: { olderThanMs?: number } = {}): Promise<SweepResult> {
    const result: SweepResult = { ran: false, examined: 0, paid: 0, closed: 0, rateLimited: false, retried: 0 };
    const olderThanMs = options.olderThanMs ?? this.config.orders.afterCloseRetryAfterMs; // PAYMENT_AFTER_CLOSE_RETRY_AFTER
    const { ran } = await this.leases.runExclusive('payment.after_close', this.leaseTtl(this.config.orders.reconcileIntervalMs), async (lease) => {
      result.ran = true;
      const hold = this.config.orders.paidAfterCloseAction === 'hold';
      const candidates = await this.afterClose.findUnresolvedAfterClose(olderThanMs, this.config.orders.jobBatch, !hold);
      // Those with a refund in flight or done are the refund module's to follow: out of the way for a while.
      const followed = this.refunds ? await this.refunds.ordersWithActiveRefund(candidates.map((o) => o.outTradeNo)) : new Set<string>();
      await this.afterClose.deferAfterClose([...followed]);
      const batch = candidates.filter((o) => !followed.has(o.outTradeNo));
      result.examined = await mapLimit(
        batch,
        this.config.orders.wechatConcurrency,
        (order) =>
          this.wechatSlots.run(async () => {
            try {
              if (!(await this.afterClose.claimAfterCloseRetry(order))) return;
              result.retried!++;
              const event: PaidAfterCloseEvent = { outTradeNo: order.outTradeNo, retry: true, ...(order.afterCloseAction === 'refund' ? { action: 'refund' as const } : {}) };
              await this.events.emitAsync(ORDER_PAID_AFTER_CLOSE, event);
            } catch (error) {
              this.logger.warn(`payment after close of ${order.outTradeNo} not settled: ${(error as Error).message}`);
            }
          }),
        () => lease.lost,
      );
      // Duplicate payments (a second attempt paid too) whose full refund is not done yet: the event again
      // (the refund module's handler refunds once, by the number derived from the attempt).
      for (const { order, attempt } of await this.attempts.unresolvedDuplicates(olderThanMs, this.config.orders.jobBatch)) {
        if (lease.lost) break;
        try {
          if (!(await this.attempts.claimRetry(attempt))) continue;
          result.retried!++;
          const event: DuplicatePaymentEvent = { outTradeNo: order.outTradeNo, attemptOutTradeNo: attempt.outTradeNo, transactionId: attempt.transactionId!, amount: order.total, retry: true };
          await this.events.emitAsync(ORDER_DUPLICATE_PAYMENT, event);
        } catch (error) {
          this.logger.warn(`duplicate payment ${attempt.outTradeNo} not refunded: ${(error as Error).message}`);
        }
      }
    });
    if (ran && result.retried) this.logger.warn(`pursued ${result.retried} unresolved payment(s) after close or duplicate payment(s) again`);
    return result;
  }

  private async sweep<T>(
    lease: string,
    intervalMs: number,
    kind: 'reconcile' | 'close',
    find: () => Promise<T[]>,
    label: (item: T) => string,
    handle: (item: T, result: SweepResult) => Promise<void>,
  ): Promise<SweepResult> {
    const result: SweepResult = { ran: false, examined: 0, paid: 0, closed: 0, rateLimited: false };
    if (this.clock.nowMs() < this.backoffUntil) return result;
    const { ran } = await this.leases.runExclusive(lease, this.leaseTtl(intervalMs), async (held: LeaseHandle) => {
      result.ran = true;
      const batch = await find();
      result.examined = await mapLimit(
        batch,
        this.config.orders.wechatConcurrency,
        (item) =>
          this.wechatSlots.run(async () => {
            if (result.rateLimited || held.lost) return;
            try {
              await handle(item, result);
            } catch (error) {
              if (error instanceof WechatPayApiError && error.isRateLimited) {
                result.rateLimited = true;
                return;
              }
              this.logger.warn(`${kind} of ${label(item)} failed: ${(error as Error).message}`);
            }
          }),
        // Stop taking orders on FREQUENCY_LIMITED, or when the lease was lost to another instance.
        () => result.rateLimited || held.lost,
      );
    });
    if (result.rateLimited) {
      this.backoffMs = Math.min(Math.max(this.backoffMs * 2, 1000), 300_000);
      this.backoffUntil = this.clock.nowMs() + this.backoffMs;
      this.logger.warn(`WeChat answered FREQUENCY_LIMITED; ${kind} sweeps paused for ${this.backoffMs} ms`);
    } else if (ran) {
      this.backoffMs = 0;
    }
    if (result.paid || result.closed) this.logger.log(`${kind} sweep: ${result.examined} examined, ${result.paid} paid, ${result.closed} closed`);
    return result;
  }

  /** Test/ops hook: forget a back-off. */
  resetBackoff(): void {
    this.backoffUntil = 0;
    this.backoffMs = 0;
  }

  get backoff(): { untilMs: number; ms: number } {
    return { untilMs: this.backoffUntil, ms: this.backoffMs };
  }
}
