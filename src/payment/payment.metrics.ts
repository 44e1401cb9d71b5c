import { Injectable, OnModuleInit } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { LessThan, Repository } from 'typeorm';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { Metrics } from '../metrics/metrics.service';
import { Order } from './entities/order.entity';

/**
 * The unpaid-order backlog, counted when Prometheus scrapes: orders still NOTPAY more than
 * METRICS_UNPAID_OVERDUE_AFTER past their expiry. The close job closes them every PAYMENT_CLOSE_INTERVAL,
 * so anything lasting here means that job is not keeping up (or WeChat refuses the close).
 */
@Injectable()
export class PaymentMetrics implements OnModuleInit {
  constructor(
    private readonly metrics: Metrics,
    @InjectRepository(Order) private readonly orders: Repository<Order>,
    private readonly config: AppConfig,
    private readonly clock: Clock,
  ) {}

  onModuleInit(): void {
    this.metrics.scrapeGauge(
      'orders_unpaid_overdue',
      'Unpaid (NOTPAY) orders whose expiry passed more than METRICS_UNPAID_OVERDUE_AFTER ago (the auto-close job is behind)',
      () => this.unpaidOverdue(),
    );
  }

  unpaidOverdue(): Promise<number> {
    const cutoff = new Date(this.clock.nowMs() - this.config.metrics.unpaidOverdueAfterMs);
    return this.orders.count({ where: { status: 'NOTPAY', expiresAt: LessThan(cutoff) } });
  }
}
