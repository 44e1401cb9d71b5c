import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomBytes } from 'node:crypto';
import { DataSource, EntityManager, QueryRunner } from 'typeorm';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { dbDate, inTransaction, isSqlite } from '../database/transactions';
import type { Transaction } from '../wechat/pay/types';
import { WechatCredentials } from '../wechat/wechat-credentials';
import { AttemptDirectory } from './attempt-directory';
import { attemptNumber } from './payment-attempts';

/** Where a payment report came from. */
export type PaymentSource = 'notification' | 'query' | 'reconcile' | 'close-check' | 'cancel-check' | 'switch-check' | 'bill';

export type ApplyOutcome =
  /** NOTPAY → PAID, this time */
  | 'applied'
  /** already applied (same transaction_id): nothing changed */
  | 'duplicate'
  /** amount, currency, appid or mchid do not match the order: flagged ANOMALY, never PAID */
  | 'anomaly'
  /** the order had been closed: recorded as PAID_AFTER_CLOSE */
  | 'paid_after_close'
  /** no such order here */
  | 'unknown_order'
  /** the order is paid by a different transaction_id */
  | 'conflict'
  /** another attempt of an order already paid was paid too: recorded on that attempt, refunded in full */
  | 'duplicate_payment';

export interface ApplyResult {
  /** The number WeChat reported (the attempt's). */
  outTradeNo: string;
  outcome: ApplyOutcome;
}

/** Hook that writes its own rows in the same transaction, once per batch (the notify module's raw events). */
export type BatchHook = (manager: EntityManager, items: Array<{ outcome: ApplyOutcome; attachment: unknown }>) => Promise<void>;

export const ORDER_PAID = 'order.paid';
export const ORDER_PAID_AFTER_CLOSE = 'order.paid_after_close';
export const ORDER_ANOMALY = 'order.anomaly';
export const ORDER_DUPLICATE_PAYMENT = 'order.duplicate_payment';

/** Payload of ORDER_DUPLICATE_PAYMENT: the attempt that paid on top of the order's payment, to refund in full. */
export interface DuplicatePaymentEvent {
  /** The order's number. */
  outTradeNo: string;
  /** The attempt paid second. */
  attemptOutTradeNo: string;
  transactionId: string;
  amount: number;
  retry?: boolean;
}

/**
 * Payload of ORDER_PAID_AFTER_CLOSE. `action: 'refund'` asks for a refund whatever
 * PAID_AFTER_CLOSE_ACTION says (a reinstatement found no stock, or a refund was decided earlier);
 * `retry` marks a re-emission by the jobs' sweep of an order still unresolved.
 */
export interface PaidAfterCloseEvent {
  outTradeNo: string;
  action?: 'refund';
  retry?: boolean;
}

export interface OrderPaidEvent {
  outTradeNo: string;
  /** The attempt that paid it. */
  attemptOutTradeNo: string;
  transactionId: string;
  total: number;
  payerOpenid: string | undefined;
  paidAt: Date;
  source: PaymentSource;
}

interface Pending {
  tx: Transaction;
  source: PaymentSource;
  attachment?: unknown;
  hook?: BatchHook;
  resolve: (result: ApplyResult) => void;
  reject: (error: unknown) => void;
}

/** One reported out_trade_no: its attempt (attempt_id null: the order has none yet) and its order. */
interface AttemptRow {
  attempt_no: string;
  attempt_id: string | number | null;
  appid: string | null;
  attempt_tx: string | null;
  order_no: string;
  order_id: string | number | null;
  /** The order's sub-merchant (service-provider mode); null for a direct merchant's order. */
  sub_mchid: string | null;
}

/** The channel of a payment WeChat reports for an order with no attempt here (never prepaid by us). */
function channelOfTradeType(tradeType: string | undefined): string {
  return tradeType === 'MWEB' ? 'h5' : tradeType === 'NATIVE' ? 'native' : 'jsapi';
}

function parseTime(value: string | undefined, fallback: Date): Date {
  const ms = value ? Date.parse(value) : NaN;
  return Number.isNaN(ms) ? fallback : new Date(ms);
}

/**
 * Applies WeChat's word that an order was paid — from a notification or a query — exactly once.
 * Reports that arrive together are grouped into one transaction (fewer round trips and commits; each
 * caller is answered only after that commit). Within it, one guarded UPDATE … WHERE status = 'NOTPAY'
 * AND total/currency match moves every payable order to PAID, stamped with the batch id; a SELECT then
 * tells, per report, applied from duplicate, anomaly, paid-after-close or unknown. N instances and N
 * duplicate notifications therefore still move an order once.
 */
@Injectable()
export class PaymentApplier implements OnModuleDestroy {
  private readonly logger = new Logger(PaymentApplier.name);
  private queue: Pending[] = [];
  private active = 0;
  private scheduled = false;
  private readonly maxConcurrent: number;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly config: AppConfig,
    private readonly clock: Clock,
    private readonly events: EventEmitter2,
    private readonly credentials: WechatCredentials,
    private readonly directory: AttemptDirectory,
  ) {
    // SQLite has one writer; MySQL overlaps two batches so one commits while the next fills.
    this.maxConcurrent = isSqlite(dataSource) ? 1 : 2;
  }

  /** Resolves after the transaction that applied (or recorded) the report committed. */
  apply(tx: Transaction, source: PaymentSource, options: { attachment?: unknown; hook?: BatchHook } = {}): Promise<ApplyResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ tx, source, attachment: options.attachment, hook: options.hook, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.drain();
        });
      }
    });
  }

  private drain(): void {
    while (this.active < this.maxConcurrent && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.config.orders.notifyBatchMax);
      this.active++;
      void this.flush(batch).finally(() => {
        this.active--;
        if (this.queue.length) this.drain();
      });
    }
  }

  private async flush(batch: Pending[]): Promise<void> {
    const batchId = randomBytes(12).toString('hex');
    let results: ApplyResult[];
    let paid: OrderPaidEvent[] = [];
    let afterClose: string[] = [];
    let anomalies: string[] = [];
    let duplicates: DuplicatePaymentEvent[] = [];
    try {
      ({ results, paid, afterClose, anomalies, duplicates } = await inTransaction(this.dataSource, (runner, manager) => this.applyBatch(runner, manager, batch, batchId)));
    } catch (error) {
      this.logger.error(`payment batch of ${batch.length} failed and was rolled back: ${(error as Error).message}`);
      for (const item of batch) item.reject(error);
      return;
    }
    batch.forEach((item, i) => item.resolve(results[i]));
    // After commit, outside the request: a listener that throws cannot undo or lose the payment.
    setImmediate(() => {
      for (const event of paid) this.emit(ORDER_PAID, event);
      for (const outTradeNo of afterClose) this.emit(ORDER_PAID_AFTER_CLOSE, { outTradeNo } satisfies PaidAfterCloseEvent);
      for (const outTradeNo of anomalies) this.emit(ORDER_ANOMALY, { outTradeNo });
      for (const event of duplicates) this.emit(ORDER_DUPLICATE_PAYMENT, event);
    });
  }

  private emit(name: string, payload: unknown): void {
    this.events.emitAsync(name, payload).catch((error: Error) => this.logger.error(`a ${name} listener failed: ${error.message}`));
  }

  private async applyBatch(runner: QueryRunner, manager: EntityManager, batch: Pending[], batchId: string) {
    const now = this.clock.now();
    const d = (date: Date) => dbDate(this.dataSource, date);

    // 0. out_trade_no → attempt → order. A report names an attempt; the order moves once. When every
    // report of the batch is a well-formed payment of ours whose order can be told from its number
    // (an attempt's number is its order's, or that with `_<seq>`), the order is not read first: the
    // guarded UPDATE of step 1 also checks, in SQL, that the attempt is the order's, not paid yet, and
    // prepaid with the report's appid, and the order's sub-merchant. If it moved every one of them,
    // nothing needs reading; otherwise the batch is looked up and applied the usual way below.
    const reported = [...new Set(batch.map((item) => item.tx.out_trade_no).filter((no) => typeof no === 'string'))];
    // When every reported attempt is in this instance's AttemptDirectory (written by a pay here, or
    // read before) with the report's appid, what the EXISTS would check is known already: the attempt
    // is the order's (immutable) and prepaid with that appid (immutable); that it has no payment yet
    // follows from its order being NOTPAY (an attempt is only ever paid together with its order
    // leaving NOTPAY, and no order returns to NOTPAY). The guarded UPDATE then checks the order's own
    // columns only, on both databases, and nothing is read first.
    // Otherwise SQLite checks the attempt with EXISTS inside the UPDATE; on MariaDB that EXISTS is a
    // locking read (shared next-key locks on the attempts' order_id index), and concurrent batches of
    // neighbouring orders then deadlock when each marks its attempts paid (bench/notify.ts: thousands
    // of 500s), so MariaDB reads the attempts first (non-locking) and updates by unique key.
    const cached = this.cachedOrders(batch);
    const known = cached ?? (isSqlite(this.dataSource) ? this.knownOrders(batch) : undefined);
    let attempts = new Map<string, AttemptRow>();
    let updated = 0;
    let candidates = new Map<string, Transaction>();
    if (known) {
      for (const { tx } of batch) {
        attempts.set(tx.out_trade_no, { attempt_no: tx.out_trade_no, attempt_id: 'known', appid: tx.appid ?? null, attempt_tx: null, order_no: known.get(tx.out_trade_no)!, order_id: null, sub_mchid: tx.sub_mchid ?? null });
      }
      candidates = new Map(batch.map(({ tx }) => [known.get(tx.out_trade_no)!, tx]));
      updated = await this.markPaid(runner, candidates, batchId, now, known, cached ? 'known' : 'exists');
    }
    if (!known || updated !== candidates.size) {
      attempts = await this.readAttempts(runner, reported);
      updated = 0;
    }
    const orderNo = (tx: Transaction) => attempts.get(tx.out_trade_no)?.order_no;
    // Ours: our merchant (the provider's sp_mchid in service-provider mode), the order's own sub-merchant
    // (none for a direct merchant's order), and the appid the attempt was prepaid with (the mini-program's for miniprogram).
    const ours = (tx: Transaction) =>
      tx.mchid === this.credentials.mchid &&
      (tx.sub_mchid ?? null) === (attempts.get(tx.out_trade_no)?.sub_mchid ?? null) &&
      tx.appid === (attempts.get(tx.out_trade_no)?.appid ?? this.credentials.appid);

    // 1. One guarded UPDATE for every order a well-formed report may pay (first report per order),
    // unless step 0's moved them all.
    if (!known || updated !== candidates.size) {
      candidates = new Map<string, Transaction>();
      for (const item of batch) {
        const tx = item.tx;
        const no = orderNo(tx);
        if (no && tx.trade_state === 'SUCCESS' && ours(tx) && tx.transaction_id && !candidates.has(no)) candidates.set(no, tx);
      }
      if (candidates.size > 0) updated = await this.markPaid(runner, candidates, batchId, now);
      // Orders step 0 moved are PAID by this batch already: step 2 reads them so.
      if (known) updated = -1;
    }

    // 2. Where does each order stand now? When the guarded UPDATE moved every order of the batch,
    // each is known without asking: PAID by this batch, with its report's transaction, amount and
    // currency (the UPDATE's guard matched them). Otherwise read them.
    const numbers = [...new Set([...attempts.values()].map((r) => r.order_no))];
    type OrderState = { out_trade_no: string; status: string; paid_batch: string | null; transaction_id: string | null; total: number; currency: string };
    const allUpdated = numbers.length > 0 && updated === candidates.size && numbers.every((no) => candidates.has(no));
    const rows: OrderState[] = allUpdated
      ? [...candidates.entries()].map(([no, tx]) => ({
          out_trade_no: no,
          status: 'PAID',
          paid_batch: batchId,
          transaction_id: tx.transaction_id ?? null,
          total: tx.amount!.total!,
          currency: tx.amount?.currency ?? 'CNY',
        }))
      : numbers.length
        ? await runner.query(
            // A locking read on MariaDB: the rows as committed now (a batch that waited on another's row
            // lock must see that one's payment, not its own snapshot from before it).
            `SELECT out_trade_no, status, paid_batch, transaction_id, total, currency FROM orders WHERE out_trade_no IN (${numbers.map(() => '?').join(',')})${isSqlite(this.dataSource) ? '' : ' FOR UPDATE'}`,
            numbers,
          )
        : [];
    const byNo = new Map(rows.map((r) => [r.out_trade_no, r]));
    // The attempts of orders this batch paid, marked after the loop in one statement each way (a batch
    // of N payments: one INSERT and one UPDATE instead of N statements, while the orders' row locks are held).
    const paidAttempts: Array<[string, string]> = [];
    const firstAttempts: unknown[][] = [];
    /** The attempt took this payment (guarded: once, and only a payment it has not recorded yet); `later`: in the batch's one statement. */
    const markAttemptPaid = async (tx: Transaction, later = false): Promise<boolean> => {
      const known = attempts.get(tx.out_trade_no);
      if (known && known.attempt_id === null && known.order_id !== null) {
        const row = [known.order_id, tx.out_trade_no, channelOfTradeType(tx.trade_type), tx.appid ?? null, tx.transaction_id, d(now), d(now)];
        if (later) firstAttempts.push(row);
        else await runner.query(`INSERT INTO payment_attempts (order_id, out_trade_no, seq, channel, status, appid, transaction_id, created_at, updated_at) VALUES (?, ?, 1, ?, 'PAID', ?, ?, ?, ?)`, row);
        known.attempt_id = -1;
        known.attempt_tx = tx.transaction_id ?? null;
        return true;
      }
      if (later) {
        // An order this batch moved from NOTPAY: its attempt has no payment yet (see step 0).
        paidAttempts.push([tx.out_trade_no, tx.transaction_id!]);
        if (known) known.attempt_tx = tx.transaction_id ?? null;
        return true;
      }
      const res = await runner.query(
        `UPDATE payment_attempts SET status = 'PAID', transaction_id = ?, updated_at = ? WHERE out_trade_no = ? AND transaction_id IS NULL`,
        [tx.transaction_id, d(now), tx.out_trade_no],
        true,
      );
      const attempt = attempts.get(tx.out_trade_no);
      if (attempt) attempt.attempt_tx = tx.transaction_id ?? null;
      return !!(res as { affected?: number }).affected;
    };

    // 3. Classify; the rare cases get their own guarded statements.
    const claimed = new Set<string>();
    const results: ApplyResult[] = [];
    const paid: OrderPaidEvent[] = [];
    const afterClose: string[] = [];
    const anomalies: string[] = [];
    const duplicates: DuplicatePaymentEvent[] = [];
    const timeline: Array<[string, string, string, Date | string]> = [];
    for (const item of batch) {
      const tx = item.tx;
      const attempt = attempts.get(tx.out_trade_no);
      const no = attempt?.order_no;
      const row = no ? byNo.get(no) : undefined;
      const matches = () =>
        !!row && tx.trade_state === 'SUCCESS' && !!tx.transaction_id && ours(tx) && tx.amount?.total === row.total && (tx.amount?.currency ?? 'CNY') === row.currency;
      let outcome: ApplyOutcome;
      let reason: string | undefined;
      if (!row || !no || !attempt) {
        outcome = 'unknown_order';
      } else if (row.status === 'PAID' && row.paid_batch === batchId && row.transaction_id === tx.transaction_id && !claimed.has(no)) {
        outcome = 'applied';
        claimed.add(no);
        await markAttemptPaid(tx, true);
        paid.push({
          outTradeNo: no,
          attemptOutTradeNo: tx.out_trade_no,
          transactionId: tx.transaction_id!,
          total: tx.amount?.total ?? row.total,
          payerOpenid: tx.payer?.openid,
          paidAt: parseTime(tx.success_time, now),
          source: item.source,
        });
      } else if (row.transaction_id && row.transaction_id === tx.transaction_id) {
        outcome = 'duplicate';
      } else if (attempt.attempt_tx && attempt.attempt_tx === tx.transaction_id) {
        // This attempt's payment is known already (a duplicate payment recorded before).
        outcome = 'duplicate';
      } else if (row.transaction_id && !attempt.attempt_tx && ['PAID', 'REFUNDED', 'PAID_AFTER_CLOSE'].includes(row.status) && matches()) {
        // The order is paid by another attempt and this one was paid too: WeChat holds the shopper's
        // money twice. Recorded on the attempt (the order keeps its first payment) and refunded in full.
        outcome = (await markAttemptPaid(tx)) ? 'duplicate_payment' : 'duplicate';
        if (outcome === 'duplicate_payment') {
          reason = `order already paid by transaction ${row.transaction_id}; refunded automatically`;
          duplicates.push({ outTradeNo: no, attemptOutTradeNo: tx.out_trade_no, transactionId: tx.transaction_id!, amount: tx.amount!.total! });
        }
      } else if (row.transaction_id && row.transaction_id !== tx.transaction_id && row.status !== 'NOTPAY' && row.status !== 'CLOSED') {
        outcome = 'conflict';
        reason = `order already paid by transaction ${row.transaction_id}`;
      } else if (row.status === 'CLOSED' && matches()) {
        // The same checks as for an open order (step 1): only a payment that matches the order in
        // appid, mchid, amount and currency is a payment after close; anything else is an ANOMALY.
        const res = await runner.query(
          `UPDATE orders SET status = 'PAID_AFTER_CLOSE', transaction_id = ?, payer_openid = ?, paid_total = ?, paid_at = ?, paid_batch = ?, updated_at = ?
           WHERE out_trade_no = ? AND status = 'CLOSED'`,
          [tx.transaction_id, tx.payer?.openid ?? null, tx.amount?.total ?? null, d(parseTime(tx.success_time, now)), batchId, d(now), no],
          true,
        );
        outcome = (res as { affected?: number }).affected ? 'paid_after_close' : 'duplicate';
        if (outcome === 'paid_after_close') {
          await markAttemptPaid(tx);
          afterClose.push(no);
          row.status = 'PAID_AFTER_CLOSE';
          row.transaction_id = tx.transaction_id ?? null;
        }
      } else {
        // NOTPAY (or CLOSED) but the report does not match the order: never mark it paid.
        reason = !ours(tx)
          ? `appid/mchid${tx.sub_mchid ? '/sub_mchid' : ''} ${tx.appid}/${tx.mchid}${tx.sub_mchid ? `/${tx.sub_mchid}` : ''} are not ours${attempts.get(no)?.sub_mchid ? ` (order's sub-merchant ${attempts.get(no)?.sub_mchid})` : ''}`
          : tx.amount?.total !== row.total
            ? `paid ${tx.amount?.total} fen, order total is ${row.total}`
            : tx.amount?.currency && tx.amount.currency !== row.currency
              ? `currency ${tx.amount.currency}, order is ${row.currency}`
              : `unexpected trade_state ${tx.trade_state}`;
        const res = await runner.query(
          `UPDATE orders SET status = 'ANOMALY', anomaly_reason = ?, transaction_id = ?, payer_openid = ?, paid_total = ?, updated_at = ?
           WHERE out_trade_no = ? AND status IN ('NOTPAY', 'CLOSED')`,
          [reason.slice(0, 255), tx.transaction_id ?? null, tx.payer?.openid ?? null, tx.amount?.total ?? null, d(now), no],
          true,
        );
        outcome = 'anomaly';
        if ((res as { affected?: number }).affected) {
          anomalies.push(no);
          row.status = 'ANOMALY';
          row.transaction_id = tx.transaction_id ?? null;
        }
      }
      results.push({ outTradeNo: tx.out_trade_no, outcome });
      if (no) {
        timeline.push([
          no,
          `${item.source}:${outcome}`.slice(0, 32),
          JSON.stringify({
            transactionId: tx.transaction_id,
            tradeState: tx.trade_state,
            total: tx.amount?.total,
            ...(tx.out_trade_no !== no ? { attempt: tx.out_trade_no } : {}),
            ...(reason ? { reason } : {}),
          }),
          d(now),
        ]);
      }
    }

    // 4. The paid attempts, the timeline, then whatever the callers must store in the same transaction.
    if (firstAttempts.length) {
      await runner.query(
        `INSERT INTO payment_attempts (order_id, out_trade_no, seq, channel, status, appid, transaction_id, created_at, updated_at) VALUES ${firstAttempts.map(() => "(?, ?, 1, ?, 'PAID', ?, ?, ?, ?)").join(', ')}`,
        firstAttempts.flat(),
      );
    }
    if (paidAttempts.length) {
      await runner.query(
        `UPDATE payment_attempts SET status = 'PAID', transaction_id = CASE out_trade_no ${paidAttempts.map(() => 'WHEN ? THEN ?').join(' ')} END, updated_at = ?
         WHERE out_trade_no IN (${paidAttempts.map(() => '?').join(',')}) AND transaction_id IS NULL`,
        [...paidAttempts.flat(), d(now), ...paidAttempts.map(([no]) => no)],
      );
    }
    if (timeline.length) {
      await runner.query(
        `INSERT INTO order_events (out_trade_no, type, detail, created_at) VALUES ${timeline.map(() => '(?, ?, ?, ?)').join(', ')}`,
        timeline.flat(),
      );
    }
    const hooks = new Map<BatchHook, Array<{ outcome: ApplyOutcome; attachment: unknown }>>();
    batch.forEach((item, i) => {
      if (!item.hook) return;
      const list = hooks.get(item.hook) ?? [];
      list.push({ outcome: results[i].outcome, attachment: item.attachment });
      hooks.set(item.hook, list);
    });
    for (const [hook, items] of hooks) await hook(manager, items);
    return { results, paid, afterClose, anomalies, duplicates };
  }

  /**
   * Per reported number, its order's number, when every report of the batch may pay an order of ours
   * and no two name one order (an attempt's number is its order's, or that with `_<seq>` appended,
   * untruncated); otherwise undefined. A wrong guess cannot pay anything: the guarded UPDATE
   * (markPaid with `known`) matches the attempt and the order together, and the batch then takes the
   * usual path.
   */
  private knownOrders(batch: Pending[]): Map<string, string> | undefined {
    return this.ordersOfBatch(batch, (no) => {
      const suffixed = /^(.+)_(\d+)$/.exec(no);
      if (!suffixed) return no;
      const seq = Number(suffixed[2]);
      // attemptNumber() truncates the order's number only to fit 32 characters: shorter than that, it is whole.
      if (seq < 2 || attemptNumber(suffixed[1], seq) !== no || no.length >= 32) return undefined;
      return suffixed[1];
    });
  }

  /**
   * Per reported number, its order's number from the AttemptDirectory, when every report of the batch
   * is well-formed as for knownOrders, its attempt is known there with the report's appid, and no two
   * name one order; otherwise undefined (a miss, or an appid that is not the attempt's: the batch is
   * read and classified the usual way).
   */
  private cachedOrders(batch: Pending[]): Map<string, string> | undefined {
    return this.ordersOfBatch(batch, (no, tx) => {
      const entry = this.directory.get(no);
      return entry && (entry.appid ?? this.credentials.appid) === tx.appid ? entry.orderNo : undefined;
    });
  }

  /**
   * knownOrders' and cachedOrders' common part: every report a well-formed SUCCESS payment of our
   * merchant, each number once, `orderOf` telling its order, no two reports naming one order; else undefined.
   */
  private ordersOfBatch(batch: Pending[], orderOf: (no: string, tx: Transaction) => string | undefined): Map<string, string> | undefined {
    const known = new Map<string, string>();
    const orders = new Set<string>();
    for (const { tx } of batch) {
      const no = tx.out_trade_no;
      if (typeof no !== 'string' || known.has(no) || tx.trade_state !== 'SUCCESS' || !tx.transaction_id || tx.mchid !== this.credentials.mchid) return undefined;
      if (typeof tx.amount?.total !== 'number' || typeof tx.appid !== 'string' || tx.sub_mchid === '') return undefined;
      const order = orderOf(no, tx);
      if (order === undefined || orders.has(order)) return undefined;
      orders.add(order);
      known.set(no, order);
    }
    return known.size ? known : undefined;
  }

  /** out_trade_no → attempt → order, read (and an order never prepaid here: its own number as its first attempt). */
  private async readAttempts(runner: QueryRunner, reported: string[]): Promise<Map<string, AttemptRow>> {
    if (!reported.length) return new Map();
    const list = reported.map(() => '?').join(',');
    // One non-locking read (one snapshot): the reported attempts with their orders, and orders never
    // prepaid here, whose own number is their first attempt (written when it pays; attempt_id null).
    const rows: AttemptRow[] = await runner.query(
      `SELECT a.out_trade_no AS attempt_no, a.id AS attempt_id, a.appid AS appid, a.transaction_id AS attempt_tx, o.out_trade_no AS order_no, NULL AS order_id, o.sub_mchid AS sub_mchid
       FROM payment_attempts a JOIN orders o ON o.id = a.order_id WHERE a.out_trade_no IN (${list})
       UNION ALL
       SELECT o.out_trade_no, NULL, NULL, NULL, o.out_trade_no, o.id, o.sub_mchid
       FROM orders o WHERE o.out_trade_no IN (${list}) AND NOT EXISTS (SELECT 1 FROM payment_attempts a WHERE a.out_trade_no = o.out_trade_no)`,
      [...reported, ...reported],
    );
    const attempts = new Map<string, AttemptRow>();
    for (const r of rows) {
      if (r.attempt_id === null) {
        if (!attempts.has(r.attempt_no)) attempts.set(r.attempt_no, { ...r, appid: null, attempt_tx: null });
        continue;
      }
      attempts.set(r.attempt_no, { ...r, order_id: null });
      // Read in this transaction, so committed (MariaDB reads a REPEATABLE READ snapshot, SQLite has
      // one writer and this transaction wrote no attempt yet): its identity never changes.
      this.directory.remember(r.attempt_no, r.order_no, r.appid ?? null);
    }
    return attempts;
  }


  /**
   * The guarded UPDATE that moves payable orders (by number, each with its report) NOTPAY → PAID,
   * stamped with the batch id, when total and currency match; with `known` (report number per order
   * number, not read) also only where that attempt is the order's, has no payment yet and was prepaid
   * with the report's appid (none recorded: our appid), and the order's sub-merchant is the report's.
   * Returns how many orders it moved.
   */
  private async markPaid(
    runner: QueryRunner,
    candidates: Map<string, Transaction>,
    batchId: string,
    now: Date,
    known?: Map<string, string>,
    check: 'exists' | 'known' = 'exists',
  ): Promise<number> {
    const d = (date: Date) => dbDate(this.dataSource, date);
    const list = [...candidates.entries()];
    const whenThen = (value: (tx: Transaction) => unknown) => ({
      sql: `CASE orders.out_trade_no ${list.map(() => 'WHEN ? THEN ?').join(' ')} END`,
      params: list.flatMap(([no, tx]) => [no, value(tx)]),
    });
    const txId = whenThen((tx) => tx.transaction_id);
    const payer = whenThen((tx) => tx.payer?.openid ?? null);
    const paidTotal = whenThen((tx) => tx.amount?.total ?? null);
    const paidAt = whenThen((tx) => d(parseTime(tx.success_time, now)));
    const expectTotal = whenThen((tx) => tx.amount?.total ?? -1);
    const expectCurrency = whenThen((tx) => tx.amount?.currency ?? 'CNY');
    const set = `status = 'PAID', transaction_id = ${txId.sql}, payer_openid = ${payer.sql}, paid_total = ${paidTotal.sql},
         paid_at = ${paidAt.sql}, paid_batch = ?, updated_at = ?`;
    const setParams = [...txId.params, ...payer.params, ...paidTotal.params, ...paidAt.params, batchId, d(now)];
    const where = `orders.status = 'NOTPAY' AND orders.out_trade_no IN (${list.map(() => '?').join(',')})
         AND orders.total = ${expectTotal.sql} AND orders.currency = ${expectCurrency.sql}`;
    const whereParams = [...list.map(([no]) => no), ...expectTotal.params, ...expectCurrency.params];
    if (!known) {
      const res = await runner.query(`UPDATE orders SET ${set} WHERE ${where}`, [...setParams, ...whereParams], true);
      return (res as { affected?: number }).affected ?? 0;
    }
    const subMchid = whenThen((tx) => tx.sub_mchid ?? '');
    const sub = `COALESCE(orders.sub_mchid, '') = ${subMchid.sql}`;
    if (check === 'known') {
      // The attempts are known (cachedOrders): only the order's own row is read and written.
      const res = await runner.query(`UPDATE orders SET ${set} WHERE ${where} AND ${sub}`, [...setParams, ...whereParams, ...subMchid.params], true);
      return (res as { affected?: number }).affected ?? 0;
    }
    const attemptNo = whenThen((tx) => tx.out_trade_no);
    const appid = whenThen((tx) => tx.appid);
    const attempt = `a.order_id = orders.id AND a.out_trade_no = ${attemptNo.sql} AND a.transaction_id IS NULL AND COALESCE(a.appid, ?) = ${appid.sql}`;
    const attemptParams = [...attemptNo.params, this.credentials.appid, ...appid.params];
    // One table: a multi-table UPDATE that also marked the attempt paid (one statement fewer on MariaDB)
    // deadlocked with a concurrent batch of the same order (it may lock the attempt's row before the
    // order's, while every other path locks the order's first).
    const res = await runner.query(
      `UPDATE orders SET ${set} WHERE ${where} AND ${sub} AND EXISTS (SELECT 1 FROM payment_attempts a WHERE ${attempt})`,
      [...setParams, ...whereParams, ...subMchid.params, ...attemptParams],
      true,
    );
    return (res as { affected?: number }).affected ?? 0;
  }

  /**
   * How many orders paid since `since` (WeChat's success_time) were applied from each source, read
   * from their timelines (`<source>:applied`): what tells a working notify_url from payments found only
   * by queries. Orders by paid_at (indexed), then their events by order.
   */
  async appliedBySource(since: Date): Promise<Partial<Record<PaymentSource, number>>> {
    const rows: Array<{ type: string; n: number | string }> = await this.dataSource.query(
      `SELECT e.type AS type, COUNT(*) AS n FROM orders o JOIN order_events e ON e.out_trade_no = o.out_trade_no
       WHERE o.paid_at > ? AND e.type LIKE '%:applied' GROUP BY e.type`,
      [dbDate(this.dataSource, since)],
    );
    return Object.fromEntries(rows.map((r) => [r.type.slice(0, -':applied'.length), Number(r.n)]));
  }

  onModuleDestroy(): void {
    for (const item of this.queue.splice(0)) item.reject(new Error('shutting down'));
  }
}
