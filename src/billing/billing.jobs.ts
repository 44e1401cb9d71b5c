import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown, Optional } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { CronJob } from 'cron';
import { AdminAuditService } from '../admin/admin-audit.service';
import { Clock } from '../common/clock';
import { AppError } from '../common/errors/app-error';
import { AppConfig } from '../config/app-config';
import { beijingYesterday } from './bill-date';
import { ReconciliationRunningError, ReconciliationService, reconciliationAuditDetail } from './reconciliation.service';

/** Reconciles yesterday every day at RECONCILE_CRON (Asia/Shanghai), on one instance at a time. */
@Injectable()
export class BillingJobs implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(BillingJobs.name);

  constructor(
    private readonly reconciliations: ReconciliationService,
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

  /**
   * Reconciles yesterday (Beijing date, by the injected clock) under the same lease as an operator's
   * POST /admin/reconciliations: if that day is being reconciled already, this run is skipped.
   */
  async reconcileYesterday(): Promise<void> {
    const date = beijingYesterday(this.clock.nowMs());
    let outcome = 'ok';
    let detail: Record<string, unknown> | undefined;
    try {
      const result = await this.reconciliations.run(date);
      detail = reconciliationAuditDetail(result);
      this.logger.log(
        result.summary.noTradesAtWechat
          ? `reconciled ${date}: no trades that day at WeChat (NO_STATEMENT_EXIST), ${result.summary.differenceCount} differences here`
          : `reconciled ${date}: ${result.summary.differenceCount} differences`,
      );
    } catch (error) {
      if (error instanceof ReconciliationRunningError) {
        this.logger.log(`reconciliation of ${date} is running already (an operator's, or on another instance): skipped`);
        return;
      }
      outcome = `error:${error instanceof AppError ? error.code : 'ERROR'}`;
      detail = { message: (error as Error).message };
      throw error;
    } finally {
      if (detail) await this.audit.record({ tokenFingerprint: 'system', action: 'reconciliation.daily', target: date, outcome, detail });
    }
  }
}
