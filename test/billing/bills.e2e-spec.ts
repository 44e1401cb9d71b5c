import { getDataSourceToken } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { loadOrCreateSandboxKeystore } from '../../src/sandbox/keystore';
import { dbDate } from '../../src/database/transactions';
import { TestMerchant } from '../helpers/merchant-signer';
import { Login } from '../helpers/login';
import { daysAgo, today } from '../helpers/dates';
import { Shop } from '../helpers/shop';


/*
 * Once per API version (issue 14): the same billing module through the payment port — APIv3 applies
 * for the bill and downloads it (hash checked), APIv2 downloads it with downloadbill — and the same
 * streaming parser and reconciliation.
 */
describe.each(['v3', 'v2'] as const)('bills and reconciliation (WECHATPAY_API_VERSION=%s)', (version) => {
  let shop: Shop;
  let shopper: Login;
  let productId: number;

  beforeAll(async () => {
    shop = await Shop.start({ env: { SANDBOX_REFUND_DELAY: '1s', WECHATPAY_API_VERSION: version } });
    shopper = await shop.login('o_bills');
    productId = (await shop.product('账单商品', 1234)).id;
  });
  afterAll(() => shop?.close());

  const paid = () => shop.paidOrder(shopper, [{ productId, quantity: 1 }]);

  it('downloads the trade bill (v3: hash checked; gunzipped) and the fund-flow bill as CSV', async () => {
    const no = await paid();
    const res = await shop.admin().get(`/admin/bills/trade?date=${today()}&type=ALL`).buffer(true).parse((r, cb) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => cb(null, Buffer.concat(chunks)));
    }).expect(200);
    expect(res.headers['content-type']).toContain('text/csv');
    expect(res.headers['content-disposition']).toContain(`tradebill-${today()}-ALL.csv`);
    const text = (res.body as Buffer).toString('utf8');
    expect(text.startsWith('\uFEFF交易时间,')).toBe(true);
    expect(text).toContain(`\`${no},`);
    // through the configured API only (v2: /pay/downloadbill, never the APIv3 bill endpoints)
    if (version === 'v3') expect(await shop.sandbox.callsTo('v3/bill/tradebill')).toBeGreaterThan(0);
    else expect(await shop.sandbox.callsTo('v3/bill/tradebill')).toBe(0);
    // v2: /pay/downloadfundflow, signed with HMAC-SHA256 whatever the configured sign type
    const fund = await shop.admin().get(`/admin/bills/fundflow?date=${today()}`).expect(200);
    expect(fund.text).toContain('记账时间');
  });

  it.each([
    ['a malformed date', 'date=2026-1-1', 400, 'YYYY-MM-DD'],
    ['an impossible date', 'date=2026-02-30', 400, 'not a calendar date'],
    ['a future date', 'date=2999-01-01', 400, 'in the future'],
    ['no date', '', 400, 'date is required'],
    ['a bad type', `date=${today()}&type=ODD`, 400, 'type must be ALL, SUCCESS or REFUND'],
  ])('answers %s with a 4xx that says why', async (_name, query, status, message) => {
    const res = await shop.admin().get(`/admin/bills/trade?${query}`).expect(status);
    expect(res.body.message).toContain(message);
  });

  it('answers 404 with WeChat\'s message when there is no bill for the day', async () => {
    const res = await shop.admin().get(`/admin/bills/trade?date=${daysAgo(20)}`).expect(404);
    expect(res.body).toMatchObject({ code: 'BILL_NOT_AVAILABLE', details: { wechatCode: 'NO_STATEMENT_EXIST' } });
    expect(res.body.message).toContain('NO_STATEMENT_EXIST');
  });

  it('reconciles a day and reports each injected difference', async () => {
    const ds = shop.t.app.get<DataSource>(getDataSourceToken());
    // matched: paid normally; refunded partly
    const matched = await paid();
    const refunded = await paid();
    const refund = await shop.admin().post('/admin/refunds').send({ outTradeNo: refunded, amount: 234, reason: '对账退款' }).expect(201);
    await shop.sandbox.waitForNotification({ outRefundNo: refund.body.outRefundNo });

    // 1. a payment whose notification was dropped
    const dropped = await shop.placeOrder(shopper, [{ productId, quantity: 1 }]);
    const droppedPrepay = await shop.prepay(shopper, dropped);
    await shop.sandbox.dropNotifications(true);
    await shop.sandbox.pay(droppedPrepay);
    await shop.sandbox.dropNotifications(false);

    // 2. an order marked paid here by hand, never paid at WeChat
    const byHand = await shop.placeOrder(shopper, [{ productId, quantity: 1 }]);
    await ds.query("UPDATE orders SET status = 'PAID', paid_at = ?, paid_total = total, transaction_id = 'HAND0001' WHERE out_trade_no = ?", [dbDate(ds, new Date()), byHand]);

    // 3. an amount that differs: WeChat recorded another amount for a paid order
    const altered = await paid();
    await shop.sandbox.alterTransaction(altered, { total: 1000 });

    // 4. a refund made in the merchant portal, not through us
    const keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
    const portal = new TestMerchant(shop.baseUrl, keystore);
    const portalRefund = await portal.request('POST', '/v3/refund/domestic/refunds', { out_trade_no: matched, out_refund_no: `${matched}PORTAL`, amount: { refund: 100, total: 1234, currency: 'CNY' } });
    expect(portalRefund.status).toBe(200);
    await new Promise((r) => setTimeout(r, 50));
    await shop.sandbox.refund(`${matched}PORTAL`); // completes it

    const res = await shop.admin().post(`/admin/reconciliations?date=${today()}`).expect(200);
    const result = res.body;
    expect(result).toMatchObject({ date: today(), status: 'done' });
    const find = (type: string, no: string) => result.differences.find((d: { type: string; outTradeNo: string }) => d.type === type && d.outTradeNo === no);
    expect(find('only_in_wechat', dropped)).toMatchObject({ ourStatus: 'NOTPAY', wechatAmount: 1234, action: 'applied_as_payment:applied' });
    expect(find('only_here', byHand)).toMatchObject({ ourAmount: 1234, ourStatus: 'PAID' });
    expect(find('amount_mismatch', altered)).toMatchObject({ wechatAmount: 1000, ourAmount: 1234 });
    expect(find('refund_only_in_wechat', matched)).toMatchObject({ outRefundNo: `${matched}PORTAL`, wechatAmount: 100 });
    expect(result.differences.find((d: { outTradeNo: string }) => d.outTradeNo === refunded)).toBeUndefined();
    expect(result.summary).toMatchObject({ billSummaryConsistent: true, appliedFromBill: 1 });
    expect(result.summary.refunds.matched).toBeGreaterThanOrEqual(1);
    expect(result.summary.byType).toMatchObject({ only_in_wechat: 1, only_here: 1, amount_mismatch: 1, refund_only_in_wechat: 1 });
    // the dropped payment is now applied
    expect(await shop.status(dropped)).toBe('PAID');

    const stored = await shop.admin().get(`/admin/reconciliations/${today()}`).expect(200);
    expect(stored.body.summary.differenceCount).toBe(result.summary.differenceCount);
    const csv = await shop.admin().get(`/admin/reconciliations/${today()}/differences.csv`).expect(200);
    expect(csv.headers['content-type']).toContain('text/csv');
    expect(csv.text).toContain('type,outTradeNo,outRefundNo,wechatAmount,ourAmount');
    expect(csv.text).toContain(`only_here,${byHand}`);

    // a second run finds the dropped payment matched now
    const again = (await shop.admin().post(`/admin/reconciliations?date=${today()}`).expect(200)).body;
    expect(again.summary.byType.only_in_wechat ?? 0).toBe(0);

    // the list of recent runs carries the summary of the latest one
    const list = (await shop.admin().get('/admin/reconciliations').expect(200)).body;
    expect(list[0]).toMatchObject({ date: today(), status: 'done', differenceCount: again.summary.differenceCount, billRows: again.summary.billRows });
    expect((await shop.admin().get('/admin/reconciliations?limit=0').expect(400)).body.message).toContain('limit must be an integer from 1 to 100');
  });

  it('guards the admin routes and validates the date', async () => {
    await shop.http().post(`/admin/reconciliations?date=${today()}`).expect(401);
    await shop.http().get(`/admin/bills/trade?date=${today()}`).expect(401);
    await shop.admin().post('/admin/reconciliations?date=tomorrow').expect(400);
    await shop.admin().get('/admin/reconciliations/2020-01-01').expect(404);
    const audit = (await shop.admin().get('/admin/audit?action=reconciliation.run').expect(200)).body.items;
    expect(audit.length).toBeGreaterThan(0);
  });
});
