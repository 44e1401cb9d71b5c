import { Injectable } from '@nestjs/common';

/** What never changes about a written payment attempt: its order's number and the appid it was prepaid with. */
export interface AttemptIdentity {
  orderNo: string;
  /** null: none recorded (our own appid). */
  appid: string | null;
}

/** Entries kept (~150 bytes each): the attempts of the last hours' checkouts on a busy instance. */
const MAX_ENTRIES = 20_000;

/**
 * Attempt number → its order and appid, for attempts written and committed (or read) on this
 * instance: a bounded LRU, so the payment applier can move an order whose attempt it knows without
 * reading payment_attempts first. Only what is immutable once an attempt is written is kept (an
 * attempt's out_trade_no, order and appid are never updated and attempts are never deleted), so an
 * entry cannot go stale and N instances need no invalidation; whatever changes (status, payment) is
 * not here. A miss reads the attempt as before.
 */
@Injectable()
export class AttemptDirectory {
  private readonly entries = new Map<string, AttemptIdentity>();
  private readonly max = MAX_ENTRIES;

  get(outTradeNo: string): AttemptIdentity | undefined {
    const entry = this.entries.get(outTradeNo);
    if (entry) {
      this.entries.delete(outTradeNo);
      this.entries.set(outTradeNo, entry);
    }
    return entry;
  }

  /** Only for an attempt whose row is committed (a rolled-back one must not be vouched for). */
  remember(outTradeNo: string, orderNo: string, appid: string | null): void {
    this.entries.delete(outTradeNo);
    this.entries.set(outTradeNo, { orderNo, appid });
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
  }
}
