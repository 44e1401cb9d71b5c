import { Injectable } from '@nestjs/common';

/**
 * WeChat's clock as measured from its signed answers (Wechatpay-Timestamp, Date) against ours.
 * offsetMs > 0: WeChat's clock is ahead of ours. `current()` is null until a first measurement.
 * NOTE: not yet fed by the WeChat client (issue 17 item 4 unfinished); `record` is the hook.
 */
@Injectable()
export class ClockSkew {
  private last: { offsetMs: number; measuredAt: Date } | null = null;

  /** A signed answer's time (ms since epoch) as seen at `localMs` by our clock. */
  record(remoteMs: number, localMs = Date.now()): void {
    if (!Number.isFinite(remoteMs)) return;
    this.last = { offsetMs: remoteMs - localMs, measuredAt: new Date(localMs) };
  }

  current(): { offsetMs: number; measuredAt: Date } | null {
    return this.last;
  }
}
