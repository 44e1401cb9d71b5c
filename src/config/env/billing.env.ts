import { IsOptional, ValidateBy, ValidationOptions, buildMessage } from 'class-validator';
import { validateCronExpression } from 'cron';
import { IsDuration } from './validators';

/** A cron expression the scheduler accepts (5 fields, or 6 with seconds first). */
function IsCronExpression(options?: ValidationOptions): PropertyDecorator {
  const problem = (value: unknown): string | undefined => {
    if (typeof value !== 'string') return 'not a string';
    const { valid, error } = validateCronExpression(value);
    return valid ? undefined : (error?.message ?? 'invalid');
  };
  return ValidateBy(
    {
      name: 'isCronExpression',
      validator: {
        validate: (value) => problem(value) === undefined,
        defaultMessage: buildMessage(
          (_each, args) => `must be a cron expression such as "0 10 * * *" (minute hour day month weekday, Asia/Shanghai): ${problem(args?.value)}`,
          options,
        ),
      },
    },
    options,
  );
}

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
  @IsCronExpression()
  RECONCILE_CRON?: string = undefined;
}
