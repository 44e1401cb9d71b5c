import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown, Optional } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { scheduleInterval } from '../common/interval-job';
import { AppConfig } from '../config/app-config';
import { LeaseService } from '../database/lease.service';
import { NotifyService } from './notify.service';

const PURGE_INTERVAL_MS = 3600_000;

/**
 * Retention of rejected (unverified) notifications: rows older than PAYMENT_EVENTS_REJECTED_RETENTION
 * are deleted hourly in batches, on one instance at a time. Verified notifications are kept.
 */
@Injectable()
export class NotifyJobs implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(NotifyJobs.name);
  private stop: () => void = () => undefined;

  constructor(
    private readonly notify: NotifyService,
    private readonly leases: LeaseService,
    private readonly config: AppConfig,
    @Optional() private readonly scheduler?: SchedulerRegistry,
  ) {}

  onApplicationBootstrap(): void {
    this.stop = scheduleInterval(this.scheduler, 'notify.purge_rejected', PURGE_INTERVAL_MS, () => this.purgeRejected(), this.logger);
  }

  onApplicationShutdown(): void {
    this.stop();
  }

  /** One retention pass under the lease; how many rejected rows were deleted. */
  async purgeRejected(): Promise<number> {
    const { result } = await this.leases.runExclusive('notify.purge_rejected', 10 * 60_000, () =>
      this.notify.purgeRejected(this.config.orders.rejectedEventsRetentionMs),
    );
    if (result) this.logger.log(`deleted ${result} rejected notifications older than the retention`);
    return result ?? 0;
  }
}
