import { SchedulerRegistry } from '@nestjs/schedule';
import { getDataSourceToken } from '@nestjs/typeorm';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DataSource } from 'typeorm';
import { BillingJobs } from '../../src/billing/billing.jobs';
import { Clock, FixedClock } from '../../src/common/clock';
import { dbDate } from '../../src/database/transactions';
import { TRADE_BILL_ALL_HEADER, addToTotals, emptyTotals, summaryLines, tradeBillLine, TradeBillRow } from '../../src/sandbox/bills/trade-bill';
import { Shop } from '../helpers/shop';
import { startTestApp } from '../helpers/test-app';

const HOUR = 3600_000;
const DAY = 24 * HOUR;

/* Once per API version (issue 14): the same billing jobs through the payment port (v3 tradebill, or v2 downloadbill). */
describe.each(['v3', 'v2'] as const)('daily reconciliation job with WECHATPAY_API_VERSION=%s', (version) => {
  const VERSION = { WECHATPAY_API_VERSION: version };

  it('refuses an invalid RECONCILE_CRON at start-up with an error naming the variable', async () => {
    for (const cron of ['61 10 * * *', '0 10 * *', 'at ten']) {
      const start = startTestApp({ schedules: true, env: { RECONCILE_CRON: cron, ...VERSION } });
      await expect(start).rejects.toThrow(/RECONCILE_CRON: must be a cron expression such as "0 10 \* \* \*"/);
      await expect(start).rejects.toMatchObject({ name: 'ConfigValidationError' });
    }
  });

  it('schedules the run at RECONCILE_CRON, Asia/Shanghai time', async () => {
    const t = await startTestApp({ schedules: true, env: { RECONCILE_CRON: '30 9 * * *', ...VERSION } });
    try {
      const job = t.app.get(SchedulerRegistry).getCronJob('billing.reconcile');
      const next = job.nextDate().toJSDate();
      // 09:30 in Beijing is 01:30 UTC, within the next day
      expect([next.getUTCHours(), next.getUTCMinutes()]).toEqual([1, 30]);
      expect(next.getTime() - Date.now()).toBeLessThanOrEqual(DAY);
    } finally {
      await t.close();
    }
  });

  it('a quiet day (WeChat answers NO_STATEMENT_EXIST; v2 "No Bill Exist") is "no trades that day": reconciled, not a failure logged at error (the daily job runs the same)', async () => {
    const shop = await Shop.start({ captureLogs: true, env: VERSION });
    try {
      // 20 days ago: a day nobody traded on, whatever other suites left in a shared sandbox store.
      const date = new Date(Date.now() + 8 * HOUR - 20 * DAY).toISOString().slice(0, 10);
      const result = (await shop.admin().post(`/admin/reconciliations?date=${date}`).expect(200)).body;
      expect(result).toMatchObject({ date, status: 'done' });
      expect(result.summary).toMatchObject({ noTradesAtWechat: true, billRows: 0, billSummaryConsistent: true, differenceCount: 0 });
      expect(shop.t.logs.filter((line) => Number(line.level) >= 50)).toEqual([]);
      const stored = await shop.admin().get(`/admin/reconciliations/${date}`).expect(200);
      expect(stored.body).toMatchObject({ status: 'done', summary: { noTradesAtWechat: true } });
    } finally {
      await shop.close();
    }
  });

  it('reconciles yesterday as a Beijing date (fixed clock at 00:30 Beijing), audited; skipped while that day is running elsewhere', async () => {
    // The last 00:30 in Beijing (16:30 UTC the day before): Beijing's yesterday is not UTC's yesterday.
    const now = Date.now();
    let at = Math.floor((now + 8 * HOUR) / DAY) * DAY - 8 * HOUR + 30 * 60_000;
    if (at > now) at -= DAY;
    const beijingDate = new Date(at + 8 * HOUR).toISOString().slice(0, 10);
    const yesterday = new Date(at + 8 * HOUR - DAY).toISOString().slice(0, 10);
    const utcYesterday = new Date(at - DAY).toISOString().slice(0, 10);
    expect(utcYesterday).not.toBe(yesterday);

    const clock = new FixedClock(new Date(at));
    const shop = await Shop.start({ env: VERSION, override: (b) => b.overrideProvider(Clock).useValue(clock) });
    try {
      // WeChat (the sandbox) lives at the same moment as our clock — for its business time and for the
      // signatures too, since our requests are signed at our (fixed) time: WeChat's own clock is moved
      // (wechatSkewMs), not only its business time.
      await shop.sandbox.setWechatSkew(at - Date.now());
      const { appid, mchid } = await shop.sandbox.merchant();
      const row: TradeBillRow = {
        time: `${yesterday} 23:59:00`,
        appid,
        mchid,
        transactionId: '4200000000000000000000000001',
        outTradeNo: 'W_UNKNOWN_TO_US_0001',
        openid: 'o_cron',
        tradeType: 'JSAPI',
        tradeState: 'SUCCESS',
        bankType: 'OTHERS',
        total: 990,
        body: 'cron',
      };
      const totals = emptyTotals();
      addToTotals(totals, row);
      mkdirSync(join(shop.t.dataDir, 'bills'), { recursive: true });
      const path = join(shop.t.dataDir, 'bills', `${yesterday}.csv.gz`);
      writeFileSync(path, gzipSync(Buffer.from('\uFEFF' + TRADE_BILL_ALL_HEADER.join(',') + '\r\n' + tradeBillLine(row) + summaryLines(totals))));
      await shop.sandbox.registerTradeBill(yesterday, path);

      const jobs = shop.t.app.get(BillingJobs);
      await shop.sandbox.resetCalls();
      await jobs.reconcileYesterday();
      // through the configured API version's bill download only
      if (version === 'v3') expect(await shop.sandbox.callsTo('v3/bill/tradebill')).toBeGreaterThan(0);
      else expect(await shop.sandbox.calls()).toMatchObject({ 'pay/downloadbill': expect.any(Number) });
      expect(await shop.sandbox.callsTo(version === 'v3' ? 'pay/downloadbill' : 'v3/bill/tradebill')).toBe(0);

      const stored = (await shop.admin().get(`/admin/reconciliations/${yesterday}`).expect(200)).body;
      expect(stored).toMatchObject({ date: yesterday, status: 'done', summary: { billRows: 1, byType: { only_in_wechat: 1 } } });
      expect(stored.differences).toEqual([expect.objectContaining({ type: 'only_in_wechat', outTradeNo: 'W_UNKNOWN_TO_US_0001', wechatAmount: 990 })]);
      await shop.admin().get(`/admin/reconciliations/${utcYesterday}`).expect(404);
      await shop.admin().get(`/admin/reconciliations/${beijingDate}`).expect(404);
      const audit = (await shop.admin().get('/admin/audit?action=reconciliation.daily').expect(200)).body.items;
      expect(audit).toEqual([
        expect.objectContaining({ tokenFingerprint: 'system', target: yesterday, outcome: 'ok', detail: expect.objectContaining({ status: 'done', differenceCount: 1, appliedFromBill: 0 }) }),
      ]);

      // another instance holds that day's lease: the job skips it (no error, no audit row)
      const ds = shop.t.app.get<DataSource>(getDataSourceToken());
      await ds.query('DELETE FROM job_leases WHERE name = ?', [`billing.reconcile.${yesterday}`]);
      await ds.query('INSERT INTO job_leases (name, owner, expires_at, updated_at) VALUES (?, ?, ?, ?)', [
        `billing.reconcile.${yesterday}`,
        'other-host:1:abcd',
        dbDate(ds, new Date(at + HOUR)),
        dbDate(ds, new Date(at)),
      ]);
      await jobs.reconcileYesterday();
      expect((await shop.admin().get('/admin/audit?action=reconciliation.daily').expect(200)).body.items).toHaveLength(1);
    } finally {
      await shop.sandbox.setWechatSkew(0).catch(() => undefined);
      await shop.close();
    }
  });
});
