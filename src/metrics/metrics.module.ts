import { DynamicModule, Global, Injectable, Module, OnModuleInit, Optional } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { ORDER_PAID, OrderPaidEvent } from '../payment/payment-applier.service';
import { ClockSkew } from '../wechat/clock-skew';
import { MetricsController } from './metrics.controller';
import { Metrics } from './metrics.service';

interface Countable {
  length?: number;
  size?: () => number;
}

const count = (list: Countable | undefined): number => (typeof list?.length === 'number' ? list.length : (list?.size?.() ?? 0));

/**
 * The mysql2 pool's connections by state, when the database is MySQL/MariaDB (SQLite has no pool: no
 * samples). mysql2 does not publish these counts; they are read from its pool's own lists, and if a
 * future version renames them the gauge simply has no samples.
 */
export function poolUsage(dataSource: DataSource): Array<[Record<string, string>, number]> {
  const pool = (dataSource.driver as { pool?: Record<string, unknown> }).pool;
  if (!pool || !('_allConnections' in pool)) return [];
  const all = count(pool._allConnections as Countable);
  const idle = count(pool._freeConnections as Countable);
  const waiting = count(pool._connectionQueue as Countable);
  const max = Number((pool.config as { connectionLimit?: number } | undefined)?.connectionLimit ?? NaN);
  return [
    [{ state: 'in_use' }, all - idle],
    [{ state: 'idle' }, idle],
    [{ state: 'waiting' }, waiting],
    ...(Number.isFinite(max) ? ([[{ state: 'max' }, max]] as Array<[Record<string, string>, number]>) : []),
  ];
}

/** Gauges of what the metrics module itself can read at scrape time, and the payment counter. */
@Injectable()
class MetricsSources implements OnModuleInit {
  constructor(
    private readonly metrics: Metrics,
    @InjectDataSource() private readonly dataSource: DataSource,
    @Optional() private readonly skew?: ClockSkew,
  ) {}

  onModuleInit(): void {
    this.metrics.scrapeGauge(
      'wechat_clock_skew_seconds',
      "WeChat's clock minus ours, measured from its signed answers (positive: WeChat is ahead); no sample before the first measurement",
      () => {
        const offsetMs = this.skew?.currentSkewMs();
        return typeof offsetMs === 'number' ? offsetMs / 1000 : undefined;
      },
    );
    this.metrics.scrapeGauge(
      'db_pool_connections',
      'Database pool connections by state (in_use, idle, waiting requests, max); MySQL/MariaDB only',
      () => poolUsage(this.dataSource),
      ['state'],
    );
  }

  @OnEvent(ORDER_PAID)
  onPaid(event: OrderPaidEvent): void {
    this.metrics.paymentApplied(event.source);
  }
}

/**
 * Prometheus metrics: the registry (global, so any module can report), the scrape-time sources it can
 * read itself, and GET /metrics where it may be served (see MetricsController).
 */
@Global()
@Module({})
export class MetricsModule {
  static forRoot(config: AppConfig): DynamicModule {
    const served = !!config.metrics.token || config.wechatMode === 'sandbox';
    return {
      module: MetricsModule,
      controllers: served ? [MetricsController] : [],
      providers: [Metrics, MetricsSources],
      exports: [Metrics],
    };
  }
}
