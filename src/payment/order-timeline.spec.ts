import { payStepEntries, TimelineEntry, withPaySteps } from './order-timeline';

const NO = 'T20261204000000000001';
const at = (ms: number) => new Date(Date.UTC(2026, 11, 4, 10, 0, 0, ms));
const iso = (ms: number) => at(ms).toISOString();
const attempt = (seq: number, channel: 'jsapi' | 'native', prepayMs: number | null, prepayId: string | null = null) => ({
  outTradeNo: seq === 1 ? NO : `${NO}_${seq}`,
  seq,
  channel,
  prepayId,
  prepayAt: prepayMs === null ? null : at(prepayMs),
  timeExpire: '2026-12-04T18:15:00+08:00',
});
const entry = (type: string, ms: number, detail: unknown = null): TimelineEntry => ({ type, at: iso(ms), detail });

describe("the timeline's pay steps, from the attempts' rows", () => {
  it('a prepaid attempt is its prepay entry (the JSON pay once stored); a later one is also attempt_opened, naming the one before', () => {
    expect(payStepEntries(NO, [attempt(1, 'jsapi', 10, 'wx_1'), attempt(2, 'native', 20)], [])).toEqual([
      { type: 'prepay', at: iso(10), detail: { channel: 'jsapi', attempt: NO, prepayId: 'wx_1', reused: false, timeExpire: '2026-12-04T18:15:00+08:00' } },
      { type: 'attempt_opened', at: iso(20), detail: { attempt: `${NO}_2`, channel: 'native', previous: NO } },
      { type: 'prepay', at: iso(20), detail: { channel: 'native', attempt: `${NO}_2`, reused: false, timeExpire: '2026-12-04T18:15:00+08:00' } },
    ]);
    // the key order of the stored JSON too
    expect(Object.keys(payStepEntries(NO, [attempt(1, 'jsapi', 10, 'wx_1')], [])[0].detail as object)).toEqual(['channel', 'attempt', 'prepayId', 'reused', 'timeExpire']);
  });

  it('an attempt not prepaid (a paid one found without a prepay, or one whose prepay failed) has no entries', () => {
    expect(payStepEntries(NO, [attempt(1, 'jsapi', null)], [])).toEqual([]);
  });

  it('entries stored by earlier versions are not shown twice: rows naming the attempt, and pre-attempt prepay rows (no attempt named) for the first', () => {
    const stored = [
      entry('prepay', 10, { prepayId: 'wx_1', reused: false }),
      entry('attempt_opened', 15, { attempt: `${NO}_2`, channel: 'native', previous: NO }),
      entry('prepay', 20, { channel: 'native', attempt: `${NO}_2`, reused: false, timeExpire: 'x' }),
    ];
    expect(payStepEntries(NO, [attempt(1, 'jsapi', 10, 'wx_1'), attempt(2, 'native', 20)], stored)).toEqual([]);
    // issue 13 opened an attempt (stored attempt_opened) before prepaying it; prepaid now, only its prepay is derived
    const opened = payStepEntries(NO, [attempt(1, 'jsapi', 10, 'wx_1'), attempt(2, 'native', 30)], stored.slice(0, 2));
    expect(opened.map((e) => e.type)).toEqual(['prepay']);
    // an unnamed prepay row is the first attempt's only
    expect(payStepEntries(NO, [attempt(2, 'native', 30)], stored.slice(0, 1)).map((e) => e.type)).toEqual(['attempt_opened', 'prepay']);
  });
});

describe('pay steps placed among the stored entries', () => {
  const derived = payStepEntries(NO, [attempt(1, 'jsapi', 100, 'wx_1'), attempt(2, 'native', 200)], []);

  it('by time, stored entries keeping the order they were written in', () => {
    const stored = [
      entry('prepay_failed', 50),
      entry('switch-check:NOTPAY', 150),
      entry('attempt_closed', 160),
      entry('notification:applied', 300),
      entry('query:SUCCESS', 250), // written later, clocks apart: stays after the notification
    ];
    expect(withPaySteps(stored, derived).map((e) => `${e.type}@${Date.parse(e.at) % 1000}`)).toEqual([
      'prepay_failed@50',
      'prepay@100',
      'switch-check:NOTPAY@150',
      'attempt_closed@160',
      'attempt_opened@200',
      'prepay@200',
      'notification:applied@300',
      'query:SUCCESS@250',
    ]);
  });

  it('in the same millisecond: what pay records before its write (query and close of the previous attempt, a failed prepay) first, anything else after', () => {
    const stored = [entry('prepay_failed', 100), entry('switch-check:NOTPAY', 200), entry('attempt_closed', 200), entry('notification:applied', 200)];
    expect(withPaySteps(stored, derived).map((e) => e.type)).toEqual([
      'prepay_failed',
      'prepay',
      'switch-check:NOTPAY',
      'attempt_closed',
      'attempt_opened',
      'prepay',
      'notification:applied',
    ]);
  });

  it('no stored entries: the pay steps alone; no pay steps: the stored entries as they are', () => {
    expect(withPaySteps([], derived)).toEqual(derived);
    const stored = [entry('closed', 5)];
    expect(withPaySteps(stored, [])).toBe(stored);
  });
});
