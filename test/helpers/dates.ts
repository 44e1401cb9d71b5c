/** A Beijing calendar date (YYYY-MM-DD), as WeChat's bills count days: today, or `n` days before. */
export function daysAgo(n: number): string {
  return new Date(Date.now() + 8 * 3600_000 - n * 86_400_000).toISOString().slice(0, 10);
}

export const today = (): string => daysAgo(0);
