import { Metrics, jobName, notificationOutcome } from './metrics.service';

describe('metric labels', () => {
  it('names a job by its lease without the date (and sub-merchant)', () => {
    expect(jobName('billing.reconcile.2026-11-30')).toBe('billing.reconcile');
    expect(jobName('billing.reconcile.2026-11-30.1900000201')).toBe('billing.reconcile');
    expect(jobName('refund.query')).toBe('refund.query');
  });

  it.each([
    ['applied', { outcome: 'applied', reason: '' }],
    ['rejected:bad_signature', { outcome: 'rejected', reason: 'bad_signature' }],
    ['decrypt_failed', { outcome: 'rejected', reason: 'decrypt_failed' }],
    ['refund:duplicate', { outcome: 'duplicate', reason: '' }],
    ['anomaly', { outcome: 'anomaly', reason: '' }],
  ])('notification stored as %s', (stored, labels) => expect(notificationOutcome(stored)).toEqual(labels));
});

describe('Metrics.scrapeGauge', () => {
  it('reads at scrape time, and a failing read leaves no sample instead of failing the scrape', async () => {
    const metrics = new Metrics();
    let n = 1;
    metrics.scrapeGauge('test_backlog', 'a test gauge', () => n);
    metrics.scrapeGauge('test_broken', 'a gauge whose source is down', async () => {
      throw new Error('database is down');
    });
    expect(await metrics.text()).toMatch(/^whp_test_backlog 1$/m);
    n = 7;
    const text = await metrics.text();
    expect(text).toMatch(/^whp_test_backlog 7$/m);
    expect(text).not.toMatch(/^whp_test_broken /m);
  });
});
