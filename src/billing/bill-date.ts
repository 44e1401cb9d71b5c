import { BadRequestError } from '../common/errors/app-error';

const DAY_MS = 86_400_000;

/** Today's date in Beijing (WeChat's bill dates are Beijing dates). */
export function beijingToday(nowMs: number): string {
  return new Date(nowMs + 8 * 3600_000).toISOString().slice(0, 10);
}

export function beijingYesterday(nowMs: number): string {
  return new Date(nowMs + 8 * 3600_000 - DAY_MS).toISOString().slice(0, 10);
}

/**
 * A bill date as given by an operator: YYYY-MM-DD, a real calendar day, not after today in Beijing.
 * Returns the UTC instants the Beijing day starts and ends.
 */
export function parseBillDate(value: unknown, nowMs: number): { date: string; from: Date; to: Date } {
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(value)) {
    throw new BadRequestError('INVALID_DATE', 'date is required as YYYY-MM-DD (a Beijing calendar day)');
  }
  const from = new Date(`${value}T00:00:00+08:00`);
  if (Number.isNaN(from.getTime()) || new Date(from.getTime() + 8 * 3600_000).toISOString().slice(0, 10) !== value) {
    throw new BadRequestError('INVALID_DATE', `${value} is not a calendar date`);
  }
  if (value > beijingToday(nowMs)) throw new BadRequestError('DATE_IN_FUTURE', `${value} is in the future; bills exist only for past days`);
  return { date: value, from, to: new Date(from.getTime() + DAY_MS) };
}
