import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown, Optional } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { CronJob } from 'cron';
import { AdminAuditService } from '../admin/admin-audit.service';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { LeaseService } from '../database/lease.service';
import { beijingYesterday } from './bill-date';
import { ReconciliationService } from './reconciliation.service';

/** Reconciles yesterday every day at RECONCILE_CRON (Asia/Shanghai), on one instance at a time. */
@Injectable()
export class BillingJobs implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(BillingJobs.name);

  constructor(
    private readonly reconciliations: ReconciliationService,
    private readonly leases: LeaseService,
    private readonly audit: AdminAuditService,
    private readonly config: AppConfig,
    private readonly clock: Clock,
    @Optional() private readonly scheduler?: SchedulerRegistry,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.scheduler) return;
    const job = CronJob.from({
      cronTime: this.config.billing.reconcileCron,
      timeZone: 'Asia/Shanghai',
      onTick: () => {
        this.reconcileYesterday().catch((error: Error) => this.logger.error(`daily reconciliation failed: ${error.message}`));
      },
    });
    this.scheduler.addCronJob('billing.reconcile', job as unknown as Parameters<SchedulerRegistry['addCronJob']>[1]);
    job.start();
  }

  onApplicationShutdown(): void {
    try {
      this.scheduler?.getCronJob('billing.reconcile').stop();
    } catch {
      // not registered
    }
  }

  async reconcileYesterday(): Promise<void> {
    const date = beijingYesterday(this.clock.nowMs());
    const { ran } = await this.leases.runExclusive(`billing.reconcile.${date}`, 30 * 60_000, async () => {
      let outcome = 'ok';
      try {
        const result = await this.reconciliations.run(date);
        this.logger.log(`reconciled ${date}: ${result.summary.differenceCount} differences`);
      } catch (error) {
        outcome = 'error';
        throw error;
      } finally {
        await this.audit.record({ tokenFingerprint: 'system', action: 'reconciliation.daily', target: date, outcome });
      }
    });
    if (!ran) this.logger.log(`reconciliation of ${date} is running on another instance`);
  }
}
