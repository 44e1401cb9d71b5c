import { getDataSourceToken } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { SandboxEnv } from '../../src/config/env/sandbox.env';
import { loadOrCreateSandboxKeystore, sandboxApiV2Key } from '../../src/sandbox/keystore';
import { sandboxReqInfo, sandboxXml } from '../../src/sandbox/sandbox-v2-wire';
import { OrderLifecycle } from '../../src/payment/order-lifecycle.service';
import { Refund } from '../../src/refund/entities/refund.entity';
import { RefundJobs } from '../../src/refund/refund.jobs';
import { acknowledged, craftNotification, craftPayment, craftV2RefundNotification, postNotification } from '../helpers/craft-notification';
import { TestMerchant } from '../helpers/merchant-signer';
import { Login } from '../helpers/login';
import { ADMIN_TOKEN, Shop } from '../helpers/shop';

/*
 * The main refund scenarios, once per API version (issue 14): the same refund module through the
 * payment port, against the sandbox's APIv3 or APIv2 front (secapi/pay/refund, refundquery, the v2
 * refund notification with req_info on /notify/wechatpay/v2/refund).
 */
describe.each(['v3', 'v2'] as const)('refunds with WECHATPAY_API_VERSION=%s', (version) => {
  let shop: Shop;
  let shopper: Login;
  let productId: number;

  beforeAll(async () => {
    shop = await Shop.start({ env: { SANDBOX_REFUND_DELAY: '10s', REFUND_QUERY_AFTER: '0s', WECHATPAY_API_VERSION: version } });
    shopper = await shop.login(`o_refund_${version}`);
    productId = (await shop.product(`退款测试 ${version}`, 1000)).id;
  });
  afterAll(() => shop?.close());

  const paidOrder = (quantity = 1) => shop.paidOrder(shopper, [{ productId, quantity }]);

  const refund = (body: Record<string, unknown>) => shop.admin().post('/admin/refunds').send(body);

  it("WeChat's refund notification arrives in its API version's shape, is verified and applied once", async () => {
    const no = await paidOrder();
    const r = await refund({ outTradeNo: no, amount: 100, reason: '通知地址' }).expect(201);
    await shop.sandbox.waitForNotification({ outRefundNo: r.body.outRefundNo });
    const ds = shop.t.app.get<DataSource>(getDataSourceToken());
    const rows: Array<{ outcome: string; verified: number; raw_body: string; event_type: string }> = await ds.query(
      'SELECT outcome, verified, raw_body, event_type FROM payment_events WHERE out_refund_no = ?',
      [r.body.outRefundNo],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ outcome: 'refund:applied', event_type: 'REFUND.SUCCESS' });
    expect(Number(rows[0].verified)).toBe(1);
    // the v2 notification is XML with the encrypted req_info (to /notify/wechatpay/v2/refund), v3's JSON
    if (version === 'v2') expect(rows[0].raw_body).toMatch(/^<xml>[\s\S]*<req_info>/);
    else expect(rows[0].raw_body.startsWith('{')).toBe(true);
    expect((await shop.admin().get(`/admin/orders/${no}`).expect(200)).body.refundedTotal).toBe(100);
  });

  if (version === 'v2') {
    it('a forged v2 refund notification (req_info not encrypted with our APIv2 key, or none) is refused with FAIL and applies nothing', async () => {
      const no = await paidOrder();
      const keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
      const root = sandboxXml(
        { out_refund_no: `${no}-FORGED`, out_trade_no: no, refund_id: '50000000000000000000000000001', refund_status: 'SUCCESS', total_fee: 1000, refund_fee: 1000, success_time: '2026-01-01 10:00:00' },
        'root',
      );
      const forged = [
        sandboxXml({ return_code: 'SUCCESS', appid: keystore.appid, mch_id: keystore.mchid, nonce_str: 'x1', req_info: sandboxReqInfo(root, 'f'.repeat(32)) }),
        sandboxXml({ return_code: 'SUCCESS', appid: keystore.appid, mch_id: keystore.mchid, nonce_str: 'x2' }),
        `<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><return_code>SUCCESS</return_code><req_info>&x;</req_info></xml>`,
      ];
      for (const body of forged) {
        const res = await shop.http().post('/notify/wechatpay/v2/refund').set('Content-Type', 'text/xml').send(body);
        expect(res.status).toBeGreaterThanOrEqual(400);
        expect(res.text).toContain('<return_code><![CDATA[FAIL]]></return_code>');
      }
      const order = (await shop.admin().get(`/admin/orders/${no}`).expect(200)).body;
      expect(order).toMatchObject({ status: 'PAID', refundedTotal: 0 });
      expect((await shop.admin().get('/admin/refunds').query({ outTradeNo: no }).expect(200)).body).toEqual([]);
    });
  }

  it('refunds in two parts, refuses more than what is left, and ends REFUNDED', async () => {
    const no = await paidOrder();
    const first = await refund({ outTradeNo: no, amount: 300, reason: '部分退款' }).expect(201);
    expect(first.body).toMatchObject({ outTradeNo: no, amount: 300, status: 'PROCESSING', outRefundNo: expect.stringMatching(/^R/), source: 'admin' });
    await shop.sandbox.waitForNotification({ outRefundNo: first.body.outRefundNo });
    const afterFirst = (await shop.admin().get(`/admin/orders/${no}`).expect(200)).body;
    expect(afterFirst).toMatchObject({ status: 'PAID', refundedTotal: 300 });
    expect((await shop.admin().get(`/admin/refunds/${first.body.outRefundNo}`).expect(200)).body).toMatchObject({ status: 'SUCCESS', successAt: expect.any(String) });

    const second = await refund({ outTradeNo: no, amount: 500, reason: '再退一部分' }).expect(201);
    await shop.sandbox.waitForNotification({ outRefundNo: second.body.outRefundNo });
    const over = await refund({ outTradeNo: no, amount: 201, reason: '超额' }).expect(409);
    expect(over.body).toMatchObject({ code: 'REFUND_EXCEEDS_REMAINING', details: { paid: 1000, refunded: 800, inFlight: 0, remaining: 200 } });
    const last = await refund({ outTradeNo: no, amount: 200, reason: '退完' }).expect(201);
    await shop.sandbox.waitForNotification({ outRefundNo: last.body.outRefundNo });
    await shop.waitForStatus(no, 'REFUNDED');
    const order = (await shop.admin().get(`/admin/orders/${no}`).expect(200)).body;
    expect(order.refundedTotal).toBe(1000);
    expect(order.timeline.map((e: { type: string }) => e.type)).toEqual(expect.arrayContaining(['refund_requested', 'refund_success']));
    expect((await refund({ outTradeNo: no, amount: 1, reason: 'x' }).expect(409)).body.code).toBe('REFUND_EXCEEDS_REMAINING');
  });

  it('lets only one of two simultaneous full refunds through', async () => {
    const no = await paidOrder();
    const results = await Promise.all([refund({ outTradeNo: no, amount: 1000, reason: 'A' }), refund({ outTradeNo: no, amount: 1000, reason: 'B' })]);
    expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
    expect(results.find((r) => r.status === 409)!.body.details).toMatchObject({ inFlight: 1000, remaining: 0 });
  });

  it('is idempotent per outRefundNo, and refuses the number for another body', async () => {
    const no = await paidOrder();
    const body = { outTradeNo: no, amount: 100, reason: '幂等', outRefundNo: `${no}-R1` };
    const a = await refund(body).expect(201);
    const b = await refund(body).expect(200);
    expect(b.body.outRefundNo).toBe(a.body.outRefundNo);
    expect((await refund({ ...body, amount: 101 }).expect(409)).body.code).toBe('REFUND_NO_REUSED');
    // Through the configured API only: v2 refunds never touch the APIv3 refund endpoint.
    if (version === 'v3') expect(await shop.sandbox.callsTo('v3/refund/domestic/refunds')).toBeGreaterThan(0);
    else expect(await shop.sandbox.callsTo('v3/refund/domestic/refunds')).toBe(0);
  });

  it('applies a refund notification delivered 20 times exactly once', async () => {
    const no = await paidOrder();
    const r = await refund({ outTradeNo: no, amount: 400, reason: '重复通知' }).expect(201);
    await shop.sandbox.waitForNotification({ outRefundNo: r.body.outRefundNo });
    const burst = await shop.sandbox.deliver({ outRefundNo: r.body.outRefundNo }, { times: 20 });
    // v3 acknowledges with 204, v2 with 200 and <return_code>SUCCESS</return_code>
    expect(burst.map((x) => x.status)).toEqual(Array(20).fill(version === 'v3' ? 204 : 200));
    const order = (await shop.admin().get(`/admin/orders/${no}`).expect(200)).body;
    expect(order.refundedTotal).toBe(400);
    expect(order.timeline.filter((e: { type: string }) => e.type === 'refund_success')).toHaveLength(1);
    const ds = shop.t.app.get<DataSource>(getDataSourceToken());
    const outcomes: Array<{ outcome: string }> = await ds.query('SELECT outcome FROM payment_events WHERE out_refund_no = ?', [r.body.outRefundNo]);
    expect(outcomes.filter((o) => o.outcome === 'refund:applied')).toHaveLength(1);
    expect(outcomes.filter((o) => o.outcome === 'refund:duplicate')).toHaveLength(20);
  });

  it('finds the result by query when the refund notification is lost (GET and the job; v2: refundquery)', async () => {
    const no = await paidOrder();
    await shop.sandbox.dropNotifications(true);
    try {
      const a = await refund({ outTradeNo: no, amount: 100, reason: '查询' }).expect(201);
      await new Promise((r) => setTimeout(r, 50));
      expect((await shop.admin().get(`/admin/refunds/${a.body.outRefundNo}`).expect(200)).body.status).toBe('SUCCESS');
      // that GET changed the refund: audited; a second GET changes nothing and is not
      await shop.admin().get(`/admin/refunds/${a.body.outRefundNo}`).expect(200);
      const audited = (await shop.admin().get(`/admin/audit?action=refund.query&target=${a.body.outRefundNo}`).expect(200)).body.items;
      expect(audited).toEqual([expect.objectContaining({ outcome: 'ok', detail: { from: 'PROCESSING', to: 'SUCCESS', outTradeNo: no, amount: 100 }, ip: expect.any(String) })]);
      const b = await refund({ outTradeNo: no, amount: 100, reason: '任务' }).expect(201);
      await new Promise((r) => setTimeout(r, 50));
      expect(await shop.t.app.get(RefundJobs).run()).toBeGreaterThanOrEqual(1);
      expect((await shop.admin().get(`/admin/refunds?outTradeNo=${no}`).expect(200)).body.find((x: { outRefundNo: string }) => x.outRefundNo === b.body.outRefundNo).status).toBe('SUCCESS');
      expect((await shop.admin().get(`/admin/orders/${no}`).expect(200)).body.refundedTotal).toBe(200);
    } finally {
      await shop.sandbox.dropNotifications(false);
    }
  });


  it('marks the refund FAILED with WeChat\'s code when WeChat refuses it (403 NOT_ENOUGH, merchant balance short; v2: err_code NOTENOUGH), and frees the amount', async () => {
    const no = await paidOrder();
    await shop.sandbox.setInsufficientBalance(true);
    let res;
    try {
      res = await refund({ outTradeNo: no, amount: 500, reason: '余额不足' }).expect(422);
    } finally {
      await shop.sandbox.setInsufficientBalance(false);
    }
    expect(res.body).toMatchObject({ code: 'WECHAT_REFUND_REJECTED', details: { wechatCode: 'NOT_ENOUGH', wechatStatus: 403 } });
    const failed = (await shop.admin().get(`/admin/refunds/${res.body.details.outRefundNo}`).expect(200)).body;
    expect(failed).toMatchObject({ status: 'FAILED', wechatCode: 'NOT_ENOUGH' });
    // the audit names the refund number we generated, not just the order
    const audit = (await shop.admin().get(`/admin/audit?action=refund.create&target=${res.body.details.outRefundNo}`).expect(200)).body.items;
    expect(audit).toEqual([expect.objectContaining({ outcome: 'error:WECHAT_REFUND_REJECTED' })]);
    await refund({ outTradeNo: no, amount: 1000, reason: '仍可全退' }).expect(201);
  });
});

describe.each(['v3', 'v2'] as const)('a refund notification while the database is down (WECHATPAY_API_VERSION=%s)', (version) => {
  it('is answered FAIL (HTTP 500) so that WeChat retries, never SUCCESS before a commit', async () => {
    const shop = await Shop.start({ env: { WECHATPAY_API_VERSION: version } });
    try {
      const keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
      await shop.t.app.get<DataSource>(getDataSourceToken()).destroy();
      if (version === 'v2') {
        const root = sandboxXml({ out_refund_no: 'R_DB_DOWN_1', out_trade_no: 'ANY_ORDER_123', refund_id: '50000000000000000000000000002', refund_status: 'SUCCESS', total_fee: 100, refund_fee: 100, success_time: '2026-01-01 10:00:00' }, 'root');
        const body = sandboxXml({ return_code: 'SUCCESS', appid: keystore.appid, mch_id: keystore.mchid, nonce_str: 'n1', req_info: sandboxReqInfo(root, sandboxApiV2Key(keystore)) });
        const res = await fetch(`${shop.baseUrl}/notify/wechatpay/v2/refund`, { method: 'POST', headers: { 'Content-Type': 'text/xml' }, body });
        expect(res.status).toBe(500);
        expect(await res.text()).toContain('<return_code><![CDATA[FAIL]]></return_code>');
      } else {
        const crafted = craftNotification(
          keystore,
          { mchid: keystore.mchid, out_trade_no: 'ANY_ORDER_123', transaction_id: '4200000000000000000000000002', refund_id: '50000000000000000000000000002', out_refund_no: 'R_DB_DOWN_1', refund_status: 'SUCCESS', success_time: '2026-01-01T10:00:00+08:00', user_received_account: '支付用户零钱', amount: { total: 100, refund: 100, payer_total: 100, payer_refund: 100 } },
          { eventType: 'REFUND.SUCCESS', associatedData: 'refund' },
        );
        const res = await fetch(`${shop.baseUrl}/notify/wechatpay/refund`, { method: 'POST', headers: crafted.headers, body: crafted.body });
        expect(res.status).toBe(500);
        expect(await res.json()).toEqual({ code: 'FAIL', message: expect.any(String) });
      }
    } finally {
      await shop.close().catch(() => undefined);
    }
  });
});

/*
 * The rest of the refund module once per API version too: abnormal and closed refunds, WeChat not
 * answering (v2: secapi/pay/refund SYSTEMERROR), its refusals (v2 err_code INVALID_REQUEST), bad input.
 */
describe.each(['v3', 'v2'] as const)('refunds (WECHATPAY_API_VERSION=%s)', (version) => {
  let shop: Shop;
  let shopper: Login;
  let productId: number;

  beforeAll(async () => {
    // refunds complete 10 s / 1000 = 10 ms after WeChat accepts them
    shop = await Shop.start({ env: { SANDBOX_REFUND_DELAY: '10s', REFUND_QUERY_AFTER: '0s', WECHATPAY_API_VERSION: version } });
    shopper = await shop.login(`o_refund_shopper_${version}`);
    productId = (await shop.product('退款测试', 1000)).id;
  });
  afterAll(() => shop?.close());

  const paidOrder = (quantity = 1) => shop.paidOrder(shopper, [{ productId, quantity }]);

  const refund = (body: Record<string, unknown>) => shop.admin().post('/admin/refunds').send(body);

  /**
   * A refund result notification as WeChat sends it, straight to our notify URL: v3 REFUND.* (signed,
   * encrypted); v2 XML with req_info encrypted with the API key (CHANGE = ABNORMAL, REFUNDCLOSE = CLOSED).
   * True when acknowledged.
   */
  async function notifyRefund(outTradeNo: string, outRefundNo: string, status: 'SUCCESS' | 'CLOSED' | 'ABNORMAL', amount: number, total = 1000): Promise<boolean> {
    const keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
    const wechat = await shop.sandbox.refund(outRefundNo);
    const beijingNow = new Date(Date.now() + 8 * 3600_000).toISOString().slice(0, 19);
    if (version === 'v2') {
      const crafted = craftV2RefundNotification(keystore, {
        out_refund_no: outRefundNo,
        out_trade_no: outTradeNo,
        refund_account: 'REFUND_SOURCE_UNSETTLED_FUNDS',
        refund_fee: amount,
        refund_id: String(wechat.refund_id),
        refund_recv_accout: '支付用户零钱',
        refund_request_source: 'API',
        refund_status: status === 'CLOSED' ? 'REFUNDCLOSE' : status === 'ABNORMAL' ? 'CHANGE' : 'SUCCESS',
        settlement_refund_fee: amount,
        settlement_total_fee: total,
        ...(status === 'SUCCESS' ? { success_time: beijingNow.replace('T', ' ') } : {}),
        total_fee: total,
        transaction_id: String(wechat.transaction_id),
      });
      return acknowledged(version, await postNotification(shop.baseUrl, { path: '/notify/wechatpay/v2/refund', ...crafted }));
    }
    const crafted = craftNotification(
      keystore,
      {
        mchid: keystore.mchid,
        out_trade_no: outTradeNo,
        transaction_id: wechat.transaction_id,
        refund_id: wechat.refund_id,
        out_refund_no: outRefundNo,
        refund_status: status,
        ...(status === 'SUCCESS' ? { success_time: beijingNow + '+08:00' } : {}),
        user_received_account: '支付用户零钱',
        amount: { total, refund: amount, payer_total: total, payer_refund: amount },
      },
      { eventType: `REFUND.${status}`, associatedData: 'refund' },
    );
    return acknowledged(version, await fetch(`${shop.baseUrl}/notify/wechatpay/refund`, { method: 'POST', headers: crafted.headers, body: crafted.body }));
  }

  const timelineOf = async (no: string): Promise<Array<{ type: string; detail: Record<string, unknown> | null }>> =>
    (await shop.admin().get(`/admin/orders/${no}`).expect(200)).body.timeline;

  it('holds the amount of an ABNORMAL refund (not refundable again) until WeChat reports it SUCCESS', async () => {
    const no = await paidOrder();
    await shop.sandbox.nextRefundOutcome('ABNORMAL');
    const r = await refund({ outTradeNo: no, amount: 1000, reason: '异常' }).expect(201);
    await shop.sandbox.waitForNotification({ outRefundNo: r.body.outRefundNo });
    // GET asks WeChat again (still ABNORMAL there: nothing changes, nothing audited)
    expect((await shop.admin().get(`/admin/refunds/${r.body.outRefundNo}`).expect(200)).body.status).toBe('ABNORMAL');
    expect((await shop.admin().get(`/admin/audit?action=refund.query&target=${r.body.outRefundNo}`).expect(200)).body.items).toEqual([]);
    expect((await shop.admin().get(`/admin/orders/${no}`).expect(200)).body).toMatchObject({ status: 'PAID', refundedTotal: 0 });
    // the money is held by WeChat: refunding it again could pay the shopper twice
    const again = await refund({ outTradeNo: no, amount: 1000, reason: '重试' }).expect(409);
    expect(again.body).toMatchObject({ code: 'REFUND_EXCEEDS_REMAINING', details: { paid: 1000, refunded: 0, inFlight: 1000, abnormal: 1000, remaining: 0 } });
    expect(again.body.message).toContain('ABNORMAL');
    await refund({ outTradeNo: no, amount: 1, reason: '一分' }).expect(409);

    // the abnormal refund is retried at WeChat (apply-abnormal-refund) and succeeds
    expect(await notifyRefund(no, r.body.outRefundNo, 'SUCCESS', 1000)).toBe(true);
    expect(await notifyRefund(no, r.body.outRefundNo, 'SUCCESS', 1000)).toBe(true);
    expect((await shop.admin().get(`/admin/refunds/${r.body.outRefundNo}`).expect(200)).body).toMatchObject({ status: 'SUCCESS', successAt: expect.any(String) });
    expect((await shop.admin().get(`/admin/orders/${no}`).expect(200)).body).toMatchObject({ status: 'REFUNDED', refundedTotal: 1000 });
    const timeline = await timelineOf(no);
    expect(timeline.filter((e) => e.type === 'refund_abnormal')).toHaveLength(1);
    expect(timeline.filter((e) => e.type === 'refund_success')).toEqual([expect.objectContaining({ detail: expect.objectContaining({ previousStatus: 'ABNORMAL', source: 'notification' }) })]);
  });

  it('frees the amount of an ABNORMAL refund once WeChat closes it', async () => {
    const no = await paidOrder();
    await shop.sandbox.nextRefundOutcome('ABNORMAL');
    const r = await refund({ outTradeNo: no, amount: 600, reason: '异常' }).expect(201);
    await shop.sandbox.waitForNotification({ outRefundNo: r.body.outRefundNo });
    expect((await refund({ outTradeNo: no, amount: 401, reason: '超额' }).expect(409)).body.details).toMatchObject({ inFlight: 600, abnormal: 600, remaining: 400 });
    expect(await notifyRefund(no, r.body.outRefundNo, 'CLOSED', 600)).toBe(true);
    expect((await shop.admin().get(`/admin/refunds/${r.body.outRefundNo}`).expect(200)).body.status).toBe('CLOSED');
    // CLOSED is final: a late SUCCESS does not move it
    expect(await notifyRefund(no, r.body.outRefundNo, 'SUCCESS', 600)).toBe(true);
    expect((await shop.admin().get(`/admin/refunds/${r.body.outRefundNo}`).expect(200)).body.status).toBe('CLOSED');
    await refund({ outTradeNo: no, amount: 1000, reason: '重新退款' }).expect(201);
    expect((await timelineOf(no)).filter((e) => e.type === 'refund_closed')).toEqual([expect.objectContaining({ detail: expect.objectContaining({ previousStatus: 'ABNORMAL' }) })]);
  });

  it('answers 502 with the outRefundNo when WeChat does not answer, keeps the refund PROCESSING, and lets the job settle it', async () => {
    const no = await paidOrder();
    await shop.sandbox.failNext(version === 'v3' ? 'v3/refund/domestic/refunds' : 'secapi/pay/refund', '500', 3); // every retry fails (v2: err_code SYSTEMERROR)
    const res = await refund({ outTradeNo: no, amount: 700, reason: '微信故障' }).expect(502);
    expect(res.body).toMatchObject({ code: 'WECHAT_REFUND_OUTCOME_UNKNOWN', details: { outRefundNo: expect.stringMatching(/^R/), status: 'PROCESSING', wechatStatus: 500, wechatCode: 'SYSTEM_ERROR' } });
    expect(res.body.message).toContain('stays PROCESSING');
    const outRefundNo = res.body.details.outRefundNo as string;
    const rows = (await shop.admin().get(`/admin/refunds?outTradeNo=${no}`).expect(200)).body;
    expect(rows).toEqual([expect.objectContaining({ outRefundNo, status: 'PROCESSING', amount: 700 })]);
    // the amount stays reserved while the outcome is unknown
    expect((await refund({ outTradeNo: no, amount: 301, reason: '超额' }).expect(409)).body.details).toMatchObject({ inFlight: 700, remaining: 300 });
    const audit = (await shop.admin().get(`/admin/audit?action=refund.create&target=${outRefundNo}`).expect(200)).body.items;
    expect(audit).toEqual([expect.objectContaining({ outcome: 'error:WECHAT_REFUND_OUTCOME_UNKNOWN' })]);

    // the job asks WeChat, which says "not found": the request may still be held somewhere, so the row is
    // never FAILED (that would free the amount for a second refund: a double payout). The job re-sends
    // the very same request, same out_refund_no, and WeChat refunds it once.
    expect(await shop.t.app.get(RefundJobs).run()).toBeGreaterThanOrEqual(1);
    const afterJob = (await shop.admin().get(`/admin/refunds?outTradeNo=${no}`).expect(200)).body;
    expect(afterJob).toEqual([expect.objectContaining({ outRefundNo, status: expect.stringMatching(/^(PROCESSING|SUCCESS)$/), refundId: expect.any(String) })]);
    expect((await timelineOf(no)).map((e) => e.type)).toEqual(expect.arrayContaining(['refund_requested', 'refund_outcome_unknown', 'refund_resent']));
    expect((await timelineOf(no)).map((e) => e.type)).not.toContain('refund_failed');
    // still reserved while in flight: a second full refund is refused
    await refund({ outTradeNo: no, amount: 700, reason: '再退一次' }).expect(409);

    // ...and the held original request reaching WeChat late changes nothing: same out_refund_no, paid once
    // (sent as APIv3 whatever the version: WeChat keeps one refund per out_refund_no, whichever API asked)
    const keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
    const late = await new TestMerchant(shop.baseUrl, keystore).request('POST', '/v3/refund/domestic/refunds', {
      out_trade_no: no,
      out_refund_no: outRefundNo,
      reason: '微信故障',
      notify_url: `${shop.baseUrl}/notify/wechatpay/refund`,
      amount: { refund: 700, total: 1000, currency: 'CNY' },
    });
    expect(late.status).toBe(200);
    await shop.sandbox.waitForNotification({ outRefundNo });
    await shop.sandbox.deliver({ outRefundNo }, { times: 5 });
    expect((await shop.admin().get(`/admin/refunds/${outRefundNo}`).expect(200)).body).toMatchObject({ status: 'SUCCESS', refundId: expect.any(String) });
    expect((await shop.admin().get(`/admin/orders/${no}`).expect(200)).body.refundedTotal).toBe(700);
    expect((await timelineOf(no)).filter((e) => e.type === 'refund_success')).toHaveLength(1);
  });

  it('a reserved refund whose row was committed but never sent (lost commit acknowledgement) is sent by the job at once, not left holding the amount', async () => {
    const no = await paidOrder();
    const ds = shop.t.app.get<DataSource>(getDataSourceToken());
    const outRefundNo = `RUNSENT${Date.now()}`;
    const at = new Date(Date.now() - 6_000); // a few seconds old, far less than any REFUND_QUERY_AFTER
    await ds.getRepository(Refund).insert({ outRefundNo, outTradeNo: no, amount: 400, reason: '提交丢失', status: 'PROCESSING', requestHash: 'x'.repeat(64), source: 'admin', createdAt: at, updatedAt: at });
    await refund({ outTradeNo: no, amount: 700, reason: '被占用' }).expect(409);
    expect(await shop.t.app.get(RefundJobs).run()).toBeGreaterThanOrEqual(1);
    await shop.sandbox.waitForNotification({ outRefundNo });
    await shop.sandbox.deliver({ outRefundNo });
    expect((await shop.admin().get(`/admin/refunds/${outRefundNo}`).expect(200)).body).toMatchObject({ status: 'SUCCESS', amount: 400 });
    expect((await shop.admin().get(`/admin/orders/${no}`).expect(200)).body.refundedTotal).toBe(400);
  });

  it('an over-refund at WeChat (money refunded elsewhere) answers 400 INVALID_REQUEST by default: 422, row FAILED, the rest still refundable', async () => {
    const no = await paidOrder();
    // a refund made elsewhere (the merchant portal) has already used most of the money at WeChat
    const keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
    const merchant = new TestMerchant(shop.baseUrl, keystore);
    const outside = await merchant.request('POST', '/v3/refund/domestic/refunds', { out_trade_no: no, out_refund_no: `${no}PORTAL`, amount: { refund: 900, total: 1000, currency: 'CNY' } });
    expect(outside.status).toBe(200);
    const res = await refund({ outTradeNo: no, amount: 500, reason: '超过微信可退' }).expect(422);
    expect(res.body).toMatchObject({ code: 'WECHAT_REFUND_REJECTED', details: { wechatCode: 'INVALID_REQUEST', wechatStatus: 400 } });
    expect((await shop.admin().get(`/admin/refunds/${res.body.details.outRefundNo}`).expect(200)).body).toMatchObject({ status: 'FAILED', wechatCode: 'INVALID_REQUEST' });
    await refund({ outTradeNo: no, amount: 100, reason: '仍可退' }).expect(201);
  });

  it('maps WeChat\'s 400 INVALID_REQUEST (a business rule, e.g. more than is refundable there) the same way: 422 with the code, row FAILED, nothing lost', async () => {
    const no = await paidOrder();
    // WeChat's record of the order differs from ours, so it refuses the refund's amount.total
    await shop.sandbox.alterTransaction(no, { total: 900 });
    const res = await refund({ outTradeNo: no, amount: 950, reason: '超过微信可退' }).expect(422);
    expect(res.body).toMatchObject({ code: 'WECHAT_REFUND_REJECTED', details: { wechatCode: 'INVALID_REQUEST', wechatStatus: 400, status: 'FAILED', outRefundNo: expect.stringMatching(/^R/) } });
    const outRefundNo = res.body.details.outRefundNo as string;
    expect((await shop.admin().get(`/admin/refunds/${outRefundNo}`).expect(200)).body).toMatchObject({ status: 'FAILED', wechatCode: 'INVALID_REQUEST', amount: 950, wechatMessage: expect.any(String) });
    const failedEvents = (await timelineOf(no)).filter((e) => e.type === 'refund_failed');
    expect(failedEvents).toEqual([expect.objectContaining({ detail: expect.objectContaining({ outRefundNo, wechatCode: 'INVALID_REQUEST', wechatStatus: 400 }) })]);
    expect((await shop.admin().get(`/admin/audit?action=refund.create&target=${outRefundNo}`).expect(200)).body.items).toEqual([
      expect.objectContaining({ outcome: 'error:WECHAT_REFUND_REJECTED' }),
    ]);
    expect((await shop.admin().get(`/admin/orders/${no}`).expect(200)).body).toMatchObject({ status: 'PAID', refundedTotal: 0 });
  });

  // Real WeChat answers an over-refund with 400 INVALID_REQUEST (protocol E.5); the sandbox can be told to
  // do so with SANDBOX_OVER_REFUND_ERROR. Runs once the sandbox has that setting.
  const overRefundSetting = 'SANDBOX_OVER_REFUND_ERROR' in new SandboxEnv();
  (overRefundSetting ? it : it.skip)('maps an over-refund answered 400 INVALID_REQUEST (SANDBOX_OVER_REFUND_ERROR) to 422, row FAILED', async () => {
    const strict = await Shop.start({ env: { SANDBOX_REFUND_DELAY: '10s', SANDBOX_OVER_REFUND_ERROR: 'INVALID_REQUEST', WECHATPAY_API_VERSION: version } });
    try {
      const user = await strict.login('o_over_refund');
      const product = await strict.product('超额退款', 1000);
      const no = await strict.paidOrder(user, [{ productId: product.id, quantity: 1 }]);
      const keystore = await loadOrCreateSandboxKeystore(strict.t.config.sandbox.dataDir);
      const outside = await new TestMerchant(strict.baseUrl, keystore).request('POST', '/v3/refund/domestic/refunds', { out_trade_no: no, out_refund_no: `${no}PORTAL`, amount: { refund: 900, total: 1000, currency: 'CNY' } });
      expect(outside.status).toBe(200);
      const res = await strict.admin().post('/admin/refunds').send({ outTradeNo: no, amount: 500, reason: '超额' }).expect(422);
      expect(res.body).toMatchObject({ code: 'WECHAT_REFUND_REJECTED', details: { wechatCode: 'INVALID_REQUEST', wechatStatus: 400 } });
      expect((await strict.admin().get(`/admin/refunds/${res.body.details.outRefundNo}`).expect(200)).body).toMatchObject({ status: 'FAILED', wechatCode: 'INVALID_REQUEST' });
    } finally {
      await strict.close();
    }
  });

  it('refuses bad input and unpaid or unknown orders, changing nothing', async () => {
    const unpaid = await shop.placeOrder(shopper, [{ productId, quantity: 1 }]);
    expect((await refund({ outTradeNo: unpaid, amount: 1, reason: 'x' }).expect(409)).body.code).toBe('ORDER_NOT_PAID');
    expect((await refund({ outTradeNo: 'NOSUCHORDER', amount: 1, reason: 'x' }).expect(404)).body.code).toBe('ORDER_NOT_FOUND');
    for (const [body, message] of [
      [{ outTradeNo: unpaid, amount: 0, reason: 'x' }, 'amount must be at least 1 fen'],
      [{ outTradeNo: unpaid, amount: 1.5, reason: 'x' }, 'amount must be an integer number of fen'],
      [{ outTradeNo: unpaid, amount: 1 }, 'reason is required'],
      [{ amount: 1, reason: 'x' }, 'outTradeNo is required'],
      [{ outTradeNo: unpaid, amount: 1, reason: 'x'.repeat(81) }, 'reason must be 1-80 characters'],
      [{ outTradeNo: unpaid, amount: 1, reason: 'x', outRefundNo: 'bad no!' }, 'outRefundNo must be'],
      [{ outTradeNo: unpaid, amount: 1, reason: 'x', extra: 1 }, 'property extra should not exist'],
    ] as const) {
      const res = await refund(body).expect(400);
      expect(res.body.message).toContain(message);
    }
    expect((await shop.admin().get(`/admin/refunds?outTradeNo=${unpaid}`).expect(200)).body).toEqual([]);
  });

  it('requires the admin token, and audits refunds', async () => {
    await shop.http().post('/admin/refunds').send({ outTradeNo: 'x', amount: 1, reason: 'x' }).expect(401);
    await shop.http().post('/admin/refunds').set('Authorization', 'Bearer wrong-token-0000000000').send({ outTradeNo: 'x', amount: 1, reason: 'x' }).expect(401);
    await shop.http().get('/admin/orders').set('Authorization', `Bearer ${ADMIN_TOKEN}x`).expect(401);
    const audit = (await shop.admin().get('/admin/audit?action=refund.create').expect(200)).body.items;
    expect(audit.length).toBeGreaterThan(0);
    expect(audit.map((a: { outcome: string }) => a.outcome)).toEqual(expect.arrayContaining(['ok', 'error:REFUND_EXCEEDS_REMAINING']));
  });
});

describe.each(['v3', 'v2'] as const)('automatic refund of a payment for a closed order (WECHATPAY_API_VERSION=%s)', (version) => {
  it('refunds it in full once (PAID_AFTER_CLOSE_ACTION=refund, the default)', async () => {
    const shop = await Shop.start({ env: { SANDBOX_REFUND_DELAY: '10s', WECHATPAY_API_VERSION: version } });
    try {
      const keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
      const user = await shop.login('o_auto_refund');
      const product = await shop.product('关单后支付退款', 600);
      const no = await shop.placeOrder(user, [{ productId: product.id, quantity: 1 }]);
      const prepayId = await shop.prepay(user, no);
      // paid at WeChat, but the notification is lost and we close the order ourselves first
      await shop.sandbox.dropNotifications(true);
      await shop.sandbox.pay(prepayId);
      await shop.t.app.get(OrderLifecycle).closeLocally(no, 'test');
      await shop.sandbox.dropNotifications(false);
      const res = await postNotification(shop.baseUrl, craftPayment(version, keystore, no, 600, { transactionId: (await shop.sandbox.transaction(no)).transaction_id }));
      expect(await acknowledged(version, res)).toBe(true);
      await shop.waitForStatus(no, 'REFUNDED');
      const refunds = (await shop.admin().get(`/admin/refunds?outTradeNo=${no}`).expect(200)).body;
      expect(refunds).toEqual([expect.objectContaining({ outRefundNo: `AC${no}`, amount: 600, status: 'SUCCESS', source: 'auto' })]);
    } finally {
      await shop.close();
    }
  });
});
