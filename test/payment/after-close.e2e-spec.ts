import { getDataSourceToken } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { Order } from '../../src/payment/entities/order.entity';
import { OrderLifecycle } from '../../src/payment/order-lifecycle.service';
import { PaymentJobs } from '../../src/payment/payment.jobs';
import { loadOrCreateSandboxKeystore } from '../../src/sandbox/keystore';
import { acknowledged, craftPayment, postNotification } from '../helpers/craft-notification';
import { Login } from '../helpers/login';
import { Shop } from '../helpers/shop';

interface RefundRow {
  outRefundNo: string;
  status: string;
  amount: number;
  source: string;
}

/** Paid at WeChat, while we closed the order (its notification held back until the test says). */
async function paidWhileClosedHere(shop: Shop, user: Login, productId: number): Promise<{ no: string; transactionId: string }> {
  const no = await shop.placeOrder(user, [{ productId, quantity: 1 }]);
  const prepayId = await shop.prepay(user, no);
  await shop.sandbox.dropNotifications(true);
  try {
    expect((await shop.sandbox.pay(prepayId)).result).toBe('ok');
    await shop.t.app.get(OrderLifecycle).closeLocally(no, 'test');
  } finally {
    await shop.sandbox.dropNotifications(false);
  }
  return { no, transactionId: (await shop.sandbox.transaction(no)).transaction_id! };
}

/**
 * The state a crash leaves behind: the payment after close committed (as the applier commits it), but
 * the process died before the in-memory follow-up event ran.
 */
async function committedWithoutFollowUp(shop: Shop, no: string, transactionId: string, total: number): Promise<void> {
  const res = await shop.t.app
    .get<DataSource>(getDataSourceToken())
    .getRepository(Order)
    .update({ outTradeNo: no, status: 'CLOSED' }, { status: 'PAID_AFTER_CLOSE', transactionId, paidTotal: total, paidAt: new Date(), updatedAt: new Date() });
  expect(res.affected).toBe(1);
}

const refundsOf = async (shop: Shop, no: string): Promise<RefundRow[]> => (await shop.admin().get(`/admin/refunds?outTradeNo=${no}`).expect(200)).body;
const timelineOf = async (shop: Shop, no: string): Promise<string[]> =>
  (await shop.admin().get(`/admin/orders/${no}`).expect(200)).body.timeline.map((e: { type: string }) => e.type);
const stockOf = async (shop: Shop, productId: number): Promise<number> =>
  (await shop.admin().get('/admin/products').expect(200)).body.find((p: { id: number }) => p.id === productId).stock;

async function waitFor<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/* Once per API version (issue 14): the same follow-ups of a payment after close through the payment port (v2: secapi/pay/refund, XML notifications). */
describe.each(['v3', 'v2'] as const)('payments after close with WECHATPAY_API_VERSION=%s', (version) => {
  /** The sandbox's name of the refund call. */
  const REFUND_CALL = version === 'v3' ? 'v3/refund/domestic/refunds' : 'secapi/pay/refund';

  describe('payments after close are settled even when the follow-up is lost (PAID_AFTER_CLOSE_ACTION=refund)', () => {
    let shop: Shop;
    let jobs: PaymentJobs;
    let user: Login;

    beforeAll(async () => {
      shop = await Shop.start({ env: { WECHATPAY_API_VERSION: version, SANDBOX_REFUND_DELAY: '10s' } });
      jobs = shop.t.app.get(PaymentJobs);
      user = await shop.login(`o_after_close_refund_${version}`);
    });
    afterAll(() => shop?.close());

    it('refunds a payment after close whose follow-up died with the process, once the sweep finds it', async () => {
      const product = await shop.product('崩溃后退款', 800);
      const { no, transactionId } = await paidWhileClosedHere(shop, user, product.id);
      await committedWithoutFollowUp(shop, no, transactionId, 800);

      // Not at once: it is unresolved only after a while (PAYMENT_AFTER_CLOSE_RETRY_AFTER, default 20s).
      expect(await jobs.resolvePaidAfterClose()).toMatchObject({ ran: true, retried: 0 });
      expect(await shop.status(no)).toBe('PAID_AFTER_CLOSE');

      expect(await jobs.resolvePaidAfterClose({ olderThanMs: 0 })).toMatchObject({ ran: true, retried: 1 });
      await shop.waitForStatus(no, 'REFUNDED');
      expect(await refundsOf(shop, no)).toEqual([expect.objectContaining({ outRefundNo: `AC${no}`, amount: 800, status: 'SUCCESS', source: 'auto' })]);
      expect(await timelineOf(shop, no)).toEqual(expect.arrayContaining(['after_close:retry', 'after_close:refund', 'refund_requested', 'refund_success']));
      // resolved: nothing more to pursue
      expect(await jobs.resolvePaidAfterClose({ olderThanMs: 0 })).toMatchObject({ retried: 0 });
    });

    it('leaves a payment after close alone while the refund module follows a refund of it', async () => {
      const product = await shop.product('退款处理中', 900);
      const { no, transactionId } = await paidWhileClosedHere(shop, user, product.id);
      await committedWithoutFollowUp(shop, no, transactionId, 900);
      // An operator refunds it by hand; WeChat does not answer, so the refund stays PROCESSING.
      await shop.sandbox.failNext(REFUND_CALL, '500', 3);
      await shop.admin().post('/admin/refunds').send({ outTradeNo: no, amount: 900, reason: '人工退款' }).expect(502);
      expect((await refundsOf(shop, no)).map((r) => r.status)).toEqual(['PROCESSING']);
      expect(await jobs.resolvePaidAfterClose({ olderThanMs: 0 })).toMatchObject({ ran: true, retried: 0 });
      expect(await refundsOf(shop, no)).toHaveLength(1); // no second refund started beside it
      expect(await timelineOf(shop, no)).not.toContain('after_close:retry');
      await shop.sandbox.reset();
    });

    it('retries a refund WeChat refused, under the next derived number', async () => {
      const keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
      const product = await shop.product('退款失败重试', 900);
      const { no, transactionId } = await paidWhileClosedHere(shop, user, product.id);
      // The automatic refund is refused (429 on every attempt): FAILED, the order still PAID_AFTER_CLOSE.
      await shop.sandbox.failNext(REFUND_CALL, '429', 3);
      const res = await postNotification(shop.baseUrl, craftPayment(version, keystore, no, 900, { transactionId }));
      expect(await acknowledged(version, res)).toBe(true);
      await waitFor(() => refundsOf(shop, no), (r) => r.length === 1 && r[0].status === 'FAILED', 'the first automatic refund');
      expect(await shop.status(no)).toBe('PAID_AFTER_CLOSE');

      expect(await jobs.resolvePaidAfterClose({ olderThanMs: 0 })).toMatchObject({ retried: 1 });
      await shop.waitForStatus(no, 'REFUNDED');
      const refunds = await refundsOf(shop, no);
      expect(refunds.map((r) => [r.outRefundNo, r.status])).toEqual([
        [`AC${no}-2`, 'SUCCESS'],
        [`AC${no}`, 'FAILED'],
      ]);
      expect(await timelineOf(shop, no)).toEqual(expect.arrayContaining(['notification:paid_after_close', 'refund_failed', 'after_close:retry', 'refund_success']));
    });
  });

  describe('the sweep delay for a payment after close is configuration (PAYMENT_AFTER_CLOSE_RETRY_AFTER)', () => {
    it('settles a payment after close whose follow-up event was lost within the configured delay, not after a hard-coded 5 minutes', async () => {
      const shop = await Shop.start({ env: { WECHATPAY_API_VERSION: version, SANDBOX_REFUND_DELAY: '10s', PAYMENT_AFTER_CLOSE_RETRY_AFTER: '1s' } });
      try {
        const jobs = shop.t.app.get(PaymentJobs);
        const user = await shop.login(`o_after_close_delay_${version}`);
        const product = await shop.product('事件丢失', 600);
        const { no, transactionId } = await paidWhileClosedHere(shop, user, product.id);
        await committedWithoutFollowUp(shop, no, transactionId, 600);
        const started = Date.now();
        // the sweep as the job runs it (no override): picks it up once the configured delay has passed
        await waitFor(async () => (await jobs.resolvePaidAfterClose()).retried ?? 0, (n) => n === 1, 'the sweep to pursue the lost event', 10_000);
        expect(Date.now() - started).toBeLessThan(10_000);
        await shop.waitForStatus(no, 'REFUNDED');
        expect(await refundsOf(shop, no)).toEqual([expect.objectContaining({ outRefundNo: `AC${no}`, amount: 600, status: 'SUCCESS' })]);
      } finally {
        await shop.close();
      }
    });
  });

  describe('payments after close with PAID_AFTER_CLOSE_ACTION=reinstate', () => {
    let shop: Shop;
    let jobs: PaymentJobs;
    let alice: Login;
    let bob: Login;

    beforeAll(async () => {
      shop = await Shop.start({ env: { WECHATPAY_API_VERSION: version, PAID_AFTER_CLOSE_ACTION: 'reinstate', SANDBOX_REFUND_DELAY: '10s' } });
      jobs = shop.t.app.get(PaymentJobs);
      alice = await shop.login(`o_reinstate_alice_${version}`);
      bob = await shop.login(`o_reinstate_bob_${version}`);
    });
    afterAll(() => shop?.close());

    it('refunds instead when the stock is gone, and keeps to the refund once decided (retried, never reinstated later)', async () => {
      const product = await shop.product('最后一件复原', 1000, 1);
      const { no } = await paidWhileClosedHere(shop, alice, product.id);
      // The closed order gave its unit back; another shopper takes it.
      const bobs = await shop.placeOrder(bob, [{ productId: product.id, quantity: 1 }]);
      expect(await stockOf(shop, product.id)).toBe(0);
      // and the fallback refund is refused at first
      await shop.sandbox.failNext(REFUND_CALL, '429', 3);
      const [delivered] = await shop.sandbox.deliver({ outTradeNo: no });
      expect(delivered).toMatchObject({ status: version === 'v3' ? 204 : 200, ok: true });
      await waitFor(() => refundsOf(shop, no), (r) => r.length === 1 && r[0].status === 'FAILED', 'the fallback refund');
      expect(await shop.status(no)).toBe('PAID_AFTER_CLOSE');
      expect(await timelineOf(shop, no)).toEqual(expect.arrayContaining(['notification:paid_after_close', 'reinstate_failed', 'refund_failed']));

      // The unit comes back (bob cancels), but the refund was decided: the sweep refunds again.
      await shop.http().post(`/orders/${bobs}/cancel`).set(bob.headers).expect(200);
      expect(await stockOf(shop, product.id)).toBe(1);
      expect(await jobs.resolvePaidAfterClose({ olderThanMs: 0 })).toMatchObject({ retried: 1 });
      await shop.waitForStatus(no, 'REFUNDED');
      expect((await refundsOf(shop, no)).map((r) => [r.outRefundNo, r.status])).toEqual([
        [`AC${no}-2`, 'SUCCESS'],
        [`AC${no}`, 'FAILED'],
      ]);
      expect(await stockOf(shop, product.id)).toBe(1);
      expect(await timelineOf(shop, no)).not.toContain('reinstated');
    });

    it('reinstates a payment after close whose follow-up died with the process, once the sweep finds it', async () => {
      const product = await shop.product('崩溃后复原', 1100, 2);
      const { no, transactionId } = await paidWhileClosedHere(shop, alice, product.id);
      expect(await stockOf(shop, product.id)).toBe(2);
      await committedWithoutFollowUp(shop, no, transactionId, 1100);
      expect(await jobs.resolvePaidAfterClose({ olderThanMs: 0 })).toMatchObject({ retried: 1 });
      expect(await shop.status(no)).toBe('PAID');
      expect(await stockOf(shop, product.id)).toBe(1);
      expect(await refundsOf(shop, no)).toEqual([]);
      expect(await timelineOf(shop, no)).toEqual(expect.arrayContaining(['after_close:retry', 'reinstated']));
      expect(await jobs.resolvePaidAfterClose({ olderThanMs: 0 })).toMatchObject({ retried: 0 });
    });
  });

  describe('payments after close with PAID_AFTER_CLOSE_ACTION=hold', () => {
    it('leaves them to an operator: the sweep does not pursue them', async () => {
      const shop = await Shop.start({ env: { WECHATPAY_API_VERSION: version, PAID_AFTER_CLOSE_ACTION: 'hold' } });
      try {
        const user = await shop.login(`o_after_close_hold_${version}`);
        const product = await shop.product('人工处理', 100);
        const { no, transactionId } = await paidWhileClosedHere(shop, user, product.id);
        await committedWithoutFollowUp(shop, no, transactionId, 100);
        expect(await shop.t.app.get(PaymentJobs).resolvePaidAfterClose({ olderThanMs: 0 })).toMatchObject({ ran: true, retried: 0 });
        expect(await shop.status(no)).toBe('PAID_AFTER_CLOSE');
        expect(await refundsOf(shop, no)).toEqual([]);
      } finally {
        await shop.close();
      }
    });
  });
});
