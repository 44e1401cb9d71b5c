import { IsOptional, Matches } from 'class-validator';
import { IsDuration } from './validators';

/** Refund follow-up and daily reconciliation. Property names are the variable names. */
export class BillingEnv {
  /** A refund still PROCESSING this long after creation is queried at WeChat by a job. Default 3m. */
  @IsOptional()
  @IsDuration({ minMs: 0 })
  REFUND_QUERY_AFTER?: string = undefined;

  /** How often that job runs. Default 1m. */
  @IsOptional()
  @IsDuration({ minMs: 100 })
  REFUND_QUERY_INTERVAL?: string = undefined;

  /** When the daily reconciliation of yesterday runs (cron, Asia/Shanghai). Default "0 10 * * *" (10:00). */
  @IsOptional()
  @Matches(/^(\S+\s+){4,5}\S+$/, { message: 'must be a cron expression such as "0 10 * * *"' })
  RECONCILE_CRON?: string = undefined;
}
