import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { PaymentJobs } from '../../src/payment/payment.jobs';
import { RefundJobs } from '../../src/refund/refund.jobs';
import { today } from '../helpers/dates';
import { liveEnv, removeLiveEnvKeys } from '../helpers/live-env';
import { Login } from '../helpers/login';
import { useMysql } from '../helpers/mysql';
import { Shop } from '../helpers/shop';
import { startTestApp } from '../helpers/test-app';

afterAll(removeLiveEnvKeys);

/** One sample of the Prometheus text: name, labels, value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

/** The value of the sample with this name whose labels include `labels` (summed when several match); 0 when none. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

function has(samples: Sample[], name: string): boolean {
  return samples.some((s) => s.name === name);
}

describe('GET /metrics: the counters an operator alerts on', () => {
  let shop: Shop;
  let shopper: Login;
  let productId: number;

  beforeAll(async () => {
    // The sandbox settles a refund 30 min / 1000 = 1.8 s after accepting it: long enough to see it PROCESSING.
    shop = await Shop.start({ env: { SANDBOX_REFUND_DELAY: '30m', REFUND_QUERY_AFTER: '0s', METRICS_REFUND_PROCESSING_AFTER: '0s' } });
    shopper = await shop.login('o_metrics_shopper');
    productId = (await shop.product('指标测试', 1000)).id;
  });
  afterAll(() => shop?.close());

  const scrape = async () => {
    const res = await shop.http().get('/metrics').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    return parseMetrics(res.text);
  };

  it('counts a checkout, a refund and a rejected notification, and the WeChat calls behind them', async () => {
    const before = await scrape();
    expect(value(before, 'whp_payments_applied_total')).toBe(0);

    // A checkout: prepay, paid in the sandbox, applied from WeChat's notification.
    const no = await shop.paidOrder(shopper, [{ productId, quantity: 1 }]);
    await request(shop.baseUrl).get('/jssdk/config').query({ url: `${shop.baseUrl}/` }).expect(200);

    // A refund, seen PROCESSING by the backlog gauge (threshold 0) and by the refund job, then settled.
    const refund = await shop.admin().post('/admin/refunds').send({ outTradeNo: no, amount: 300, reason: '指标' }).expect(201);
    const processing = await scrape();
    expect(value(processing, 'whp_refunds_processing_stale')).toBe(1);
    await shop.t.app.get(RefundJobs).run();
    await shop.sandbox.waitForNotification({ outRefundNo: refund.body.outRefundNo });

    // A forged notification (bad signature): refused with 401, counted with its reason.
    const [forged] = await shop.sandbox.deliver({ outTradeNo: no }, { tamper: 'signature' });
    expect(forged.status).toBe(401);

    const after = await scrape();
    expect(value(after, 'whp_payments_applied_total', { source: 'notification' })).toBe(1);
    expect(value(after, 'whp_payments_applied_total')).toBe(1);
    expect(value(after, 'whp_notifications_total', { kind: 'transaction', outcome: 'applied' })).toBe(1);
    expect(value(after, 'whp_notifications_total', { kind: 'transaction', outcome: 'rejected', reason: 'bad_signature' })).toBe(1);
    expect(value(after, 'whp_notifications_total', { kind: 'refund', outcome: 'applied' })).toBe(1);
    expect(value(after, 'whp_refunds_processing_stale')).toBe(0);

    // WeChat calls by endpoint and status, with their latency histogram.
    expect(value(after, 'whp_wechat_requests_total', { api: 'pay', endpoint: 'v3/pay/transactions/jsapi', status: '200' })).toBe(1);
    expect(value(after, 'whp_wechat_requests_total', { api: 'pay', endpoint: 'v3/refund/domestic/refunds', status: '200' })).toBe(1);
    expect(value(after, 'whp_wechat_requests_total', { api: 'pay', endpoint: 'v3/refund/domestic/refunds/query', status: '200' })).toBeGreaterThanOrEqual(1);
    expect(value(after, 'whp_wechat_request_duration_seconds_count', { api: 'pay', endpoint: 'v3/pay/transactions/jsapi' })).toBe(1);
    expect(value(after, 'whp_wechat_request_duration_seconds_bucket', { api: 'pay', endpoint: 'v3/pay/transactions/jsapi', le: '+Inf' })).toBe(1);
    // No order or refund number ever becomes a label value.
    expect(after.filter((s) => Object.values(s.labels).some((v) => v.includes(no)))).toEqual([]);

    // Token and ticket fetches, the refund job's run, and the process metrics.
    expect(value(after, 'whp_wechat_token_refreshes_total', { kind: 'access_token', outcome: 'success' })).toBe(1);
    expect(value(after, 'whp_wechat_token_refreshes_total', { kind: 'jsapi_ticket', outcome: 'success' })).toBe(1);
    expect(value(after, 'whp_wechat_requests_total', { api: 'mp', endpoint: 'cgi-bin/ticket/getticket', status: '200' })).toBe(1);
    expect(value(after, 'whp_job_runs_total', { job: 'refund.query', outcome: 'success' })).toBe(1);
    expect(value(after, 'whp_job_last_success_timestamp_seconds', { job: 'refund.query' })).toBeGreaterThan(Date.now() / 1000 - 60);
    // WeChat's clock as measured from the sandbox's signed answers (the same clock as ours here).
    expect(has(after, 'whp_wechat_clock_skew_seconds')).toBe(true);
    expect(Math.abs(value(after, 'whp_wechat_clock_skew_seconds'))).toBeLessThan(5);
    expect(has(after, 'whp_nodejs_eventloop_lag_p99_seconds')).toBe(true);
    // The MySQL/MariaDB pool by state (SQLite has none).
    if (useMysql()) {
      expect(value(after, 'whp_db_pool_connections', { state: 'max' })).toBe(20);
      expect(value(after, 'whp_db_pool_connections', { state: 'in_use' }) + value(after, 'whp_db_pool_connections', { state: 'idle' })).toBeGreaterThan(0);
    } else {
      expect(has(after, 'whp_db_pool_connections')).toBe(false);
    }
    expect(has(after, 'whp_process_resident_memory_bytes')).toBe(true);
  });

  it('serves every metric the example alert rules (docs/prometheus-alerts.yml) use', async () => {
    const text = (await shop.http().get('/metrics').expect(200)).text;
    const rules = readFileSync(join(__dirname, '..', '..', 'docs', 'prometheus-alerts.yml'), 'utf8');
    const used = [...new Set([...rules.matchAll(/\bwhp_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|count|sum)$/, '')))];
    expect(used.length).toBeGreaterThan(10);
    expect(used.filter((name) => !new RegExp(`^# TYPE ${name} `, 'm').test(text))).toEqual([]);
  });

  it('reports reconciliation differences by type', async () => {
    // A payment whose notification is dropped, then the day's reconciliation.
    await shop.sandbox.dropNotifications(true);
    try {
      const no = await shop.placeOrder(shopper, [{ productId, quantity: 1 }]);
      await shop.sandbox.pay(await shop.prepay(shopper, no));
    } finally {
      await shop.sandbox.dropNotifications(false);
    }
    const run = await shop.admin().post(`/admin/reconciliations?date=${today()}`).expect(200);
    const samples = await scrape();
    expect(value(samples, 'whp_reconciliation_runs_total', { status: 'done' })).toBe(1);
    expect(value(samples, 'whp_reconciliation_differences_total', { type: 'only_in_wechat' })).toBe(run.body.summary.byType.only_in_wechat);
    expect(run.body.summary.byType.only_in_wechat).toBeGreaterThanOrEqual(1);
    // The reconciliation applied that payment from the bill.
    expect(value(samples, 'whp_payments_applied_total', { source: 'bill' })).toBe(1);
  });
});

describe('GET /metrics: backlogs and protection', () => {
  it('counts an unpaid order past its expiry until the close job closes it; needs METRICS_TOKEN when one is set', async () => {
    const shop = await Shop.start({ env: { ORDER_CLOSE_AFTER: '1s', METRICS_UNPAID_OVERDUE_AFTER: '0s', METRICS_TOKEN: 'metrics-token-0123456789' } });
    try {
      const missing = await shop.http().get('/metrics').expect(401);
      expect(missing.body).toMatchObject({ code: 'METRICS_TOKEN_MISSING', message: expect.stringContaining('METRICS_TOKEN') });
      const wrong = await shop.http().get('/metrics').set('Authorization', 'Bearer not-the-metrics-token').expect(401);
      expect(wrong.body.code).toBe('METRICS_TOKEN_INVALID');
      // The admin token is not the metrics token.
      await shop.http().get('/metrics').set('Authorization', 'Bearer test-admin-token-0123456789').expect(401);
      const scrape = async () =>
        parseMetrics((await shop.http().get('/metrics').set('Authorization', 'Bearer metrics-token-0123456789').expect(200)).text);

      const shopper = await shop.login('o_metrics_backlog');
      const productId = (await shop.product('过期订单', 100)).id;
      await shop.placeOrder(shopper, [{ productId, quantity: 1 }]);
      expect(value(await scrape(), 'whp_orders_unpaid_overdue')).toBe(0);
      // expires_at is rounded up to the second: at most 2 s after the order.
      await new Promise((r) => setTimeout(r, 2300));
      expect(value(await scrape(), 'whp_orders_unpaid_overdue')).toBe(1);
      await shop.t.app.get(PaymentJobs).closeExpired();
      const samples = await scrape();
      expect(value(samples, 'whp_orders_unpaid_overdue')).toBe(0);
      expect(value(samples, 'whp_job_runs_total', { job: 'payment.close', outcome: 'success' })).toBe(1);
    } finally {
      await shop.close();
    }
  });

  it('live mode without METRICS_TOKEN has no /metrics at all (404); the probes answer', async () => {
    const t = await startTestApp({ env: liveEnv() });
    try {
      await request(t.baseUrl).get('/metrics').expect(404);
      await request(t.baseUrl).get('/metrics').set('Authorization', 'Bearer a-live-admin-token-of-some-length').expect(404);
      expect((await request(t.baseUrl).get('/health/live').expect(200)).body).toMatchObject({ status: 'ok' });
      const ready = await request(t.baseUrl).get('/health/ready').expect(200);
      expect(ready.body).toMatchObject({ status: 'ok', info: { database: { status: 'up' }, migrations: { status: 'up' } } });
      expect((await request(t.baseUrl).get('/health').expect(200)).body.info).not.toHaveProperty('migrations');
    } finally {
      await t.close();
    }
    const withToken = await startTestApp({ env: { ...liveEnv, METRICS_TOKEN: 'live-metrics-token-0123456789' } });
    try {
      await request(withToken.baseUrl).get('/metrics').expect(401);
      const res = await request(withToken.baseUrl).get('/metrics').set('Authorization', 'Bearer live-metrics-token-0123456789').expect(200);
      expect(has(parseMetrics(res.text), 'whp_notifications_total') || res.text.includes('# TYPE whp_notifications_total counter')).toBe(true);
    } finally {
      await withToken.close();
    }
  });
});
