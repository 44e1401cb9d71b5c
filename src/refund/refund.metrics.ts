import { Injectable, OnModuleInit } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { LessThan, Repository } from 'typeorm';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { Metrics } from '../metrics/metrics.service';
import { Refund } from './entities/refund.entity';

/**
 * The refund backlog, counted when Prometheus scrapes: refunds still PROCESSING more than
 * METRICS_REFUND_PROCESSING_AFTER after they were requested (WeChat usually settles within minutes;
 * the refund job asks about them every REFUND_QUERY_INTERVAL).
 */
@Injectable()
export class RefundMetrics implements OnModuleInit {
  constructor(
    private readonly metrics: Metrics,
    @InjectRepository(Refund) private readonly refunds: Repository<Refund>,
    private readonly config: AppConfig,
    private readonly clock: Clock,
  ) {}

  onModuleInit(): void {
    this.metrics.scrapeGauge(
      'refunds_processing_stale',
      'Refunds still PROCESSING more than METRICS_REFUND_PROCESSING_AFTER after they were requested',
      () => this.processingStale(),
    );
  }

  processingStale(): Promise<number> {
    const cutoff = new Date(this.clock.nowMs() - this.config.metrics.refundProcessingAfterMs);
    return this.refunds.count({ where: { status: 'PROCESSING', createdAt: LessThan(cutoff) } });
  }
}
