import { getDataSourceToken } from '@nestjs/typeorm';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DataSource } from 'typeorm';
import { dbDate } from '../../src/database/transactions';
import { Difference, MAX_STORED_DIFFERENCES } from '../../src/billing/reconciliation.service';
import { TRADE_BILL_ALL_HEADER, TradeBillRow, emptyTotals, addToTotals, summaryLines, tradeBillLine } from '../../src/sandbox/bills/trade-bill';
import { Login } from '../helpers/login';
import { daysAgo, today } from '../helpers/dates';
import { Shop } from '../helpers/shop';


/** The sandbox merchant's appid and mchid, for bill rows that belong to us. */
const merchant = { appid: '', mchid: '' };

const random = (n: number) => randomBytes(n).toString('hex').toUpperCase().slice(0, n);

/** A WeChat bill row (sandbox format); `state` other than SUCCESS/REFUND is written into the row as is. */
function row(input: Partial<TradeBillRow> & { outTradeNo: string; total: number }, state = 'SUCCESS'): string {
  const line = tradeBillLine({
    time: `${input.time ?? '2026-01-01 10:00:00'}`,
    appid: merchant.appid,
    mchid: merchant.mchid,
    transactionId: input.transactionId ?? `4200${random(24)}`,
    openid: 'o_bill',
    tradeType: 'JSAPI',
    tradeState: state === 'REFUND' ? 'REFUND' : 'SUCCESS',
    bankType: 'OTHERS',
    body: 'crafted',
    feeMilliFen: input.total * 6,
    ...input,
  } as TradeBillRow);
  return state === 'SUCCESS' || state === 'REFUND' ? line : line.replace('`SUCCESS,', `\`${state},`);
}

/* Once per API version (issue 14): the v3 tradebill + download, or v2's downloadbill — the same bill layout, parser and reconciliation. */
describe.each(['v3', 'v2'] as const)('reconciliation with WECHATPAY_API_VERSION=%s: status and refund differences, crafted bills, storage, concurrency', (version) => {
  let shop: Shop;
  let shopper: Login;
  let productId: number;
  let ds: DataSource;

  beforeAll(async () => {
    shop = await Shop.start({ env: { SANDBOX_REFUND_DELAY: '1s', WECHATPAY_API_VERSION: version } });
    shopper = await shop.login(`o_reconcile_${version}`);
    productId = (await shop.product('对账商品', 1234)).id;
    ds = shop.t.app.get<DataSource>(getDataSourceToken());
    Object.assign(merchant, await shop.sandbox.merchant());
  });
  afterAll(() => shop?.close());

  const paid = () => shop.paidOrder(shopper, [{ productId, quantity: 1 }]);

  /** Writes a gzip bill inside the app's DATA_DIR and has the sandbox serve it as the ALL bill of `date`. */
  async function serveBill(date: string, lines: string[], options: { summary?: string } = {}): Promise<string> {
    const dir = join(shop.t.dataDir, 'bills');
    mkdirSync(dir, { recursive: true });
    const path = join(dir, `${date}-${random(6)}.csv.gz`);
    let summary = options.summary;
    if (summary === undefined) {
      // the summary WeChat would write for these rows
      const totals = emptyTotals();
      for (const line of lines) {
        const f = line.slice(1, -2).split(',`');
        const refund = f[9] === 'REFUND';
        addToTotals(totals, { tradeState: refund ? 'REFUND' : 'SUCCESS', total: Math.round(Number(f[12]) * 100), refund: Math.round(Number(f[16]) * 100), feeMilliFen: 0 } as TradeBillRow);
      }
      summary = summaryLines(totals);
    }
    writeFileSync(path, gzipSync(Buffer.from('\uFEFF' + TRADE_BILL_ALL_HEADER.join(',') + '\r\n' + lines.join('') + summary)));
    await shop.sandbox.registerTradeBill(date, path);
    return path;
  }

  const find = (differences: Difference[], type: string, key: string) => differences.find((d) => d.type === type && (d.outTradeNo === key || d.outRefundNo === key));

  it('reports ANOMALY-here-but-paid as status_mismatch, and settles refunds the bill shows paid out', async () => {
    // 1. ANOMALY here (WeChat's amount differs from the order), paid at WeChat: a status mismatch, not "only in WeChat"
    const anomaly = await shop.placeOrder(shopper, [{ productId, quantity: 1 }]);
    const anomalyPrepay = await shop.prepay(shopper, anomaly);
    await shop.sandbox.alterTransaction(anomaly, { total: 1000 });
    await shop.sandbox.pay(anomalyPrepay);
    await shop.waitForStatus(anomaly, 'ANOMALY');

    // 2. a refund whose notification was lost: PROCESSING here, SUCCESS in the bill → applied from the bill
    const lostNo = await paid();
    await shop.sandbox.dropNotifications(true);
    const lost = await shop.admin().post('/admin/refunds').send({ outTradeNo: lostNo, amount: 234, reason: '通知丢失' }).expect(201);
    await new Promise((r) => setTimeout(r, 20));
    expect((await shop.sandbox.refund(lost.body.outRefundNo)).status).toBe('SUCCESS');
    await shop.sandbox.dropNotifications(false);

    // 3. a refund here of another amount than WeChat's
    const amountNo = await paid();
    const amountRefund = await shop.admin().post('/admin/refunds').send({ outTradeNo: amountNo, amount: 300, reason: '金额不符' }).expect(201);
    await shop.sandbox.waitForNotification({ outRefundNo: amountRefund.body.outRefundNo });
    await ds.query('UPDATE refunds SET amount = 200 WHERE out_refund_no = ?', [amountRefund.body.outRefundNo]);

    // 4. a refund marked succeeded here by hand, never paid out by WeChat (it ended ABNORMAL there)
    const handNo = await paid();
    await shop.sandbox.nextRefundOutcome('ABNORMAL');
    const hand = await shop.admin().post('/admin/refunds').send({ outTradeNo: handNo, amount: 500, reason: '手工' }).expect(201);
    await shop.sandbox.waitForNotification({ outRefundNo: hand.body.outRefundNo });
    await ds.query("UPDATE refunds SET status = 'SUCCESS', success_at = ? WHERE out_refund_no = ?", [dbDate(ds, new Date()), hand.body.outRefundNo]);

    const result = (await shop.admin().post(`/admin/reconciliations?date=${today()}`).expect(200)).body;
    const d = result.differences as Difference[];
    expect(find(d, 'status_mismatch', anomaly)).toMatchObject({ ourStatus: 'ANOMALY', wechatAmount: 1000, wechatState: 'SUCCESS' });
    expect(find(d, 'only_in_wechat', anomaly)).toBeUndefined();
    expect(find(d, 'only_here', anomaly)).toBeUndefined();
    expect(find(d, 'refund_status_mismatch', lost.body.outRefundNo)).toMatchObject({ ourStatus: 'PROCESSING', wechatState: 'SUCCESS', wechatAmount: 234, action: 'applied_refund_result:applied' });
    expect(find(d, 'refund_amount_mismatch', amountRefund.body.outRefundNo)).toMatchObject({ wechatAmount: 300, ourAmount: 200 });
    expect(find(d, 'refund_only_here', hand.body.outRefundNo)).toMatchObject({ ourAmount: 500, ourStatus: 'SUCCESS' });
    expect(result.summary).toMatchObject({
      billSummaryConsistent: true,
      appliedRefundsFromBill: 1,
      appliedOutRefundNos: [lost.body.outRefundNo],
      byType: { status_mismatch: 1, refund_status_mismatch: 1, refund_amount_mismatch: 1, refund_only_here: 1 },
    });
    // the refund is settled as its notification would have: SUCCESS, on the order and its timeline
    expect((await shop.admin().get(`/admin/refunds/${lost.body.outRefundNo}`).expect(200)).body).toMatchObject({ status: 'SUCCESS', successAt: expect.any(String) });
    const order = (await shop.admin().get(`/admin/orders/${lostNo}`).expect(200)).body;
    expect(order.refundedTotal).toBe(234);
    expect(order.timeline).toEqual(expect.arrayContaining([expect.objectContaining({ type: 'refund_success', detail: expect.objectContaining({ source: 'bill' }) })]));

    // the audit row of the run lists what it applied
    const audit = (await shop.admin().get(`/admin/audit?action=reconciliation.run&target=${today()}`).expect(200)).body.items;
    expect(audit[0]).toMatchObject({ outcome: 'ok', detail: expect.objectContaining({ appliedRefundsFromBill: 1, appliedOutRefundNos: [lost.body.outRefundNo], appliedFromBill: 0, appliedOutTradeNos: [] }) });

    // run again: the refund now matches, nothing is applied twice
    const again = (await shop.admin().post(`/admin/reconciliations?date=${today()}`).expect(200)).body;
    expect(again.summary.byType.refund_status_mismatch ?? 0).toBe(0);
    expect(again.summary.appliedRefundsFromBill).toBe(0);
    expect((await shop.admin().get(`/admin/orders/${lostNo}`).expect(200)).body.refundedTotal).toBe(234);
  });

  it('checks REVOKED rows against our orders and reports a summary the rows do not add up to; lists applied payments in the audit', async () => {
    const date = daysAgo(2);
    const paidHere = await paid();
    const unpaidHere = await shop.placeOrder(shopper, [{ productId, quantity: 1 }]);
    const applied = await shop.placeOrder(shopper, [{ productId, quantity: 1 }]);
    const lines = [
      row({ outTradeNo: paidHere, total: 1234, time: `${date} 09:00:00` }, 'REVOKED'),
      row({ outTradeNo: unpaidHere, total: 1234, time: `${date} 09:01:00` }, 'REVOKED'),
      row({ outTradeNo: `UNKNOWN${random(8)}`, total: 500, time: `${date} 09:02:00` }, 'REVOKED'),
      row({ outTradeNo: applied, total: 1234, time: `${date} 09:03:00` }),
    ];
    // the summary claims one row more and 1 fen more than the rows hold
    const totals = emptyTotals();
    for (const input of [1234, 1234, 500, 1234]) addToTotals(totals, { tradeState: 'SUCCESS', total: input } as TradeBillRow);
    totals.count += 1;
    totals.orderTotal += 1;
    await serveBill(date, lines, { summary: summaryLines(totals) });

    const result = (await shop.admin().post(`/admin/reconciliations?date=${date}`).expect(200)).body;
    const d = result.differences as Difference[];
    expect(find(d, 'status_mismatch', paidHere)).toMatchObject({ wechatState: 'REVOKED', ourStatus: 'PAID', detail: 'REVOKED at WeChat, PAID here' });
    expect(d.filter((x) => x.outTradeNo === unpaidHere)).toEqual([]);
    expect(find(d, 'only_in_wechat', applied)).toMatchObject({ action: 'applied_as_payment:applied' });
    expect(result.summary).toMatchObject({
      billRows: 4,
      otherRows: 3,
      payments: { inBill: 1 },
      billSummaryConsistent: false,
      billSummaryProblems: ['row count: summary 5, rows add up to 4', 'order total (fen): summary 4203, rows add up to 4202'],
      appliedFromBill: 1,
      appliedOutTradeNos: [applied],
    });
    expect(await shop.status(applied)).toBe('PAID');
    const audit = (await shop.admin().get(`/admin/audit?action=reconciliation.run&target=${date}`).expect(200)).body.items;
    expect(audit[0].detail).toMatchObject({ status: 'done', appliedFromBill: 1, appliedOutTradeNos: [applied] });
  });

  it(`stores ${MAX_STORED_DIFFERENCES} differences (of the longest kind) and serves them back; one run per day at a time`, async () => {
    const date = daysAgo(3);
    const lines: string[] = [];
    const count = MAX_STORED_DIFFERENCES + 10;
    for (let i = 0; i < count; i++) {
      // unknown orders and unknown 64-character refunds: every row is a difference
      if (i % 2) lines.push(row({ outTradeNo: random(32), total: 100 + (i % 1000), time: `${date} 10:00:00` }));
      else lines.push(row({ outTradeNo: random(32), outRefundNo: random(64), refundId: random(32), total: 0, refund: 100 + (i % 1000), time: `${date} 11:00:00` }, 'REFUND'));
    }
    await serveBill(date, lines);

    // two at once: one runs, the other is told why not
    const [a, b] = await Promise.all([shop.admin().post(`/admin/reconciliations?date=${date}`), shop.admin().post(`/admin/reconciliations?date=${date}`)]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    const conflict = (a.status === 409 ? a : b).body;
    expect(conflict).toMatchObject({ code: 'RECONCILIATION_RUNNING', details: { date } });
    expect(conflict.message).toContain(`the reconciliation of ${date} is already running`);
    const result = (a.status === 200 ? a : b).body;
    expect(result.summary).toMatchObject({ differenceCount: count, differencesStored: MAX_STORED_DIFFERENCES, billRows: count, billSummaryConsistent: true });
    expect(result.differences).toHaveLength(MAX_STORED_DIFFERENCES);

    const stored = (await shop.admin().get(`/admin/reconciliations/${date}`).expect(200)).body;
    expect(stored.status).toBe('done');
    expect(stored.differences).toHaveLength(MAX_STORED_DIFFERENCES);
    expect(stored.differences[MAX_STORED_DIFFERENCES - 1]).toEqual(result.differences[MAX_STORED_DIFFERENCES - 1]);
    const json = Buffer.byteLength(JSON.stringify(result.differences));
    // as JSON, close to a MEDIUMTEXT's and MariaDB's default max_allowed_packet's 16 MB (longer numbers
    // or details pass them); stored compressed, far below
    expect(json).toBeGreaterThan(12 * 1024 * 1024);
    const [raw] = await ds.query('SELECT LENGTH(differences) AS bytes FROM reconciliations WHERE bill_date = ?', [date]);
    expect(Number(raw.bytes)).toBeLessThan(json / 2);
    const csv = await shop.admin().get(`/admin/reconciliations/${date}/differences.csv`).expect(200);
    expect(csv.text.split('\r\n')).toHaveLength(MAX_STORED_DIFFERENCES + 2);

    // a run held by another instance (its lease in the shared table): 409 as well
    await ds.query('DELETE FROM job_leases WHERE name = ?', [`billing.reconcile.${date}`]);
    await ds.query('INSERT INTO job_leases (name, owner, expires_at, updated_at) VALUES (?, ?, ?, ?)', [
      `billing.reconcile.${date}`,
      'other-host:1:abcd',
      dbDate(ds, new Date(Date.now() + 60_000)),
      dbDate(ds, new Date()),
    ]);
    expect((await shop.admin().post(`/admin/reconciliations?date=${date}`).expect(409)).body.code).toBe('RECONCILIATION_RUNNING');
    const audit = (await shop.admin().get(`/admin/audit?action=reconciliation.run&target=${date}`).expect(200)).body.items;
    expect(audit[0].outcome).toBe('error:RECONCILIATION_RUNNING');
    expect(audit.map((x: { outcome: string }) => x.outcome).sort()).toEqual(['error:RECONCILIATION_RUNNING', 'error:RECONCILIATION_RUNNING', 'ok']);
  });

  if (version === 'v3') {
    it('refuses a bill whose hash does not match: nothing applied, the run stored as failed, the download 502', async () => {
      const date = daysAgo(4);
      const waiting = await shop.placeOrder(shopper, [{ productId, quantity: 1 }]);
      const path = await serveBill(date, [row({ outTradeNo: waiting, total: 1234, time: `${date} 10:00:00` })]);
      // the file changes after WeChat announced its hash (a corrupted or swapped download)
      const other = '\uFEFF' + TRADE_BILL_ALL_HEADER.join(',') + '\r\n' + row({ outTradeNo: waiting, total: 1, time: `${date} 10:00:00` }) + summaryLines(emptyTotals());
      writeFileSync(path, gzipSync(Buffer.from(other)));

      const res = await shop.admin().post(`/admin/reconciliations?date=${date}`).expect(502);
      expect(res.body).toMatchObject({ code: 'WECHATPAY_BILL_HASH_MISMATCH' });
      expect(await shop.status(waiting)).toBe('NOTPAY');
      const stored = (await shop.admin().get(`/admin/reconciliations/${date}`).expect(200)).body;
      expect(stored).toMatchObject({ status: 'failed', error: expect.stringContaining('bill hash mismatch'), differences: [] });
      const download = await shop.admin().get(`/admin/bills/trade?date=${date}`).expect(502);
      expect(download.body.code).toBe('WECHATPAY_BILL_HASH_MISMATCH');
    });
  } else {
    // APIv2's downloadbill carries no hash: what it can fail with is an error answer in place of the file.
    it('a downloadbill answered with an error (return_code FAIL, not "No Bill Exist"): nothing applied, the run stored as failed, the download 502', async () => {
      const date = daysAgo(4);
      const waiting = await shop.placeOrder(shopper, [{ productId, quantity: 1 }]);
      await serveBill(date, [row({ outTradeNo: waiting, total: 1234, time: `${date} 10:00:00` })]);
      await shop.sandbox.failNext('pay/downloadbill', '500', 10);
      try {
        const res = await shop.admin().post(`/admin/reconciliations?date=${date}`);
        expect({ status: res.status, body: res.body }).toEqual({ status: 502, body: expect.objectContaining({ code: expect.any(String) }) });
        expect(await shop.status(waiting)).toBe('NOTPAY');
        const stored = (await shop.admin().get(`/admin/reconciliations/${date}`).expect(200)).body;
        expect(stored).toMatchObject({ status: 'failed', differences: [] });
        expect((await shop.admin().get(`/admin/bills/trade?date=${date}`)).status).toBe(502);
      } finally {
        await shop.sandbox.reset();
      }
      // once WeChat answers again (the control reset forgot the registered bill: serve it again), the day reconciles and the payment in the bill is applied
      await serveBill(date, [row({ outTradeNo: waiting, total: 1234, time: `${date} 10:00:00` })]);
      const ok = (await shop.admin().post(`/admin/reconciliations?date=${date}`).expect(200)).body;
      expect(ok).toMatchObject({ status: 'done', summary: { appliedFromBill: 1 } });
      expect(await shop.status(waiting)).toBe('PAID');
    });
  }

  it('answers 400 for a fund-flow bill of an unknown account', async () => {
    const res = await shop.admin().get(`/admin/bills/fundflow?date=${today()}&account=SAVINGS`).expect(400);
    expect(res.body).toMatchObject({ code: 'INVALID_ACCOUNT', message: 'account must be BASIC, OPERATION or FEES' });
    await shop.admin().get(`/admin/bills/fundflow?date=2026-13-01&account=BASIC`).expect(400);
  });
});
