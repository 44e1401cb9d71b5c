/** RFC 3339 in Beijing time (+08:00), the form WeChat Pay expects for time_expire. */
export function beijingRfc3339(date: Date): string {
  return new Date(date.getTime() + 8 * 3600_000).toISOString().replace(/\.\d{3}Z$/, '+08:00');
}

/** Runs fn over items with at most `limit` in flight; stops taking new items once `stop()` says so. */
export async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>, stop: () => boolean = () => false): Promise<number> {
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < items.length && !stop()) {
      const item = items[next++];
      await fn(item);
      done++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return done;
}
