import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown, Optional } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { CronJob } from 'cron';
import { AdminAuditService } from '../admin/admin-audit.service';
import { Clock } from '../common/clock';
import { AppError } from '../common/errors/app-error';
import { AppConfig } from '../config/app-config';
import { SubMerchantsService } from '../payment/sub-merchants.service';
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
    private readonly subMerchants: SubMerchantsService,
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
   * Service-provider mode: every sub-merchant the provider reconciles (the default one and every
   * enabled one), one after the other, each under its own lease (`billing.reconcile.<date>.<sub_mchid>`)
   * and with its own audit row; one that fails does not stop the others (the first error is thrown
   * once all have run).
   */
  async reconcileYesterday(): Promise<void> {
    const date = beijingYesterday(this.clock.nowMs());
    if (!this.subMerchants.partnerMode) return this.reconcileOne(date);
    let first: unknown;
    for (const subMchid of await this.subMerchants.reconciledSubMchids()) {
      await this.reconcileOne(date, subMchid).catch((error: unknown) => {
        this.logger.error(`daily reconciliation of ${date} of sub-merchant ${subMchid} failed: ${(error as Error).message}`);
        first ??= error;
      });
    }
    if (first) throw first;
  }

  private async reconcileOne(date: string, subMchid?: string): Promise<void> {
    const of = subMchid ? `${date} of sub-merchant ${subMchid}` : date;
    let outcome = 'ok';
    let detail: Record<string, unknown> | undefined;
    try {
      const result = await this.reconciliations.run(date, subMchid);
      detail = reconciliationAuditDetail(result);
      this.logger.log(
        result.summary.noTradesAtWechat
          ? `reconciled ${of}: no trades that day at WeChat (NO_STATEMENT_EXIST), ${result.summary.differenceCount} differences here`
          : `reconciled ${of}: ${result.summary.differenceCount} differences`,
      );
    } catch (error) {
      if (error instanceof ReconciliationRunningError) {
        this.logger.log(`reconciliation of ${of} is running already (an operator's, or on another instance): skipped`);
        return;
      }
      outcome = `error:${error instanceof AppError ? error.code : 'ERROR'}`;
      detail = { message: (error as Error).message };
      throw error;
    } finally {
      if (detail) await this.audit.record({ tokenFingerprint: 'system', action: 'reconciliation.daily', target: subMchid ? `${date}/${subMchid}` : date, outcome, detail });
    }
  }
}
