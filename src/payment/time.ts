/** An order's expiry as WeChat sees it: time_expire carries whole seconds (see beijingRfc3339). */
export function timeExpireMs(expiresAt: Date): number {
  return Math.floor(expiresAt.getTime() / 1000) * 1000;
}

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

/** A counting semaphore: at most `limit` of the functions given to run() are in progress at once. */
export class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      // Hand the slot straight to the next waiter (active stays the same), or free it.
      if (next) next();
      else this.active--;
    }
  }

  get inUse(): number {
    return this.active;
  }
}
