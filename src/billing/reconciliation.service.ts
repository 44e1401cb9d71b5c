import { Injectable, Logger } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { Clock } from '../common/clock';
import { NotFoundError } from '../common/errors/app-error';
import { OrderService, ReconcileOrder } from '../payment/order.service';
import { PaymentApplier } from '../payment/payment-applier.service';
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
  | 'refund_amount_mismatch';

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
  status: 'done' | 'failed';
  startedAt: string;
  durationMs: number;
  summary: {
    billRows: number;
    payments: { inBill: number; matched: number; billAmount: number; ourAmount: number; ourCount: number };
    refunds: { inBill: number; matched: number; billAmount: number; ourAmount: number; ourCount: number };
    /** The bill's own summary row, and whether the rows add up to it. */
    billSummary: Omit<TradeBillSummary, 'kind' | 'line'> | null;
    billSummaryConsistent: boolean;
    differenceCount: number;
    byType: Partial<Record<DifferenceType, number>>;
    /** Amounts (fen) by outcome, for the console's chart. */
    amounts: { matched: number; onlyInWechat: number; onlyHere: number; mismatched: number; refunded: number };
    appliedFromBill: number;
  };
  differences: Difference[];
  error?: string;
}

const PAID_HERE = new Set(['PAID', 'REFUNDED', 'PAID_AFTER_CLOSE']);
const MAX_STORED_DIFFERENCES = 50_000;
const BATCH = 2000;

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
    private readonly billing: BillingService,
    private readonly orders: OrderService,
    private readonly refunds: RefundService,
    private readonly applier: PaymentApplier,
    private readonly credentials: WechatCredentials,
    private readonly clock: Clock,
  ) {}

  async run(dateText: unknown): Promise<ReconciliationResult> {
    const { date, from, to } = parseBillDate(dateText, this.clock.nowMs());
    const started = Date.now();
    const startedAt = this.clock.now().toISOString();
    const differences: Difference[] = [];
    let differenceCount = 0;
    const byType: Partial<Record<DifferenceType, number>> = {};
    const add = (d: Difference) => {
      differenceCount++;
      byType[d.type] = (byType[d.type] ?? 0) + 1;
      if (differences.length < MAX_STORED_DIFFERENCES) differences.push(d);
    };
    const amounts = { matched: 0, onlyInWechat: 0, onlyHere: 0, mismatched: 0, refunded: 0 };
    const payments = { inBill: 0, matched: 0, billAmount: 0, ourAmount: 0, ourCount: 0 };
    const refundStats = { inBill: 0, matched: 0, billAmount: 0, ourAmount: 0, ourCount: 0 };
    const seenTrades = new Set<string>();
    const seenRefunds = new Set<string>();
    const toApply: TradeBillRecord[] = [];
    let billRows = 0;
    let billSummary: TradeBillSummary | null = null;
    const rowSums = { settlement: 0, refund: 0, order: 0 };

    const checkPayments = async (rows: TradeBillRecord[]) => {
      const ours = await this.orders.reconcileView(rows.map((r) => r.outTradeNo));
      for (const row of rows) {
        const order = ours.get(row.outTradeNo);
        const wechatAmount = row.orderAmount;
        if (!order || !PAID_HERE.has(order.status)) {
          amounts.onlyInWechat += wechatAmount;
          const appliable = !!order && (order.status === 'NOTPAY' || order.status === 'CLOSED');
          if (appliable) toApply.push(row);
          add({
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
          continue;
        }
        const ourAmount = order.paidTotal ?? order.total;
        if (ourAmount !== wechatAmount || order.total !== wechatAmount) {
          amounts.mismatched += wechatAmount;
          add({ type: 'amount_mismatch', outTradeNo: row.outTradeNo, wechatAmount, ourAmount: order.total, wechatState: row.tradeState, ourStatus: order.status, transactionId: row.transactionId, detail: `WeChat ${wechatAmount} fen, here ${order.total} fen` });
          continue;
        }
        if (order.transactionId && row.transactionId && order.transactionId !== row.transactionId) {
          add({ type: 'status_mismatch', outTradeNo: row.outTradeNo, wechatAmount, ourAmount, wechatState: row.tradeState, ourStatus: order.status, transactionId: row.transactionId, detail: `transaction ${row.transactionId} at WeChat, ${order.transactionId} here` });
          continue;
        }
        payments.matched++;
        amounts.matched += wechatAmount;
      }
    };

    const checkRefunds = async (rows: TradeBillRecord[]) => {
      const ours = new Map((await this.refunds.byNumbers(rows.map((r) => r.outRefundNo))).map((r) => [r.outRefundNo, r]));
      for (const row of rows) {
        const refund = ours.get(row.outRefundNo);
        if (!refund || refund.status !== 'SUCCESS') {
          add({
            type: 'refund_only_in_wechat',
            outTradeNo: row.outTradeNo,
            outRefundNo: row.outRefundNo,
            wechatAmount: row.refundAmount,
            ourAmount: refund?.amount,
            wechatState: row.refundStatus,
            ourStatus: refund?.status ?? 'unknown',
            detail: refund ? `refunded at WeChat, ${refund.status} here` : 'refunded at WeChat, no such refund here (made in the merchant portal?)',
          });
          continue;
        }
        if (refund.amount !== row.refundAmount) {
          add({ type: 'refund_amount_mismatch', outTradeNo: row.outTradeNo, outRefundNo: row.outRefundNo, wechatAmount: row.refundAmount, ourAmount: refund.amount, detail: `WeChat ${row.refundAmount} fen, here ${refund.amount} fen` });
          continue;
        }
        refundStats.matched++;
        amounts.refunded += row.refundAmount;
      }
    };

    let result: ReconciliationResult;
    try {
      const stream = await this.billing.tradeBillStream(date);
      let paymentBatch: TradeBillRecord[] = [];
      let refundBatch: TradeBillRecord[] = [];
      for await (const batch of parseTradeBillBatches(stream)) for (const record of batch) {
        if (record.kind === 'summary') {
          billSummary = record;
          continue;
        }
        billRows++;
        rowSums.settlement += record.settlementTotal;
        rowSums.order += record.orderAmount;
        rowSums.refund += record.refundAmount;
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
        }
      }

      if (paymentBatch.length) await checkPayments(paymentBatch);
      if (refundBatch.length) await checkRefunds(refundBatch);

      // Paid here that day, absent from WeChat's bill.
      for await (const page of this.orders.paidBetween(from, to)) {
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
      for (const refund of await this.refunds.succeededBetween(from, to)) {
        refundStats.ourCount++;
        refundStats.ourAmount += refund.amount;
        if (!seenRefunds.has(refund.outRefundNo)) {
          add({ type: 'refund_only_here', outTradeNo: refund.outTradeNo, outRefundNo: refund.outRefundNo, ourAmount: refund.amount, ourStatus: refund.status, detail: 'refund succeeded here, absent from the bill' });
        }
      }

      // Only now, with the whole file verified: take WeChat's word for the payments we missed.
      let appliedFromBill = 0;
      for (const row of toApply) {
        const outcome = await this.applier.apply(
          {
            appid: row.appid || this.credentials.appid,
            mchid: row.mchid || this.credentials.mchid,
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
        const difference = differences.find((d) => d.type === 'only_in_wechat' && d.outTradeNo === row.outTradeNo);
        if (difference) difference.action = `applied_as_payment:${outcome.outcome}`;
        if (outcome.outcome === 'applied') appliedFromBill++;
      }

      const summaryConsistent =
        !!billSummary &&
        billSummary.count === billRows &&
        billSummary.settlementTotal === rowSums.settlement &&
        billSummary.orderTotal === rowSums.order &&
        billSummary.refundTotal === rowSums.refund;
      if (!summaryConsistent) this.logger.warn(`bill ${date}: rows do not add up to the bill's summary row`);
      result = {
        date,
        status: 'done',
        startedAt,
        durationMs: Date.now() - started,
        summary: {
          billRows,
          payments,
          refunds: refundStats,
          billSummary: billSummary ? (({ kind: _k, line: _l, ...rest }) => rest)(billSummary) : null,
          billSummaryConsistent: summaryConsistent,
          differenceCount,
          byType,
          amounts,
          appliedFromBill,
        },
        differences,
      };
    } catch (error) {
      this.logger.error(`reconciliation of ${date} failed: ${(error as Error).message}`);
      result = {
        date,
        status: 'failed',
        startedAt,
        durationMs: Date.now() - started,
        summary: {
          billRows,
          payments,
          refunds: refundStats,
          billSummary: null,
          billSummaryConsistent: false,
          differenceCount,
          byType,
          amounts,
          appliedFromBill: 0,
        },
        differences: [],
        error: (error as Error).message,
      };
      await this.store(result);
      throw error;
    }
    await this.store(result);
    return result;
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
    const row = {
      billDate: result.date,
      status: result.status,
      summary: JSON.stringify({ ...result, differences: undefined }),
      differences: JSON.stringify(result.differences),
      updatedAt: now,
    };
    const updated = await this.results.update({ billDate: result.date }, row);
    if (!updated.affected) {
      await this.results.insert({ ...row, createdAt: now }).catch(() => this.results.update({ billDate: result.date }, row));
    }
  }

  /** The most recent reconciliations (newest bill date first), summaries only. */
  async list(limit: number): Promise<Array<{ date: string; status: string; startedAt: string; differenceCount: number; billRows: number; error?: string }>> {
    const rows = await this.results.find({ select: ['billDate', 'status', 'summary'], order: { billDate: 'DESC' }, take: limit });
    return rows.map((row) => {
      const summary = JSON.parse(row.summary) as Omit<ReconciliationResult, 'differences'>;
      return {
        date: row.billDate,
        status: row.status,
        startedAt: summary.startedAt,
        differenceCount: summary.summary.differenceCount,
        billRows: summary.summary.billRows,
        ...(summary.error ? { error: summary.error } : {}),
      };
    });
  }

  async get(date: string): Promise<ReconciliationResult> {
    const row = await this.results.findOneBy({ billDate: date });
    if (!row) throw new NotFoundError(`reconciliation of ${date}`, 'RECONCILIATION_NOT_FOUND');
    return { ...(JSON.parse(row.summary) as ReconciliationResult), differences: JSON.parse(row.differences) as Difference[] };
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
