import { Injectable } from '@nestjs/common';

/**
 * The sandbox's own time. Two independent shifts, both set by the control API:
 * - `wechatSkewMs`: simulated WeChat's clock is off from real time (off by default). It moves
 *   everything the sandbox stamps or checks: answer and notification signatures (Wechatpay-Timestamp,
 *   Date), the check of requests' timestamps, time_expire and every business expiry.
 * - the business shift (`shiftMs`, expiry tests): business time only — codes, tokens, tickets,
 *   prepays, time_expire, bill URLs — never signature time (answers and notifications carry real
 *   timestamps, requests are checked against real time).
 */
@Injectable()
export class SandboxClock {
  private offsetMs = 0;
  private skewMs = 0;

  /** Business time: real time + WeChat's clock skew + the business shift. */
  now(): number {
    return Date.now() + this.skewMs + this.offsetMs;
  }

  seconds(): number {
    return Math.floor(this.now() / 1000);
  }

  /**
   * Time of signatures (answers' and notifications' Wechatpay-Timestamp, Date, the check of requests'
   * timestamps): real time + WeChat's clock skew, never the business shift, so that a correct client
   * keeps working while business time is moved.
   */
  signatureNow(): number {
    return Date.now() + this.skewMs;
  }

  signatureSeconds(): number {
    return Math.floor(this.signatureNow() / 1000);
  }

  shift(ms: number): void {
    this.offsetMs += ms;
  }

  /** Simulated WeChat's clock is `ms` ahead of real time (negative: behind). */
  setWechatSkew(ms: number): void {
    this.skewMs = ms;
  }

  /** The business shift back to 0 (WeChat's skew stays: setWechatSkew(0) ends it). */
  reset(): void {
    this.offsetMs = 0;
  }

  get offset(): number {
    return this.offsetMs;
  }

  get wechatSkewMs(): number {
    return this.skewMs;
  }
}
