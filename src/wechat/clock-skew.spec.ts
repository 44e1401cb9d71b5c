import { Logger } from '@nestjs/common';
import { ClockSkew } from './clock-skew';

describe('ClockSkew', () => {
  const T = Date.parse('2026-12-01T08:00:00Z');
  let warn: jest.SpyInstance;

  beforeEach(() => {
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  });
  afterEach(() => jest.restoreAllMocks());

  it('is unknown (null, no shift, not degraded) before a first answer', () => {
    const skew = new ClockSkew();
    expect(skew.currentSkewMs()).toBeNull();
    expect(skew.expiryShiftMs()).toBe(0);
    expect(skew.degraded).toBe(false);
  });

  it('reads Wechatpay-Timestamp (middle of its second) against the middle of the trip, else Date', () => {
    const skew = new ClockSkew();
    skew.observe({ timestamp: String((T + 60_000) / 1000) }, T - 100, T + 100);
    expect(skew.currentSkewMs()).toBe(60_500);
    expect(skew.current()?.source).toBe('Wechatpay-Timestamp');
    const other = new ClockSkew();
    other.observe({ date: new Date(T - 120_000).toUTCString() }, T, T);
    expect(other.currentSkewMs()).toBe(-119_500);
    expect(other.current()?.source).toBe('Date');
    other.observe({ timestamp: 'garbage', date: 'not a date' }, T, T);
    expect(other.currentSkewMs()).toBe(-119_500);
  });

  it('keeps its estimate through measurement noise, follows a real change', () => {
    const skew = new ClockSkew();
    skew.record(T + 10_000, T);
    skew.record(T + 10_900, T);
    skew.record(T + 9_200, T);
    expect(skew.currentSkewMs()).toBe(10_000);
    skew.record(T + 40_000, T);
    expect(skew.currentSkewMs()).toBe(40_000);
  });

  it('shifts expiries by whole seconds, not within noise, at most 5 minutes', () => {
    const skew = new ClockSkew();
    skew.record(T + 1_400, T);
    expect(skew.expiryShiftMs()).toBe(0);
    skew.record(T + 60_400, T);
    expect(skew.expiryShiftMs()).toBe(60_000);
    skew.record(T - 3_600_000, T);
    expect(skew.expiryShiftMs()).toBe(-300_000);
  });

  it('warns once per excursion past the maximum, naming the offset', () => {
    const skew = new ClockSkew(30_000);
    skew.record(T + 20_000, T);
    expect(warn).not.toHaveBeenCalled();
    for (let i = 0; i < 5; i++) skew.record(T + 45_000 + i * 100, T);
    expect(skew.degraded).toBe(true);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0][0]).toContain("WeChat's clock is +45.0 s ahead of this server's");
    skew.record(T, T);
    expect(skew.degraded).toBe(false);
    skew.record(T - 31_000, T);
    expect(warn).toHaveBeenCalledTimes(2);
    expect(warn.mock.calls[1][0]).toContain('-31.0 s behind');
  });
});
