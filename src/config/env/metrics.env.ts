import { IsOptional, Matches } from 'class-validator';
import { IsDuration } from './validators';

/** GET /metrics (Prometheus) and the backlogs it reports. Property names are the variable names. */
export class MetricsEnv {
  /**
   * Bearer token a scraper must send to GET /metrics. Unset: /metrics is open in sandbox mode and
   * absent (404) in live mode, so a live deployment never publishes its numbers by accident.
   */
  @IsOptional()
  @Matches(/^[\x21-\x7e]{16,}$/, { message: 'must be a token of at least 16 printable characters without spaces' })
  METRICS_TOKEN?: string = undefined;

  /** whp_orders_unpaid_overdue counts unpaid orders whose expiry passed more than this long ago. Default 1m. */
  @IsOptional()
  @IsDuration({ minMs: 0, message: 'must be a duration such as 0s, 1m or 10m' })
  METRICS_UNPAID_OVERDUE_AFTER?: string = undefined;

  /** whp_refunds_processing_stale counts refunds still PROCESSING this long after creation. Default 30m. */
  @IsOptional()
  @IsDuration({ minMs: 0, message: 'must be a duration such as 10m, 30m or 1h' })
  METRICS_REFUND_PROCESSING_AFTER?: string = undefined;
}
