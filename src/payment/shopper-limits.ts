import { Injectable } from '@nestjs/common';
import type { SessionUser } from '../auth/session-user';
import { Clock } from '../common/clock';
import { TooManyRequestsError } from '../common/errors/app-error';
import { RateWindow } from '../common/rate-window';
import { AppConfig } from '../config/app-config';

export type ShopperAction = 'create' | 'pay' | 'read';

const WORDS: Record<ShopperAction, string> = { create: 'orders placed', pay: 'payment requests', read: 'order reads' };

/**
 * Per-shopper request throttles of the shop API (POST /orders, POST /orders/:no/pay, reads, and the
 * WeChat queries reads may cause), counted per user in one-minute windows in this process. They never
 * apply to the notification endpoints or the admin API, which do not go through here.
 */
@Injectable()
export class ShopperLimits {
  private readonly windows: Record<ShopperAction, RateWindow>;
  private readonly queryOnRead: RateWindow | undefined;

  constructor(config: AppConfig, clock: Clock) {
    const limits = config.orders.limits;
    const now = () => clock.nowMs();
    this.windows = {
      create: new RateWindow(limits.createPerMinute, now),
      pay: new RateWindow(limits.payPerMinute, now),
      read: new RateWindow(limits.readPerMinute, now),
    };
    this.queryOnRead = limits.queryOnReadPerMinute > 0 ? new RateWindow(limits.queryOnReadPerMinute, now) : undefined;
  }

  /** Counts one request; past the limit a 429 RATE_LIMITED with Retry-After. */
  take(user: SessionUser, action: ShopperAction): void {
    const retryAfterS = this.windows[action].hit(String(user.userId));
    if (retryAfterS === undefined) return;
    throw new TooManyRequestsError('RATE_LIMITED', `too many ${WORDS[action]} from this shopper in a minute; retry after ${retryAfterS} s`, retryAfterS, { action });
  }

  /** Whether a read may ask WeChat now (counted); false = answer what we know. */
  mayQueryOnRead(user: SessionUser): boolean {
    return this.queryOnRead !== undefined && this.queryOnRead.hit(String(user.userId)) === undefined;
  }
}
