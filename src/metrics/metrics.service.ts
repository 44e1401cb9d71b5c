import { Injectable, Logger } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { WechatCall } from '../wechat/http/call-observer';

/** Every metric name starts with this (the default Node/process metrics too). */
export const METRIC_PREFIX = 'whp_';

/**
 * A job's lease name with its variable part taken out: `billing.reconcile.2026-11-30` → `billing.reconcile`,
 * and a provider's per-sub-merchant lease `billing.reconcile.2026-11-30.1900000201` too (one label value
 * per job, not one per day and sub-merchant).
 */
export function jobName(lease: string): string {
  return lease.replace(/\.\d{4}-\d{2}-\d{2}(\.\d+)?$/, '');
}

/** What a notification came to, as a label pair: rejected ones carry their reason, the rest an empty one. */
export function notificationOutcome(stored: string): { outcome: string; reason: string } {
  const [head, ...rest] = stored.split(':');
  if (head === 'rejected') return { outcome: 'rejected', reason: rest.join(':') || 'unknown' };
  // Refund notifications are stored as refund:<result>: the kind label already says refund.
  if (head === 'refund' && rest.length) return { outcome: rest.join(':'), reason: '' };
  if (head === 'decrypt_failed' || head === 'malformed' || head === 'wrong_endpoint') return { outcome: 'rejected', reason: head };
  return { outcome: stored, reason: '' };
}

/**
 * The application's Prometheus registry (one per application instance, not prom-client's global one,
 * so that several apps in one process — the tests — keep their own counts) and the one place that
 * knows every metric's name, labels and meaning. Modules report through the small methods below;
 * values read at scrape time (backlogs, clock skew, pool) are registered with `scrapeGauge`.
 */
@Injectable()
export class Metrics {
  private readonly logger = new Logger(Metrics.name);
  readonly registry = new Registry();

  private readonly notifications = new Counter({
    name: `${METRIC_PREFIX}notifications_total`,
    help: 'WeChat Pay notifications received, by kind (transaction|refund), outcome (applied, duplicate, rejected, anomaly, …) and reason (of a rejection)',
    labelNames: ['kind', 'outcome', 'reason'],
    registers: [this.registry],
  });

  private readonly wechatRequests = new Counter({
    name: `${METRIC_PREFIX}wechat_requests_total`,
    help: 'Requests to WeChat (each attempt), by api (pay|mp), endpoint and status (HTTP status, timeout, network_error, errcode_<n>)',
    labelNames: ['api', 'endpoint', 'status'],
    registers: [this.registry],
  });

  private readonly wechatDuration = new Histogram({
    name: `${METRIC_PREFIX}wechat_request_duration_seconds`,
    help: 'Latency of requests to WeChat (each attempt), by api and endpoint',
    labelNames: ['api', 'endpoint'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
    registers: [this.registry],
  });

  private readonly paymentsApplied = new Counter({
    name: `${METRIC_PREFIX}payments_applied_total`,
    help: 'Orders moved to PAID, by source: notification, or found by a query (query, reconcile, close-check, cancel-check) or the bill',
    labelNames: ['source'],
    registers: [this.registry],
  });

  private readonly jobRuns = new Counter({
    name: `${METRIC_PREFIX}job_runs_total`,
    help: 'Runs of the background jobs on this instance, by job and outcome (success, failure, skipped: another instance held the lease)',
    labelNames: ['job', 'outcome'],
    registers: [this.registry],
  });

  private readonly jobLastSuccess = new Gauge({
    name: `${METRIC_PREFIX}job_last_success_timestamp_seconds`,
    help: 'When each job last completed successfully on this instance (Unix time)',
    labelNames: ['job'],
    registers: [this.registry],
  });

  private readonly tokenRefreshes = new Counter({
    name: `${METRIC_PREFIX}wechat_token_refreshes_total`,
    help: 'Fetches of the access_token, the jsapi_ticket and the platform certificates, by kind and outcome (success|failure)',
    labelNames: ['kind', 'outcome'],
    registers: [this.registry],
  });

  private readonly reconciliationRuns = new Counter({
    name: `${METRIC_PREFIX}reconciliation_runs_total`,
    help: 'Daily reconciliations run on this instance, by status (done|failed)',
    labelNames: ['status'],
    registers: [this.registry],
  });

  private readonly reconciliationDifferences = new Counter({
    name: `${METRIC_PREFIX}reconciliation_differences_total`,
    help: 'Differences found by reconciliations, by type (only_in_wechat, only_here, amount_mismatch, …)',
    labelNames: ['type'],
    registers: [this.registry],
  });

  constructor() {
    // Process and Node metrics (CPU, memory, GC, event-loop delay as whp_nodejs_eventloop_lag_*), same prefix.
    collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
  }

  notification(kind: 'transaction' | 'refund', stored: string): void {
    const { outcome, reason } = notificationOutcome(stored);
    this.notifications.inc({ kind, outcome, reason });
  }

  wechatCall(call: WechatCall): void {
    this.wechatRequests.inc({ api: call.api, endpoint: call.endpoint, status: call.status });
    this.wechatDuration.observe({ api: call.api, endpoint: call.endpoint }, call.durationMs / 1000);
  }

  paymentApplied(source: string): void {
    this.paymentsApplied.inc({ source });
  }

  jobRun(lease: string, outcome: 'success' | 'failure' | 'skipped', at = Date.now()): void {
    const job = jobName(lease);
    this.jobRuns.inc({ job, outcome });
    if (outcome === 'success') this.jobLastSuccess.set({ job }, Math.floor(at / 1000));
  }

  tokenRefresh(kind: 'access_token' | 'jsapi_ticket' | 'platform_certificates', outcome: 'success' | 'failure'): void {
    this.tokenRefreshes.inc({ kind, outcome });
  }

  reconciliation(status: 'done' | 'failed', byType: Partial<Record<string, number>>): void {
    this.reconciliationRuns.inc({ status });
    for (const [type, n] of Object.entries(byType)) if (n) this.reconciliationDifferences.inc({ type }, n);
  }

  /**
   * A gauge whose value is read when Prometheus scrapes (a count in the database, the clock skew).
   * `read` answers one value, or values per label set; undefined = no sample (nothing known yet). A
   * read that fails is logged and leaves the gauge without a sample, rather than failing the scrape.
   */
  scrapeGauge(
    name: string,
    help: string,
    read: () => Promise<number | undefined> | number | undefined,
  ): void;
  scrapeGauge(
    name: string,
    help: string,
    read: () => Promise<Array<[Record<string, string>, number]>> | Array<[Record<string, string>, number]>,
    labelNames: string[],
  ): void;
  scrapeGauge(
    name: string,
    help: string,
    read: () => unknown,
    labelNames: string[] = [],
  ): void {
    const logger = this.logger;
    new Gauge({
      name: `${METRIC_PREFIX}${name}`,
      help,
      labelNames,
      registers: [this.registry],
      async collect() {
        // prom-client's reset() leaves an unlabelled gauge at 0; "unknown" must be no sample, not a 0
        // (a backlog of 0 while the database is down, a skew of 0 before any measurement).
        (this as unknown as { hashMap: Record<string, unknown> }).hashMap = {};
        try {
          const value = (await read()) as number | undefined | Array<[Record<string, string>, number]>;
          if (Array.isArray(value)) for (const [labels, n] of value) this.set(labels, n);
          else if (typeof value === 'number' && Number.isFinite(value)) this.set(value);
        } catch (error) {
          logger.warn(`metric ${name} could not be read: ${(error as Error).message}`);
        }
      },
    });
  }

  contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
