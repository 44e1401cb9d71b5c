import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown, Optional } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { LeaseService } from '../database/lease.service';
import { WechatPayApiError } from '../wechat/pay/errors';
import { OrderService } from './order.service';
import { mapLimit } from './time';

export interface SweepResult {
  ran: boolean;
  examined: number;
  paid: number;
  closed: number;
  rateLimited: boolean;
}

/**
 * (a) Reconcile: unpaid orders whose prepay is older than PAYMENT_RECONCILE_AFTER are queried at
 * WeChat (notifications get lost). (b) Auto-close: orders unpaid ORDER_CLOSE_AFTER after creation are
 * queried, then closed at WeChat and here, stock released. A database lease makes each sweep run on
 * one instance at a time; guarded updates make each order change once anyway. FREQUENCY_LIMITED backs
 * the sweep off (doubling, up to 5 minutes).
 */
@Injectable()
export class PaymentJobs implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(PaymentJobs.name);
  private backoffUntil = 0;
  private backoffMs = 0;
  private running = new Set<string>();

  constructor(
    private readonly orders: OrderService,
    private readonly leases: LeaseService,
    private readonly config: AppConfig,
    private readonly clock: Clock,
    @Optional() private readonly scheduler?: SchedulerRegistry,
  ) {}

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
  }

  onApplicationShutdown(): void {
    for (const name of ['payment.reconcile', 'payment.close']) {
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

  async reconcile(): Promise<SweepResult> {
    return this.sweep('payment.reconcile', this.config.orders.reconcileIntervalMs, 'reconcile', async (order, result) => {
      const outcome = await this.orders.queryAndApply(order.outTradeNo, 'reconcile');
      if (outcome === 'applied') result.paid++;
    });
  }

  async closeExpired(): Promise<SweepResult> {
    return this.sweep('payment.close', this.config.orders.closeIntervalMs, 'close', async (order, result) => {
      if (order.prepayId) {
        // Query first: a late payment must be applied, not closed over.
        const state = await this.orders.queryAndApply(order.outTradeNo, 'close-check');
        if (state === 'applied' || state === 'duplicate' || state === 'paid_after_close') {
          result.paid++;
          return;
        }
      }
      const outcome = await this.orders.closeOrder(order, 'expired', 'close-check');
      if (outcome === 'closed') result.closed++;
      if (outcome === 'paid') result.paid++;
    });
  }

  private async sweep(
    lease: string,
    intervalMs: number,
    kind: 'reconcile' | 'close',
    handle: (order: Awaited<ReturnType<OrderService['findStale']>>[number], result: SweepResult) => Promise<void>,
  ): Promise<SweepResult> {
    const result: SweepResult = { ran: false, examined: 0, paid: 0, closed: 0, rateLimited: false };
    if (this.clock.nowMs() < this.backoffUntil) return result;
    const { ran } = await this.leases.runExclusive(lease, this.leaseTtl(intervalMs), async () => {
      result.ran = true;
      const batch = await this.orders.findStale(kind, this.config.orders.jobBatch);
      result.examined = await mapLimit(
        batch,
        this.config.orders.wechatConcurrency,
        async (order) => {
          try {
            await handle(order, result);
          } catch (error) {
            if (error instanceof WechatPayApiError && error.isRateLimited) {
              result.rateLimited = true;
              return;
            }
            this.logger.warn(`${kind} of ${order.outTradeNo} failed: ${(error as Error).message}`);
          }
        },
        () => result.rateLimited,
      );
    });
    if (result.rateLimited) {
      this.backoffMs = Math.min(Math.max(this.backoffMs * 2, 1000), 300_000);
      this.backoffUntil = this.clock.nowMs() + this.backoffMs;
      this.logger.warn(`WeChat answered FREQUENCY_LIMITED; ${kind} sweeps paused for ${this.backoffMs} ms`);
    } else if (ran) {
      this.backoffMs = 0;
    }
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
