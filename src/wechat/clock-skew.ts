import { Logger } from '@nestjs/common';

export type SkewSource = 'Wechatpay-Timestamp' | 'Date';

export interface SkewEstimate {
  /** WeChat's clock minus ours, in ms: > 0 when WeChat's clock is ahead of ours. */
  offsetMs: number;
  /** When (by our clock) the last answer that confirmed or changed the estimate arrived. */
  measuredAt: Date;
  /** The header the estimate was read from. */
  source: SkewSource;
}

/**
 * Both headers carry whole seconds and the answer took a trip: a new measurement within this much of
 * the estimate is noise and leaves it as it is (so time_expire does not wander between two prepays).
 */
const NOISE_MS = 1500;
/** Below this the offset is not acted on (time_expire stays exactly the order's expiry). */
const SHIFT_DEADBAND_MS = 2000;
/** time_expire is never shifted further than this: past it WeChat's signatures fail anyway. */
const MAX_SHIFT_MS = 300_000;

function seconds(ms: number): string {
  return `${ms >= 0 ? '+' : '-'}${(Math.abs(ms) / 1000).toFixed(1)} s`;
}

/**
 * WeChat's clock as measured from its answers (Wechatpay-Timestamp, else Date) against ours, fed by
 * the APIv3 HTTP client on every answer. Past `maxMs` (WECHATPAY_CLOCK_SKEW_MAX) /health reports
 * "degraded" and one warning names the offset (once per excursion, not every request).
 */
export class ClockSkew {
  private readonly logger = new Logger('ClockSkew');
  private estimate: SkewEstimate | null = null;
  private warned = false;

  constructor(readonly maxMs = 30_000) {}

  /**
   * One answer's headers; `sentMs` and `receivedMs` by our clock. The answer was stamped somewhere in
   * between (taken as the middle) and within its whole second (taken as the middle too).
   */
  observe(headers: { timestamp?: string; date?: string }, sentMs: number, receivedMs: number): void {
    const local = (sentMs + receivedMs) / 2;
    if (headers.timestamp && /^\d{1,12}$/.test(headers.timestamp)) {
      this.record(Number(headers.timestamp) * 1000 + 500, local, 'Wechatpay-Timestamp');
    } else if (headers.date) {
      const date = Date.parse(headers.date);
      if (Number.isFinite(date)) this.record(date + 500, local, 'Date');
    }
  }

  /** A WeChat answer's time (ms since epoch) as seen at `localMs` by our clock. */
  record(remoteMs: number, localMs = Date.now(), source: SkewSource = 'Wechatpay-Timestamp'): void {
    if (!Number.isFinite(remoteMs) || !Number.isFinite(localMs)) return;
    const offsetMs = Math.round(remoteMs - localMs);
    const previous = this.estimate;
    const keep = previous !== null && Math.abs(offsetMs - previous.offsetMs) <= NOISE_MS;
    this.estimate = { offsetMs: keep ? previous.offsetMs : offsetMs, measuredAt: new Date(localMs), source };
    this.announce();
  }

  current(): SkewEstimate | null {
    return this.estimate;
  }

  /** WeChat's clock minus ours in ms, null before a first answer (for health and metrics). */
  currentSkewMs(): number | null {
    return this.estimate?.offsetMs ?? null;
  }

  /** The offset is past WECHATPAY_CLOCK_SKEW_MAX. */
  get degraded(): boolean {
    return this.estimate !== null && Math.abs(this.estimate.offsetMs) > this.maxMs;
  }

  /**
   * What to add to an expiry sent to WeChat (time_expire) so that it stays as far ahead of WeChat's
   * clock as it is ahead of ours: the offset in whole seconds, 0 while unknown or within measurement
   * noise, at most 5 minutes either way.
   */
  expiryShiftMs(): number {
    const offset = this.estimate?.offsetMs ?? 0;
    if (Math.abs(offset) < SHIFT_DEADBAND_MS) return 0;
    const shift = Math.round(offset / 1000) * 1000;
    return Math.max(-MAX_SHIFT_MS, Math.min(MAX_SHIFT_MS, shift));
  }

  /** Words for logs: "WeChat's clock is +360.0 s from ours". */
  describe(): string | undefined {
    return this.estimate ? `WeChat's clock is ${seconds(this.estimate.offsetMs)} from ours (measured from ${this.estimate.source})` : undefined;
  }

  private announce(): void {
    const estimate = this.estimate!;
    if (this.degraded && !this.warned) {
      this.warned = true;
      this.logger.warn(
        `Clock skew: WeChat's clock is ${seconds(estimate.offsetMs)} ${estimate.offsetMs > 0 ? 'ahead of' : 'behind'} this server's ` +
          `(offsetMs=${estimate.offsetMs}, measured from ${estimate.source} of WeChat's answers), beyond WECHATPAY_CLOCK_SKEW_MAX ` +
          `(${this.maxMs / 1000} s). Fix this server's time (NTP): at 5 minutes every signature fails (WeChat answers 401 SIGN_ERROR, ` +
          `notifications are refused as stale). Meanwhile time_expire is sent shifted by the measured offset.`,
      );
    } else if (!this.degraded && this.warned) {
      this.warned = false;
      this.logger.log(`Clock skew back within WECHATPAY_CLOCK_SKEW_MAX: WeChat's clock is ${seconds(estimate.offsetMs)} from this server's`);
    }
  }
}
