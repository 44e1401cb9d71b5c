import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown, Optional } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { AppConfig } from '../config/app-config';
import { LeaseService } from '../database/lease.service';
import { RefundService } from './refund.service';

/** Asks WeChat about refunds still PROCESSING after REFUND_QUERY_AFTER (their notification may be lost). */
@Injectable()
export class RefundJobs implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(RefundJobs.name);
  private busy = false;

  constructor(
    private readonly refunds: RefundService,
    private readonly leases: LeaseService,
    private readonly config: AppConfig,
    @Optional() private readonly scheduler?: SchedulerRegistry,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.scheduler) return;
    const timer = setInterval(() => {
      if (this.busy) return;
      this.busy = true;
      this.run()
        .catch((error: Error) => this.logger.error(`refund sweep failed: ${error.message}`))
        .finally(() => (this.busy = false));
    }, this.config.billing.refundQueryIntervalMs);
    this.scheduler.addInterval('refund.query', timer);
  }

  onApplicationShutdown(): void {
    try {
      this.scheduler?.deleteInterval('refund.query');
    } catch {
      // not registered
    }
  }

  async run(): Promise<number> {
    const { result } = await this.leases.runExclusive('refund.query', Math.max(60_000, this.config.billing.refundQueryIntervalMs * 3), () =>
      this.refunds.sweepProcessing(),
    );
    return result ?? 0;
  }
}
