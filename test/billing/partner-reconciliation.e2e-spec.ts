import { getDataSourceToken } from '@nestjs/typeorm';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DataSource } from 'typeorm';
import { BillingJobs } from '../../src/billing/billing.jobs';
import { Difference } from '../../src/billing/reconciliation.service';
import { Clock } from '../../src/common/clock';
import { dbDate } from '../../src/database/transactions';
import { WechatPayApiError, WechatPayBillHashError } from '../../src/wechat/pay/errors';
import { WechatPayClient } from '../../src/wechat/pay/wechat-pay.client';
import { WechatPayHttp } from '../../src/wechat/pay/wechat-pay.http';
import { readAll } from '../../src/wechat/http/transport';
import { TRADE_BILL_ALL_HEADER, TradeBillRow, addToTotals, emptyTotals, summaryLines, tradeBillLine } from '../../src/sandbox/bills/trade-bill';
import { today } from '../helpers/dates';
import { Shop } from '../helpers/shop';

const DAY = 24 * 3600_000;

/** Real time plus an offset the test moves: the daily job reconciles "yesterday" = the day the orders were paid. */
class ShiftedClock extends Clock {
  offsetMs = 0;
  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }
}

/**
 * Reconciliation per sub-merchant in service-provider mode (issue 15), against the sandbox: each
 * sub-merchant's trade bill (sub_mchid) is compared with that sub-merchant's orders only, stored per
 * (date, sub-merchant), and the daily job runs every sub-merchant under its own lease.
 */
describe('service-provider mode: reconciliation per sub-merchant', () => {
  const A = '1900000201';
  const B = '1900000202';
  const clock = new ShiftedClock();
  let shop: Shop;
  let ds: DataSource;
  let date: string;
  const paidA: string[] = [];
  const paidB: string[] = [];

  beforeAll(async () => {
    shop = await Shop.start({ env: { WECHATPAY_SUB_MCHID: A }, override: (b) => b.overrideProvider(Clock).useValue(clock) });
    ds = shop.t.app.get<DataSource>(getDataSourceToken());
    await shop.admin().post('/admin/sub-merchants').send({ subMchid: B, name: '二号店' }).expect(201);
    const productOfA = (await shop.product('A 店对账商品', 990)).id;
    const productOfB = (await shop.admin().post('/admin/products').send({ name: 'B 店对账商品', price: 880, subMchid: B }).expect(201)).body.id as number;
    const shopper = await shop.login('o_partner_reconcile');
    paidA.push(await shop.paidOrder(shopper, [{ productId: productOfA, quantity: 1 }]));
    paidA.push(await shop.paidOrder(shopper, [{ productId: productOfA, quantity: 2 }]));
    paidB.push(await shop.paidOrder(shopper, [{ productId: productOfB, quantity: 1 }]));
    date = today();
  });
  afterAll(async () => {
    await shop?.sandbox.setWechatSkew(0).catch(() => undefined);
    await shop?.close();
  });

  const find = (differences: Difference[], outTradeNo: string) => differences.filter((d) => d.outTradeNo === outTradeNo);

  it("a difference in sub-merchant A's bill is found when A is reconciled; B, reconciled on its own, is clean; neither sees the other's orders", async () => {
    // WeChat's amount of A's first trade differs from ours: an amount_mismatch in A only.
    await shop.sandbox.alterTransaction(paidA[0], { total: 1 });

    const ofA = (await shop.admin().post(`/admin/reconciliations?date=${date}&subMchid=${A}`).expect(200)).body;
    expect(ofA).toMatchObject({ date, subMchid: A, status: 'done' });
    expect(ofA.summary).toMatchObject({ billRows: 2, billSummaryConsistent: true, differenceCount: 1, byType: { amount_mismatch: 1 } });
    expect(ofA.summary.payments).toMatchObject({ inBill: 2, matched: 1, ourCount: 2, ourAmount: 990 * 3 });
    expect(ofA.differences).toEqual([expect.objectContaining({ type: 'amount_mismatch', outTradeNo: paidA[0], wechatAmount: 1, ourAmount: 990 })]);
    expect(find(ofA.differences, paidB[0])).toEqual([]);

    const ofB = (await shop.admin().post(`/admin/reconciliations?date=${date}&subMchid=${B}`).expect(200)).body;
    expect(ofB).toMatchObject({ date, subMchid: B, status: 'done', differences: [] });
    expect(ofB.summary).toMatchObject({ billRows: 1, differenceCount: 0, byType: {} });
    expect(ofB.summary.payments).toMatchObject({ inBill: 1, matched: 1, ourCount: 1, ourAmount: 880 });

    // Without subMchid: the default sub-merchant (WECHATPAY_SUB_MCHID = A).
    const byDefault = (await shop.admin().post(`/admin/reconciliations?date=${date}`).expect(200)).body;
    expect(byDefault).toMatchObject({ subMchid: A, summary: { differenceCount: 1, payments: { inBill: 2 } } });
    expect(await shop.status(paidA[0])).toBe('PAID');
  });

  it('GET /admin/reconciliations/:date?subMchid= answers each sub-merchant\'s stored result (default: A); the list names each row\'s sub-merchant', async () => {
    const storedB = (await shop.admin().get(`/admin/reconciliations/${date}?subMchid=${B}`).expect(200)).body;
    expect(storedB).toMatchObject({ date, subMchid: B, status: 'done', summary: { differenceCount: 0 }, differences: [] });
    const storedA = (await shop.admin().get(`/admin/reconciliations/${date}`).expect(200)).body;
    expect(storedA).toMatchObject({ date, subMchid: A, summary: { differenceCount: 1 } });
    expect(storedA.differences).toEqual([expect.objectContaining({ type: 'amount_mismatch', outTradeNo: paidA[0] })]);
    const csv = await shop.admin().get(`/admin/reconciliations/${date}/differences.csv?subMchid=${A}`).expect(200);
    expect(csv.headers['content-disposition']).toContain(`reconciliation-${date}-${A}.csv`);
    expect(csv.text).toContain(`amount_mismatch,${paidA[0]}`);
    const csvB = await shop.admin().get(`/admin/reconciliations/${date}?format=csv&subMchid=${B}`).expect(200);
    expect(csvB.text.trim().split('\r\n')).toHaveLength(1); // the header only
    const notRun = await shop.admin().get(`/admin/reconciliations/${date}?subMchid=1900000203`).expect(404);
    expect(notRun.body).toMatchObject({ code: 'RECONCILIATION_NOT_FOUND' });

    const all = (await shop.admin().get('/admin/reconciliations').expect(200)).body as Array<{ date: string; subMchid: string; differenceCount: number }>;
    expect(all.filter((r) => r.date === date)).toEqual([
      expect.objectContaining({ subMchid: A, differenceCount: 1 }),
      expect.objectContaining({ subMchid: B, differenceCount: 0 }),
    ]);
    const onlyB = (await shop.admin().get(`/admin/reconciliations?subMchid=${B}`).expect(200)).body as Array<{ subMchid: string }>;
    expect(onlyB.length).toBeGreaterThanOrEqual(1);
    expect(onlyB.every((r) => r.subMchid === B)).toBe(true);
  });

  it('bad input is a 400 that stores nothing: a malformed subMchid, a repeated one, an unregistered sub-merchant', async () => {
    const before = (await ds.query('SELECT COUNT(*) AS n FROM reconciliations'))[0].n;
    for (const bad of ['abc', '12', `${A}x`]) {
      const res = await shop.admin().post(`/admin/reconciliations?date=${date}&subMchid=${bad}`).expect(400);
      expect(res.body).toMatchObject({ code: 'INVALID_SUB_MCHID', message: expect.stringContaining('subMchid must be') });
      await shop.admin().get(`/admin/reconciliations/${date}?subMchid=${bad}`).expect(400);
    }
    await shop.admin().post(`/admin/reconciliations?date=${date}&subMchid=${A}&subMchid=${B}`).expect(400);
    const unknown = await shop.admin().post(`/admin/reconciliations?date=${date}&subMchid=1900000299`).expect(400);
    expect(unknown.body).toMatchObject({ code: 'UNKNOWN_SUB_MERCHANT', message: expect.stringContaining('1900000299') });
    expect((await ds.query('SELECT COUNT(*) AS n FROM reconciliations'))[0].n).toEqual(before);
  });

  it("GET /admin/bills/trade?subMchid=B downloads only B's trades (sub_mchid); without it, the provider's bill of every sub-merchant", async () => {
    const ofB = await shop.admin().get(`/admin/bills/trade?date=${date}&subMchid=${B}`).expect(200);
    expect(ofB.headers['content-disposition']).toContain(`tradebill-${date}-ALL-${B}.csv`);
    expect(ofB.text).toContain(paidB[0]);
    for (const no of paidA) expect(ofB.text).not.toContain(no);
    const all = await shop.admin().get(`/admin/bills/trade?date=${date}`).expect(200);
    for (const no of [...paidA, ...paidB]) expect(all.text).toContain(no);
    await shop.admin().get(`/admin/bills/trade?date=${date}&subMchid=abc`).expect(400);
  });

  it("downloads sub-merchant B's fund-flow bill (encrypted list: encrypt_key opened with the merchant key, each part decrypted and hash-checked): B's movements only, the same text in one part or many", async () => {
    const ofB = await shop.admin().get(`/admin/bills/sub-merchant-fundflow?date=${date}&subMchid=${B}`).expect(200);
    expect(ofB.headers['content-type']).toContain('text/csv');
    expect(ofB.headers['content-disposition']).toContain(`sub-merchant-fundflowbill-${date}-BASIC-${B}.csv`);
    expect(ofB.text).toContain('记账时间');
    expect(ofB.text).toContain(paidB[0]);
    for (const no of paidA) expect(ofB.text).not.toContain(no);
    // Without subMchid: the default sub-merchant (A).
    const ofA = await shop.admin().get(`/admin/bills/sub-merchant-fundflow?date=${date}`).expect(200);
    for (const no of paidA) expect(ofA.text).toContain(no);
    expect(ofA.text).not.toContain(paidB[0]);

    // WeChat cuts a big file into parts (bill_sequence): joined in order, each part checked on its own.
    await shop.sandbox.setBillPartSize(100);
    try {
      const apply = await shop.t.app.get(WechatPayHttp).request<{ download_bill_count: number; download_bill_list: Array<{ bill_sequence: number; encrypt_key: string; nonce: string; hash_type: string }> }>({
        method: 'GET',
        path: '/v3/bill/sub-merchant-fundflowbill',
        query: { sub_mchid: B, bill_date: date, account_type: 'BASIC', algorithm: 'AEAD_AES_256_GCM' },
      });
      expect(apply.body!.download_bill_count).toBeGreaterThan(1);
      expect(apply.body!.download_bill_list.map((p) => p.bill_sequence)).toEqual(Array.from({ length: apply.body!.download_bill_count }, (_, i) => i + 1));
      expect(apply.body!.download_bill_list[0]).toMatchObject({ hash_type: 'SHA1', nonce: expect.stringMatching(/^[0-9a-f]{16}$/) });
      const inParts = await shop.admin().get(`/admin/bills/sub-merchant-fundflow?date=${date}&subMchid=${B}`).expect(200);
      expect(inParts.text).toBe(ofB.text);
    } finally {
      await shop.sandbox.setBillPartSize(0);
    }
  });

  it('a tampered part is refused (GCM tag: 502, nothing sent), so is a part whose plain text does not match its hash_value', async () => {
    await shop.sandbox.tamperBillFiles(1);
    const tampered = await shop.admin().get(`/admin/bills/sub-merchant-fundflow?date=${date}&subMchid=${B}`).expect(502);
    expect(tampered.body).toMatchObject({ code: 'WECHATPAY_BILL_DECRYPT_FAILED' });
    expect(tampered.headers['content-type']).not.toContain('text/csv');
    // The next download is whole again.
    await shop.admin().get(`/admin/bills/sub-merchant-fundflow?date=${date}&subMchid=${B}`).expect(200);

    const client = shop.t.app.get(WechatPayClient);
    const list = await client.applySubMerchantFundFlowBill({ subMchid: B, billDate: date, tarType: 'GZIP' });
    list.download_bill_list[0].hash_value = '0'.repeat(40);
    await expect(readAll(await client.downloadEncryptedBill(list))).rejects.toBeInstanceOf(WechatPayBillHashError);
  });

  it("the sandbox checks the provider's request as WeChat does; bad input to the admin route is a 4xx", async () => {
    const http = shop.t.app.get(WechatPayHttp);
    const refusal = (query: Record<string, string>) =>
      http.request({ method: 'GET', path: '/v3/bill/sub-merchant-fundflowbill', query }).then(
        () => {
          throw new Error('expected a refusal');
        },
        (error: WechatPayApiError) => [error.httpStatus, error.wechatCode],
      );
    const base = { sub_mchid: B, bill_date: date, account_type: 'BASIC', algorithm: 'AEAD_AES_256_GCM' };
    expect(await refusal({ bill_date: date, account_type: 'BASIC', algorithm: 'AEAD_AES_256_GCM' })).toEqual([400, 'PARAM_ERROR']);
    expect(await refusal({ ...base, algorithm: '' })).toEqual([400, 'PARAM_ERROR']);
    expect(await refusal({ ...base, sub_mchid: '1900000299' })).toEqual([400, 'INVALID_REQUEST']);
    expect(await refusal({ ...base, bill_date: '2020-01-01' })).toEqual([400, 'INVALID_REQUEST']);

    const unknown = await shop.admin().get(`/admin/bills/sub-merchant-fundflow?date=${date}&subMchid=1900000299`).expect(400);
    expect(unknown.body).toMatchObject({ code: 'UNKNOWN_SUB_MERCHANT' });
    await shop.admin().get(`/admin/bills/sub-merchant-fundflow?date=${date}&subMchid=abc`).expect(400);
    await shop.admin().get(`/admin/bills/sub-merchant-fundflow?date=${date}&subMchid=${B}&account=ALL`).expect(400);
    await shop.admin().get(`/admin/bills/sub-merchant-fundflow?date=20261123&subMchid=${B}`).expect(400);
  });

  it('the daily job reconciles every enabled sub-merchant, each under its own lease and audit row; a lease held elsewhere skips that sub-merchant only', async () => {
    // Tomorrow (for us and for WeChat): the job's "yesterday" is the day the orders were paid.
    clock.offsetMs = DAY;
    await shop.sandbox.setWechatSkew(DAY);
    try {
      const jobs = shop.t.app.get(BillingJobs);
      await jobs.reconcileYesterday();
      const audit = (await shop.admin().get('/admin/audit?action=reconciliation.daily').expect(200)).body.items as Array<{ target: string; outcome: string; detail: { differenceCount: number } }>;
      expect(audit.map((a) => a.target).sort()).toEqual([`${date}/${A}`, `${date}/${B}`]);
      expect(audit.find((a) => a.target === `${date}/${A}`)).toMatchObject({ outcome: 'ok', detail: { differenceCount: 1 } });
      expect(audit.find((a) => a.target === `${date}/${B}`)).toMatchObject({ outcome: 'ok', detail: { differenceCount: 0 } });
      const leases = (await ds.query('SELECT name FROM job_leases WHERE name LIKE ?', [`billing.reconcile.${date}%`])) as Array<{ name: string }>;
      expect(leases.map((l) => l.name).sort()).toEqual([`billing.reconcile.${date}.${A}`, `billing.reconcile.${date}.${B}`]);

      // Another instance holds A's lease: A is skipped, B still runs.
      await ds.query('UPDATE job_leases SET owner = ?, expires_at = ? WHERE name = ?', ['other-host:1:abcd', dbDate(ds, new Date(Date.now() + DAY + 3600_000)), `billing.reconcile.${date}.${A}`]);
      await jobs.reconcileYesterday();
      const again = (await shop.admin().get('/admin/audit?action=reconciliation.daily').expect(200)).body.items as Array<{ target: string }>;
      expect(again.map((a) => a.target).sort()).toEqual([`${date}/${A}`, `${date}/${B}`, `${date}/${B}`]);
      // An operator's run of A meets the same lease.
      const running = await shop.admin().post(`/admin/reconciliations?date=${date}&subMchid=${A}`).expect(409);
      expect(running.body).toMatchObject({ code: 'RECONCILIATION_RUNNING', message: expect.stringContaining(A) });

      // A disabled sub-merchant (not the default) is not reconciled by the job.
      await ds.query('DELETE FROM job_leases WHERE name = ?', [`billing.reconcile.${date}.${A}`]);
      await shop.admin().patch(`/admin/sub-merchants/${B}`).send({ enabled: false }).expect(200);
      await jobs.reconcileYesterday();
      const third = (await shop.admin().get('/admin/audit?action=reconciliation.daily').expect(200)).body.items as Array<{ target: string }>;
      expect(third.map((a) => a.target).sort()).toEqual([`${date}/${A}`, `${date}/${A}`, `${date}/${B}`, `${date}/${B}`]);
    } finally {
      clock.offsetMs = 0;
      await shop.sandbox.setWechatSkew(0);
      await shop.admin().patch(`/admin/sub-merchants/${B}`).send({ enabled: true });
    }
  });

  it("orders never mix: B's payment, unpaid order and refund in a bill served as A's are reported and never applied", async () => {
    const shopper = await shop.login('o_partner_mix');
    const productOfB = (await shop.admin().post('/admin/products').send({ name: 'B 店混单', price: 770, subMchid: B }).expect(201)).body.id as number;
    const unpaidOfB = await shop.placeOrder(shopper, [{ productId: productOfB, quantity: 1 }]);
    const refundedOfB = await shop.paidOrder(shopper, [{ productId: productOfB, quantity: 1 }]);
    // The refund succeeds at WeChat; its notification is lost, so it is PROCESSING here (a bill would settle it).
    await shop.sandbox.dropNotifications(true);
    let outRefundNo: string;
    let refundId: string;
    try {
      outRefundNo = (await shop.admin().post('/admin/refunds').send({ outTradeNo: refundedOfB, amount: 770, reason: '混单测试' }).expect(201)).body.outRefundNo;
      // Wait until WeChat (the sandbox) has settled it, so its notification is dropped rather than sent
      // after dropping is turned off again.
      let atWechat = await shop.sandbox.refund(outRefundNo);
      for (let i = 0; atWechat.status === 'PROCESSING' && i < 200; i++) {
        await new Promise((r) => setTimeout(r, 25));
        atWechat = await shop.sandbox.refund(outRefundNo);
      }
      expect(atWechat.status).toBe('SUCCESS');
      refundId = String(atWechat.refund_id);
    } finally {
      await shop.sandbox.dropNotifications(false);
    }
    const { appid, mchid } = await shop.sandbox.merchant();
    const txOf = async (no: string) => String((await shop.sandbox.transaction(no)).transaction_id ?? `4200${Date.now()}`);
    const base = { time: `${date} 10:00:00`, appid, mchid, subMchid: A, openid: 'o_partner_mix', tradeType: 'JSAPI', bankType: 'OTHERS', body: 'crafted' };
    const rows: TradeBillRow[] = [
      { ...base, transactionId: await txOf(paidB[0]), outTradeNo: paidB[0], tradeState: 'SUCCESS', total: 880 },
      { ...base, transactionId: '4200000000000000000000007701', outTradeNo: unpaidOfB, tradeState: 'SUCCESS', total: 770 },
      { ...base, transactionId: await txOf(refundedOfB), outTradeNo: refundedOfB, tradeState: 'REFUND', total: 770, refundId, outRefundNo: outRefundNo!, refund: 770, refundStatus: 'SUCCESS' },
    ];
    const totals = emptyTotals();
    for (const row of rows) addToTotals(totals, row);
    mkdirSync(join(shop.t.dataDir, 'bills'), { recursive: true });
    const path = join(shop.t.dataDir, 'bills', `${date}-${A}-mixed.csv.gz`);
    writeFileSync(path, gzipSync(Buffer.from('\uFEFF' + TRADE_BILL_ALL_HEADER.join(',') + '\r\n' + rows.map(tradeBillLine).join('') + summaryLines(totals))));
    await shop.sandbox.registerTradeBill(date, path, A);

    const result = (await shop.admin().post(`/admin/reconciliations?date=${date}&subMchid=${A}`).expect(200)).body;
    expect(result.summary).toMatchObject({ appliedFromBill: 0, appliedRefundsFromBill: 0 });
    expect(find(result.differences, paidB[0])).toEqual([expect.objectContaining({ type: 'status_mismatch', detail: expect.stringContaining(`an order of ${B}`) })]);
    expect(find(result.differences, unpaidOfB)).toEqual([expect.objectContaining({ type: 'status_mismatch', detail: expect.stringContaining(`an order of ${B}`) })]);
    expect(find(result.differences, refundedOfB)).toEqual([expect.objectContaining({ type: 'refund_status_mismatch', outRefundNo: outRefundNo!, detail: expect.stringContaining(`an order of ${B}`) })]);
    expect(result.differences.every((d: Difference) => d.action === undefined)).toBe(true);
    // A's own paid orders, absent from this bill, are only_here; nothing of B's was changed.
    for (const no of paidA) expect(find(result.differences, no)).toEqual([expect.objectContaining({ type: 'only_here' })]);
    expect(await shop.status(unpaidOfB)).toBe('NOTPAY');
    expect(((await shop.admin().get(`/admin/refunds?outTradeNo=${refundedOfB}`).expect(200)).body as Array<{ status: string }>)[0].status).toBe('PROCESSING');
  });
});

describe('direct mode: reconciliation takes no subMchid', () => {
  let shop: Shop;
  beforeAll(async () => {
    shop = await Shop.start();
  });
  afterAll(() => shop?.close());

  it('POST and GET with subMchid are a clear 400 (PARTNER_MODE_OFF); results carry no subMchid', async () => {
    const date = today();
    const res = await shop.admin().post(`/admin/reconciliations?date=${date}&subMchid=1900000201`).expect(400);
    expect(res.body).toMatchObject({ code: 'PARTNER_MODE_OFF', message: expect.stringContaining('direct mode') });
    await shop.admin().get(`/admin/reconciliations/${date}?subMchid=1900000201`).expect(400);
    await shop.admin().get(`/admin/bills/trade?date=${date}&subMchid=1900000201`).expect(400);
    const noSuchBill = await shop.admin().get(`/admin/bills/sub-merchant-fundflow?date=${date}`).expect(404);
    expect(noSuchBill.body).toMatchObject({ code: 'PARTNER_MODE_OFF' });
    // WeChat (the sandbox, here a direct merchant's) refuses the provider's API to a direct merchant.
    const direct = await shop.t.app
      .get(WechatPayHttp)
      .request({ method: 'GET', path: '/v3/bill/sub-merchant-fundflowbill', query: { sub_mchid: '1900000201', bill_date: date, account_type: 'BASIC', algorithm: 'AEAD_AES_256_GCM' } })
      .catch((error: WechatPayApiError) => error);
    expect([(direct as WechatPayApiError).httpStatus, (direct as WechatPayApiError).wechatCode]).toEqual([403, 'NO_AUTH']);
    const result = (await shop.admin().post(`/admin/reconciliations?date=${date}`).expect(200)).body;
    expect(result).toMatchObject({ date, status: 'done' });
    expect(result).not.toHaveProperty('subMchid');
    const stored = (await shop.admin().get(`/admin/reconciliations/${date}`).expect(200)).body;
    expect(stored).not.toHaveProperty('subMchid');
    const listed = (await shop.admin().get('/admin/reconciliations').expect(200)).body as Array<Record<string, unknown>>;
    expect(listed.find((r) => r.date === date)).not.toHaveProperty('subMchid');
  });
});
