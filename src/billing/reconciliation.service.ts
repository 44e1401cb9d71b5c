import { Injectable, Logger, Optional } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import { Repository } from 'typeorm';
import { Clock } from '../common/clock';
import { BadRequestError, ConflictError, NotFoundError } from '../common/errors/app-error';
import { LeaseService } from '../database/lease.service';
import { Metrics } from '../metrics/metrics.service';
import { OrderService, ReconcileOrder } from '../payment/order.service';
import { PaymentApplier } from '../payment/payment-applier.service';
import { SubMerchantsService } from '../payment/sub-merchants.service';
import { RefundService } from '../refund/refund.service';
import { WechatCredentials } from '../wechat/wechat-credentials';
import { parseBillDate } from './bill-date';
import { BillingService } from './billing.service';
import { Reconciliation } from './entities/reconciliation.entity';
import { TradeBillRecord, TradeBillSummary, parseTradeBillBatches } from './trade-bill-parser';

export type DifferenceType =
  | 'only_in_wechat'
  | 'only_here'
  | 'amount_mismatch'
  | 'status_mismatch'
  | 'refund_only_in_wechat'
  | 'refund_only_here'
  | 'refund_amount_mismatch'
  | 'refund_status_mismatch';

export interface Difference {
  type: DifferenceType;
  outTradeNo: string;
  outRefundNo?: string;
  wechatAmount?: number;
  ourAmount?: number;
  wechatState?: string;
  ourStatus?: string;
  transactionId?: string;
  /** What the reconciliation did about it, if anything. */
  action?: string;
  detail: string;
}

export interface ReconciliationResult {
  date: string;
  /** The sub-merchant reconciled (service-provider mode only; absent in direct mode). */
  subMchid?: string;
  status: 'done' | 'failed';
  startedAt: string;
  durationMs: number;
  summary: {
    billRows: number;
    payments: { inBill: number; matched: number; billAmount: number; ourAmount: number; ourCount: number };
    refunds: { inBill: number; matched: number; billAmount: number; ourAmount: number; ourCount: number };
    /** Rows of other trade states (REVOKED, …): not payments, but checked against our orders. */
    otherRows: number;
    /** The bill's own summary row, and whether the rows add up to it (what does not, in billSummaryProblems). */
    billSummary: Omit<TradeBillSummary, 'kind' | 'line'> | null;
    billSummaryConsistent: boolean;
    /** WeChat answered NO_STATEMENT_EXIST: it had no trades that day (there is no bill to compare). */
    noTradesAtWechat?: boolean;
    billSummaryProblems?: string[];
    differenceCount: number;
    /** How many differences are stored (and listed) when there were more than MAX_STORED_DIFFERENCES. */
    differencesStored?: number;
    byType: Partial<Record<DifferenceType, number>>;
    /** Amounts (fen) by outcome, for the console's chart. */
    amounts: { matched: number; onlyInWechat: number; onlyHere: number; mismatched: number; refunded: number };
    /** Payments only in WeChat applied to orders here (the first APPLIED_LISTED outTradeNos listed). */
    appliedFromBill: number;
    appliedOutTradeNos: string[];
    /** Refund results taken from the bill (PROCESSING/ABNORMAL/FAILED here, SUCCESS there). */
    appliedRefundsFromBill: number;
    appliedOutRefundNos: string[];
  };
  differences: Difference[];
  error?: string;
}

const PAID_HERE = new Set(['PAID', 'REFUNDED', 'PAID_AFTER_CLOSE']);
/** Refund statuses here that a SUCCESS row in the (hash-verified) bill settles, as a notification would. */
const REFUND_SETTLED_BY_BILL = new Set(['PROCESSING', 'ABNORMAL', 'FAILED']);
export const MAX_STORED_DIFFERENCES = 50_000;
const BATCH = 2000;
/** How many applied numbers the result (and its audit row) lists; the counts are always complete. */
export const APPLIED_LISTED = 100;
/**
 * The differences are stored as JSON; above this size as gzip (base64, prefixed GZIP_PREFIX). 50,000
 * differences are up to ~21 MB of JSON: more than a MySQL MEDIUMTEXT (16 MB) and than MariaDB's
 * default max_allowed_packet (16 MB), which no column type would fix. Compressed they are a few MB.
 */
const COMPRESS_ABOVE = 1 << 20;
/** Upper bound of what one stored row may take, well inside both limits above. */
const MAX_STORED_BYTES = 12 << 20;
const GZIP_PREFIX = 'gzip64:';
const LEASE_TTL_MS = 30 * 60_000;
const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** Another reconciliation of the same day (and sub-merchant) is running (here or on another instance). */
export class ReconciliationRunningError extends ConflictError {
  constructor(date: string, subMchid = '') {
    const of = subMchid ? `${date} of sub-merchant ${subMchid}` : date;
    super(
      'RECONCILIATION_RUNNING',
      `the reconciliation of ${of} is already running (started by an operator or the daily job, on this or another instance); wait for it to finish and read the result at GET /admin/reconciliations/${date}${subMchid ? `?subMchid=${subMchid}` : ''}`,
      { date, ...(subMchid ? { subMchid } : {}) },
    );
  }
}

const SUB_MCHID = /^\d{8,12}$/;

/**
 * The sub-merchant a reconciliation request names: '' in direct mode (where naming one is a 400: there
 * are no sub-merchants), the default one (WECHATPAY_SUB_MCHID) when a provider names none.
 */
export function reconciliationSubMchid(value: unknown, partner: { defaultSubMchid?: string; partnerMode: boolean }): string {
  if (!partner.partnerMode) {
    if (value !== undefined) {
      throw new BadRequestError('PARTNER_MODE_OFF', 'subMchid is for service-provider mode; this deployment is in direct mode (WECHATPAY_SUB_MCHID is not set): reconcile without subMchid');
    }
    return '';
  }
  if (value === undefined) return partner.defaultSubMchid!;
  if (typeof value !== 'string' || !SUB_MCHID.test(value)) {
    throw new BadRequestError('INVALID_SUB_MCHID', 'subMchid must be the numeric mchid of a sub-merchant (8 to 12 digits), given once');
  }
  return value;
}

/**
 * A copy of a short string that does not keep its source alive. The parser's fields are slices of the
 * decompressed chunk they came from; kept as they are in a Set, a million of them would pin the whole
 * file in memory.
 */
function detached(text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8');
}

/** '2026-11-24 10:00:00' (Beijing, as in bills) → RFC 3339 with +08:00. */
function billTimeToRfc3339(time: string): string {
  return `${time.replace(' ', 'T')}+08:00`;
}

/**
 * Daily reconciliation: the day's ALL trade bill, parsed as it streams in, against our orders and
 * refunds. Lookups go in batches (one query per 2,000 bill rows); only the set of out_trade_nos seen in
 * the bill is kept in memory, to find what is paid here but absent there afterwards. Payments WeChat
 * has and we do not are applied — after the whole file has passed its hash check.
 */
@Injectable()
export class ReconciliationService {
  private readonly logger = new Logger(ReconciliationService.name);

  constructor(
    @InjectRepository(Reconciliation) private readonly results: Repository<Reconciliation>,
    private readonly leases: LeaseService,
    private readonly billing: BillingService,
    private readonly orders: OrderService,
    private readonly refunds: RefundService,
    private readonly applier: PaymentApplier,
    private readonly credentials: WechatCredentials,
    private readonly clock: Clock,
    private readonly subMerchants: SubMerchantsService,
    @Optional() private readonly metrics?: Metrics,
  ) {}

  private readonly running = new Set<string>();

  /** The sub-merchant a request names ('' in direct mode); see reconciliationSubMchid. */
  subMchidOf(value: unknown): string {
    return reconciliationSubMchid(value, this.subMerchants);
  }

  /**
   * Reconciles a day, at most once at a time per day (and sub-merchant) across instances: the
   * operator's POST and the daily job share the lease `billing.reconcile.<date>` (service-provider
   * mode: `billing.reconcile.<date>.<sub_mchid>`, one per sub-merchant), plus an in-process guard,
   * since a lease is re-entrant for its own instance. A second run while one is going:
   * ReconciliationRunningError (409). `subMchidText`: the sub-merchant (provider only; default
   * WECHATPAY_SUB_MCHID), which must be registered in sub_merchants.
   */
  async run(dateText: unknown, subMchidText?: unknown): Promise<ReconciliationResult> {
    const subMchid = this.subMchidOf(subMchidText);
    const { date } = parseBillDate(dateText, this.clock.nowMs());
    if (subMchid && !(await this.subMerchants.isRegistered(subMchid))) {
      throw new BadRequestError('UNKNOWN_SUB_MERCHANT', `sub-merchant ${subMchid} is not registered (GET /admin/sub-merchants lists them)`, { subMchid });
    }
    const key = subMchid ? `${date}.${subMchid}` : date;
    if (this.running.has(key)) throw new ReconciliationRunningError(date, subMchid);
    this.running.add(key);
    try {
      const { ran, result } = await this.leases.runExclusive(`billing.reconcile.${key}`, LEASE_TTL_MS, () => this.reconcile(date, subMchid));
      if (!ran) throw new ReconciliationRunningError(date, subMchid);
      return result!;
    } finally {
      this.running.delete(key);
    }
  }

  /** `subMchid`: '' in direct mode; a provider's sub-merchant: its bill (sub_mchid) against its orders only. */
  private async reconcile(date: string, subMchid: string): Promise<ReconciliationResult> {
    const { from, to } = parseBillDate(date, this.clock.nowMs());
    const started = Date.now();
    const startedAt = this.clock.now().toISOString();
    const differences: Difference[] = [];
    let differenceCount = 0;
    const byType: Partial<Record<DifferenceType, number>> = {};
    const add = (d: Difference) => {
      differenceCount++;
      byType[d.type] = (byType[d.type] ?? 0) + 1;
      if (differences.length < MAX_STORED_DIFFERENCES) differences.push(d);
      return d;
    };
    const amounts = { matched: 0, onlyInWechat: 0, onlyHere: 0, mismatched: 0, refunded: 0 };
    const payments = { inBill: 0, matched: 0, billAmount: 0, ourAmount: 0, ourCount: 0 };
    const refundStats = { inBill: 0, matched: 0, billAmount: 0, ourAmount: 0, ourCount: 0 };
    const seenTrades = new Set<string>();
    const seenRefunds = new Set<string>();
    // Payments to apply and refund results to take from the bill once it is verified, each with its
    // difference (a Map: the bill may hold a million rows).
    const toApply: TradeBillRecord[] = [];
    const applyDifference = new Map<string, Difference>();
    const refundsToApply: Array<{ outRefundNo: string; refundId: string; time: string; difference: Difference }> = [];
    let billRows = 0;
    let otherRows = 0;
    let billSummary: TradeBillSummary | null = null;
    let noTradesAtWechat = false;
    const rowSums = { settlement: 0, refund: 0, order: 0, requestedRefund: 0 };
    const applied = { payments: 0, outTradeNos: [] as string[], refunds: 0, outRefundNos: [] as string[] };
    type Summary = ReconciliationResult['summary'];
    /** The run's counts as they stand, in the stored key order; `bill` and `stored` are what a done run adds. */
    const summaryOf = (
      bill: Pick<Summary, 'billSummary' | 'billSummaryConsistent' | 'billSummaryProblems' | 'noTradesAtWechat'>,
      stored: Pick<Summary, 'differencesStored'>,
    ): Summary => ({
      billRows,
      payments,
      refunds: refundStats,
      otherRows,
      ...bill,
      differenceCount,
      ...stored,
      byType,
      amounts,
      appliedFromBill: applied.payments,
      appliedOutTradeNos: applied.outTradeNos,
      appliedRefundsFromBill: applied.refunds,
      appliedOutRefundNos: applied.outRefundNos,
    });

    /** A trade both sides know whose states disagree (WeChat's row amount and state, our order's). */
    const statusMismatch = (row: TradeBillRecord, order: ReconcileOrder, detail: string) =>
      add({
        type: 'status_mismatch',
        outTradeNo: row.outTradeNo,
        wechatAmount: row.orderAmount,
        ourAmount: order.paidTotal ?? order.total,
        wechatState: row.tradeState,
        ourStatus: order.status,
        transactionId: row.transactionId,
        detail,
      });

    /** An order of another sub-merchant in this sub-merchant's bill: reported, never applied. */
    const otherMerchant = (row: TradeBillRecord, order: ReconcileOrder | undefined): boolean => {
      if (!subMchid || !order || (order.subMchid ?? '') === subMchid) return false;
      statusMismatch(row, order, `in the bill of sub-merchant ${subMchid}, an order of ${order.subMchid || 'no sub-merchant'} here: check by hand`);
      return true;
    };

    const checkPayments = async (rows: TradeBillRecord[]) => {
      const ours = await this.orders.reconcileView(rows.map((r) => r.outTradeNo));
      for (const row of rows) {
        const order = ours.get(row.outTradeNo);
        const wechatAmount = row.orderAmount;
        if (otherMerchant(row, order)) {
          amounts.mismatched += wechatAmount;
          continue;
        }
        if (order?.status === 'ANOMALY') {
          // We know the order and WeChat says it is paid; ours was held as ANOMALY (amount or appid
          // did not match, …): not a payment we missed, a disagreement for a person to settle.
          amounts.mismatched += wechatAmount;
          statusMismatch(row, order, `paid at WeChat (${wechatAmount} fen), ANOMALY here (order total ${order.total} fen): check and settle by hand`);
          continue;
        }
        if (!order || !PAID_HERE.has(order.status)) {
          amounts.onlyInWechat += wechatAmount;
          const appliable = !!order && (order.status === 'NOTPAY' || order.status === 'CLOSED');
          if (appliable) toApply.push(row);
          const difference = add({
            type: 'only_in_wechat',
            outTradeNo: row.outTradeNo,
            wechatAmount,
            ourAmount: order?.total,
            wechatState: row.tradeState,
            ourStatus: order?.status ?? 'unknown',
            transactionId: row.transactionId,
            action: appliable ? 'apply_payment' : undefined,
            detail: order ? `paid at WeChat, ${order.status} here` : 'paid at WeChat, no such order here',
          });
          if (appliable) applyDifference.set(detached(row.outTradeNo), difference);
          continue;
        }
        const ourAmount = order.paidTotal ?? order.total;
        if (ourAmount !== wechatAmount || order.total !== wechatAmount) {
          amounts.mismatched += wechatAmount;
          add({ type: 'amount_mismatch', outTradeNo: row.outTradeNo, wechatAmount, ourAmount: order.total, wechatState: row.tradeState, ourStatus: order.status, transactionId: row.transactionId, detail: `WeChat ${wechatAmount} fen, here ${order.total} fen` });
          continue;
        }
        if (order.transactionId && row.transactionId && order.transactionId !== row.transactionId) {
          statusMismatch(row, order, `transaction ${row.transactionId} at WeChat, ${order.transactionId} here`);
          continue;
        }
        payments.matched++;
        amounts.matched += wechatAmount;
      }
    };

    /** Rows that are neither payments nor refunds (REVOKED, …): a problem only where we count the order paid. */
    const checkOthers = async (rows: TradeBillRecord[]) => {
      const ours = await this.orders.reconcileView(rows.map((r) => r.outTradeNo));
      for (const row of rows) {
        const order = ours.get(row.outTradeNo);
        if (!order || (!PAID_HERE.has(order.status) && order.status !== 'ANOMALY')) continue;
        if (otherMerchant(row, order)) continue;
        statusMismatch(row, order, `${row.tradeState} at WeChat, ${order.status} here`);
      }
    };

    const checkRefunds = async (rows: TradeBillRecord[]) => {
      const ours = new Map((await this.refunds.byNumbers(rows.map((r) => r.outRefundNo))).map((r) => [r.outRefundNo, r]));
      // A provider's sub-merchant bill: a refund of another sub-merchant's order is reported, never settled.
      const orderSubMchids = subMchid ? await this.orders.subMchidsOf([...ours.values()].map((r) => r.outTradeNo)) : undefined;
      for (const row of rows) {
        const refund = ours.get(row.outRefundNo);
        const refundOf = refund && orderSubMchids ? (orderSubMchids.get(refund.outTradeNo) ?? '') : subMchid;
        if (refund && refundOf !== subMchid) {
          add({
            type: 'refund_status_mismatch',
            outTradeNo: row.outTradeNo,
            outRefundNo: row.outRefundNo,
            wechatAmount: row.refundAmount,
            ourAmount: refund.amount,
            wechatState: row.refundStatus,
            ourStatus: refund.status,
            detail: `in the bill of sub-merchant ${subMchid}, a refund of an order of ${refundOf || 'no sub-merchant'} here: check by hand`,
          });
          continue;
        }
        if (!refund) {
          add({
            type: 'refund_only_in_wechat',
            outTradeNo: row.outTradeNo,
            outRefundNo: row.outRefundNo,
            wechatAmount: row.refundAmount,
            wechatState: row.refundStatus,
            ourStatus: 'unknown',
            detail: 'refunded at WeChat, no such refund here (made in the merchant portal?)',
          });
          continue;
        }
        if (refund.amount !== row.refundAmount) {
          add({ type: 'refund_amount_mismatch', outTradeNo: row.outTradeNo, outRefundNo: row.outRefundNo, wechatAmount: row.refundAmount, ourAmount: refund.amount, wechatState: row.refundStatus, ourStatus: refund.status, detail: `WeChat ${row.refundAmount} fen, here ${refund.amount} fen` });
          continue;
        }
        if (refund.status !== 'SUCCESS') {
          // We have the refund, WeChat's bill has it refunded. Like a payment only in WeChat, the verified
          // bill settles it (PROCESSING — its notification was lost —, ABNORMAL, or FAILED here); a
          // CLOSED refund that WeChat paid out is only reported: CLOSED is final here, a person decides.
          const appliable = REFUND_SETTLED_BY_BILL.has(refund.status) && row.refundStatus === 'SUCCESS';
          const difference = add({
            type: 'refund_status_mismatch',
            outTradeNo: row.outTradeNo,
            outRefundNo: row.outRefundNo,
            wechatAmount: row.refundAmount,
            ourAmount: refund.amount,
            wechatState: row.refundStatus,
            ourStatus: refund.status,
            action: appliable ? 'apply_refund_result' : undefined,
            detail: `refund ${row.refundStatus || 'listed'} at WeChat, ${refund.status} here`,
          });
          if (appliable) refundsToApply.push({ outRefundNo: detached(row.outRefundNo), refundId: detached(row.refundId), time: detached(row.tradeTime), difference });
          continue;
        }
        refundStats.matched++;
        amounts.refunded += row.refundAmount;
      }
    };

    let result: ReconciliationResult;
    try {
      // null: WeChat has no statement for the day (no trades there); what we have paid that day is only_here.
      const stream = await this.billing.tradeBillStream(date, subMchid ? { subMchid } : undefined);
      noTradesAtWechat = stream === null;
      let paymentBatch: TradeBillRecord[] = [];
      let refundBatch: TradeBillRecord[] = [];
      let otherBatch: TradeBillRecord[] = [];
      if (stream) for await (const batch of parseTradeBillBatches(stream)) for (const record of batch) {
        if (record.kind === 'summary') {
          billSummary = record;
          continue;
        }
        billRows++;
        rowSums.settlement += record.settlementTotal;
        rowSums.order += record.orderAmount;
        rowSums.refund += record.refundAmount;
        rowSums.requestedRefund += record.requestedRefund;
        if (record.tradeState === 'REFUND') {
          refundStats.inBill++;
          refundStats.billAmount += record.refundAmount;
          seenRefunds.add(detached(record.outRefundNo));
          refundBatch.push(record);
          if (refundBatch.length >= BATCH) {
            await checkRefunds(refundBatch);
            refundBatch = [];
          }
        } else if (record.tradeState === 'SUCCESS') {
          payments.inBill++;
          payments.billAmount += record.orderAmount;
          seenTrades.add(detached(record.outTradeNo));
          paymentBatch.push(record);
          if (paymentBatch.length >= BATCH) {
            await checkPayments(paymentBatch);
            paymentBatch = [];
          }
        } else {
          otherRows++;
          seenTrades.add(detached(record.outTradeNo));
          otherBatch.push(record);
          if (otherBatch.length >= BATCH) {
            await checkOthers(otherBatch);
            otherBatch = [];
          }
        }
      }

      if (paymentBatch.length) await checkPayments(paymentBatch);
      if (refundBatch.length) await checkRefunds(refundBatch);
      if (otherBatch.length) await checkOthers(otherBatch);

      // Paid here that day, absent from WeChat's bill.
      for await (const page of this.orders.paidBetween(from, to, undefined, subMchid || undefined)) {
        for (const order of page) {
          if (!PAID_HERE.has(order.status) && order.status !== 'ANOMALY') continue;
          payments.ourCount++;
          payments.ourAmount += order.paidTotal ?? order.total;
          if (!seenTrades.has(order.outTradeNo)) {
            amounts.onlyHere += order.paidTotal ?? order.total;
            add(this.onlyHere(order));
          }
        }
      }
      for (const refund of await this.refunds.succeededBetween(from, to, subMchid || undefined)) {
        refundStats.ourCount++;
        refundStats.ourAmount += refund.amount;
        if (!seenRefunds.has(refund.outRefundNo)) {
          add({ type: 'refund_only_here', outTradeNo: refund.outTradeNo, outRefundNo: refund.outRefundNo, ourAmount: refund.amount, ourStatus: refund.status, detail: 'refund succeeded here, absent from the bill' });
        }
      }

      // Only now, with the whole file verified: take WeChat's word for the payments we missed...
      for (const row of toApply) {
        const outcome = await this.applier.apply(
          {
            appid: row.appid || this.credentials.appid,
            mchid: row.mchid || this.credentials.mchid,
            // A provider's trade names its sub-merchant (特约商户号; this bill's when the column is empty).
            ...(subMchid ? { sub_mchid: row.subMchid || subMchid } : {}),
            out_trade_no: row.outTradeNo,
            transaction_id: row.transactionId,
            trade_type: row.tradeType,
            trade_state: 'SUCCESS',
            success_time: billTimeToRfc3339(row.tradeTime),
            payer: { openid: row.openid },
            amount: { total: row.orderAmount, currency: row.currency || 'CNY' },
          },
          'bill',
        );
        const difference = applyDifference.get(row.outTradeNo);
        if (difference) difference.action = `applied_as_payment:${outcome.outcome}`;
        if (outcome.outcome === 'applied') {
          applied.payments++;
          if (applied.outTradeNos.length < APPLIED_LISTED) applied.outTradeNos.push(detached(row.outTradeNo));
        }
      }
      // ...and for the refunds it paid out that are still open here.
      for (const item of refundsToApply) {
        const outcome = await this.refunds.applyResult(item.outRefundNo, 'SUCCESS', item.refundId || undefined, item.time ? billTimeToRfc3339(item.time) : undefined, 'bill');
        item.difference.action = `applied_refund_result:${outcome}`;
        if (outcome === 'applied') {
          applied.refunds++;
          if (applied.outRefundNos.length < APPLIED_LISTED) applied.outRefundNos.push(item.outRefundNo);
        }
      }

      const problems = billSummary ? summaryProblems(billSummary, billRows, rowSums) : noTradesAtWechat ? [] : ['the bill has no summary row'];
      if (problems.length) this.logger.warn(`bill ${date}${subMchid ? ` of ${subMchid}` : ''}: rows do not add up to the bill's summary row: ${problems.join('; ')}`);
      result = {
        date,
        ...(subMchid ? { subMchid } : {}),
        status: 'done',
        startedAt,
        durationMs: Date.now() - started,
        summary: summaryOf(
          {
            billSummary: billSummary ? (({ kind: _k, line: _l, ...rest }) => rest)(billSummary) : null,
            billSummaryConsistent: problems.length === 0,
            ...(problems.length ? { billSummaryProblems: problems } : {}),
            ...(noTradesAtWechat ? { noTradesAtWechat: true } : {}),
          },
          differenceCount > differences.length ? { differencesStored: differences.length } : {},
        ),
        differences,
      };
      // Inside the try: a result that cannot be stored is a failed run (stored as such, below).
      await this.store(result);
      this.metrics?.reconciliation('done', byType);
      return result;
    } catch (error) {
      this.metrics?.reconciliation('failed', {});
      this.logger.error(`reconciliation of ${date}${subMchid ? ` of sub-merchant ${subMchid}` : ''} failed: ${(error as Error).message}`);
      const failed: ReconciliationResult = {
        date,
        ...(subMchid ? { subMchid } : {}),
        status: 'failed',
        startedAt,
        durationMs: Date.now() - started,
        summary: summaryOf({ billSummary: null, billSummaryConsistent: false }, {}),
        differences: [],
        error: (error as Error).message,
      };
      await this.store(failed).catch((storeError: Error) => this.logger.error(`could not store the failed reconciliation of ${date}${subMchid ? ` of ${subMchid}` : ''}: ${storeError.message}`));
      throw error;
    }
  }

  private onlyHere(order: ReconcileOrder): Difference {
    return {
      type: 'only_here',
      outTradeNo: order.outTradeNo,
      ourAmount: order.paidTotal ?? order.total,
      ourStatus: order.status,
      transactionId: order.transactionId ?? undefined,
      detail: 'paid here, absent from WeChat\'s bill',
    };
  }

  private async store(result: ReconciliationResult): Promise<void> {
    const now = this.clock.now();
    let { summary } = result;
    let differences = await encodeDifferences(result.differences);
    // Never expected (50,000 differences compress to a few MB), but a row that cannot be written would
    // lose the whole result: keep fewer differences rather than none.
    for (let keep = result.differences.length; differences.length > MAX_STORED_BYTES && keep > 0; ) {
      keep = Math.floor(keep * 0.8);
      differences = await encodeDifferences(result.differences.slice(0, keep));
      summary = { ...result.summary, differencesStored: keep };
    }
    const key = { billDate: result.date, subMchid: result.subMchid ?? '' };
    const row = {
      ...key,
      status: result.status,
      summary: JSON.stringify({ ...result, summary, differences: undefined }),
      differences,
      updatedAt: now,
    };
    const updated = await this.results.update(key, row);
    if (!updated.affected) {
      await this.results.insert({ ...row, createdAt: now }).catch(() => this.results.update(key, row));
    }
  }

  /**
   * The most recent reconciliations (newest bill date first), summaries only. Service-provider mode:
   * every sub-merchant's (each row names its subMchid), or only `subMchid`'s.
   */
  async list(limit: number, subMchid?: string): Promise<Array<{ date: string; subMchid?: string; status: string; startedAt: string; differenceCount: number; billRows: number; error?: string }>> {
    const rows = await this.results.find({
      select: ['billDate', 'subMchid', 'status', 'summary'],
      ...(subMchid !== undefined ? { where: { subMchid } } : {}),
      order: { billDate: 'DESC', subMchid: 'ASC' },
      take: limit,
    });
    return rows.map((row) => {
      const summary = JSON.parse(row.summary) as Omit<ReconciliationResult, 'differences'>;
      return {
        date: row.billDate,
        ...(row.subMchid ? { subMchid: row.subMchid } : {}),
        status: row.status,
        startedAt: summary.startedAt,
        differenceCount: summary.summary.differenceCount,
        billRows: summary.summary.billRows,
        ...(summary.error ? { error: summary.error } : {}),
      };
    });
  }

  /** `subMchid`: '' in direct mode. */
  async get(date: string, subMchid = ''): Promise<ReconciliationResult> {
    const row = await this.results.findOneBy({ billDate: date, subMchid });
    if (!row) throw new NotFoundError(`reconciliation of ${date}${subMchid ? ` of sub-merchant ${subMchid}` : ''}`, 'RECONCILIATION_NOT_FOUND');
    return { ...(JSON.parse(row.summary) as ReconciliationResult), differences: await decodeDifferences(row.differences) };
  }

  static toCsv(result: ReconciliationResult): string {
    const header = ['type', 'outTradeNo', 'outRefundNo', 'wechatAmount', 'ourAmount', 'wechatState', 'ourStatus', 'transactionId', 'action', 'detail'];
    const cell = (value: unknown) => {
      const text = value === undefined || value === null ? '' : String(value);
      return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
    };
    const lines = result.differences.map((d) =>
      [d.type, d.outTradeNo, d.outRefundNo, d.wechatAmount, d.ourAmount, d.wechatState, d.ourStatus, d.transactionId, d.action, d.detail].map(cell).join(','),
    );
    return '\uFEFF' + [header.join(','), ...lines].join('\r\n') + '\r\n';
  }
}

/** The audit detail of a reconciliation: its counts and the (first APPLIED_LISTED) numbers it applied. */
export function reconciliationAuditDetail(result: ReconciliationResult): Record<string, unknown> {
  const s = result.summary;
  return {
    status: result.status,
    differenceCount: s.differenceCount,
    appliedFromBill: s.appliedFromBill,
    appliedOutTradeNos: s.appliedOutTradeNos,
    ...(s.appliedFromBill > s.appliedOutTradeNos.length ? { appliedOutTradeNosTruncated: true } : {}),
    appliedRefundsFromBill: s.appliedRefundsFromBill,
    appliedOutRefundNos: s.appliedOutRefundNos,
    ...(s.appliedRefundsFromBill > s.appliedOutRefundNos.length ? { appliedOutRefundNosTruncated: true } : {}),
  };
}

/** JSON, or gzip + base64 behind GZIP_PREFIX when large (see COMPRESS_ABOVE). */
export async function encodeDifferences(differences: Difference[]): Promise<string> {
  const json = JSON.stringify(differences);
  if (json.length <= COMPRESS_ABOVE / 3 || Buffer.byteLength(json) <= COMPRESS_ABOVE) return json;
  return GZIP_PREFIX + (await gzipAsync(json)).toString('base64');
}

export async function decodeDifferences(stored: string): Promise<Difference[]> {
  if (!stored.startsWith(GZIP_PREFIX)) return JSON.parse(stored) as Difference[];
  return JSON.parse((await gunzipAsync(Buffer.from(stored.slice(GZIP_PREFIX.length), 'base64'))).toString('utf8')) as Difference[];
}

/**
 * What in the bill's summary row the data rows do not add up to (empty when they all do). The fee
 * total is not compared: WeChat prints it rounded, the rows' fees have five decimals.
 */
function summaryProblems(
  summary: TradeBillSummary,
  rows: number,
  sums: { settlement: number; refund: number; order: number; requestedRefund: number },
): string[] {
  const checks: Array<[string, number, number]> = [
    ['row count', summary.count, rows],
    ['settlement total (fen)', summary.settlementTotal, sums.settlement],
    ['refund total (fen)', summary.refundTotal, sums.refund],
    ['order total (fen)', summary.orderTotal, sums.order],
    ['requested refund total (fen)', summary.requestedRefundTotal, sums.requestedRefund],
  ];
  return checks.filter(([, stated, added]) => stated !== added).map(([name, stated, added]) => `${name}: summary ${stated}, rows add up to ${added}`);
}
