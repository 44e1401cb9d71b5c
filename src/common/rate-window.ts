/**
 * Counts hits per key (a client IP, a session) in fixed one-minute windows, in this process's memory:
 * enough to stop one client flooding one instance; behind N instances the limit is per instance.
 * Keys are forgotten when their window ends, so memory is bounded by the keys seen in one window.
 */
export class RateWindow {
  private windowStart = 0;
  private counts = new Map<string, number>();

  constructor(
    private readonly limitPerWindow: number,
    private readonly now: () => number,
    private readonly windowMs = 60_000,
  ) {}

  /** Counts one hit for `key`; undefined when allowed, else the seconds until the window ends (for Retry-After). */
  hit(key: string): number | undefined {
    const nowMs = this.now();
    if (nowMs - this.windowStart >= this.windowMs || nowMs < this.windowStart) {
      this.windowStart = nowMs;
      this.counts = new Map();
    }
    const count = (this.counts.get(key) ?? 0) + 1;
    this.counts.set(key, count);
    if (count <= this.limitPerWindow) return undefined;
    return Math.max(1, Math.ceil((this.windowStart + this.windowMs - nowMs) / 1000));
  }
}
