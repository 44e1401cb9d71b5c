import { HttpStatus, Inject, Injectable, Logger } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { InjectDataSource, InjectRepository } from '@nestjs/typeorm';
import { createHash, randomBytes } from 'node:crypto';
import { DataSource, In, IsNull, LessThanOrEqual, Repository } from 'typeorm';
import { AdminAuditService } from '../admin/admin-audit.service';
import { Clock } from '../common/clock';
import { AppError, NotFoundError } from '../common/errors/app-error';
import { AppConfig } from '../config/app-config';
import { isDuplicateKey } from '../database/lease.service';
import { inTransaction } from '../database/transactions';
import type { RefundNotificationSink } from '../notify/refund-notification.sink';
import { OrderService } from '../payment/order.service';
import { Order } from '../payment/entities/order.entity';
import { DuplicatePaymentEvent, ORDER_DUPLICATE_PAYMENT, ORDER_PAID_AFTER_CLOSE } from '../payment/payment-applier.service';
import type { RefundProgress } from '../payment/refund-progress';
import { WechatPayApiError, WechatPayNetworkError } from '../wechat/pay/errors';
import type { RefundNotificationResource } from '../wechat/pay/types';
import { PAYMENT_GATEWAY, PaymentGateway, RefundResult } from '../wechat/pay/payment-gateway';
import { WechatCredentials } from '../wechat/wechat-credentials';
import { CreateRefundDto, RefundDto } from './dto/refund.dto';
import { Refund, RefundStatus } from './entities/refund.entity';

/** A reserved refund without WeChat's answer is re-sent by the job once it is this old. */
const UNSENT_GRACE_MS = 5_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Which statuses an authoritative WeChat result may move a refund from, and to what (see applyResult). */
const TRANSITIONS: Partial<Record<RefundStatus, readonly RefundStatus[]>> = {
  PROCESSING: ['SUCCESS', 'CLOSED', 'ABNORMAL'],
  ABNORMAL: ['SUCCESS', 'CLOSED'],
  FAILED: ['SUCCESS', 'CLOSED', 'ABNORMAL'],
};

export function refundView(r: Refund): RefundDto {
  return {
    outRefundNo: r.outRefundNo,
    outTradeNo: r.outTradeNo,
    paymentOutTradeNo: r.paymentOutTradeNo ?? r.outTradeNo,
    amount: r.amount,
    reason: r.reason,
    status: r.status,
    refundId: r.refundId,
    wechatCode: r.wechatCode,
    wechatMessage: r.wechatMessage,
    source: r.source,
    createdAt: r.createdAt.toISOString(),
    successAt: r.successAt ? r.successAt.toISOString() : null,
  };
}

function newOutRefundNo(now: Date): string {
  const stamp = new Date(now.getTime() + 8 * 3600_000).toISOString().replace(/\D/g, '').slice(2, 14);
  return `R${stamp}${randomBytes(6).toString('hex').toUpperCase()}`;
}

/**
 * Refunds. The refundable amount (paid − succeeded − in flight) is checked and the refund row is
 * written PROCESSING under a lock on the order, before WeChat is called, so two simultaneous full
 * refunds cannot both pass. Results (notification, query, job) move a refund out of PROCESSING once,
 * by a guarded UPDATE, and only then add to the order's refunded total.
 */
@Injectable()
export class RefundService implements RefundNotificationSink, RefundProgress {
  private readonly logger = new Logger(RefundService.name);

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @InjectRepository(Refund) private readonly refunds: Repository<Refund>,
    private readonly orders: OrderService,
    @Inject(PAYMENT_GATEWAY) private readonly gateway: PaymentGateway,
    private readonly credentials: WechatCredentials,
    private readonly audit: AdminAuditService,
    private readonly config: AppConfig,
    private readonly clock: Clock,
  ) {}

  /**
   * `duplicateOf`: the refund of a duplicate payment (the attempt paid on top of the order's payment,
   * refunded automatically); otherwise the refund goes to the attempt that paid the order.
   */
  async create(dto: CreateRefundDto, source: 'admin' | 'auto' = 'admin', duplicateOf?: string): Promise<{ refund: RefundDto; replayed: boolean }> {
    const now = this.clock.now();
    const outRefundNo = dto.outRefundNo ?? newOutRefundNo(now);
    const requestHash = createHash('sha256').update(JSON.stringify([dto.outTradeNo, dto.amount, dto.reason])).digest('hex');

    const reserved: { replay: Refund } | { paidTotal: number; paymentOutTradeNo: string; subMchid?: string | null; appid?: string | null } = await this.reserve(dto, outRefundNo, requestHash, source, duplicateOf).catch(async (error: unknown) => {
      if (!isDuplicateKey(error)) throw error;
      // The same outRefundNo raced in from another request: answer as its replay.
      return { replay: await this.refunds.findOneByOrFail({ outRefundNo }) };
    });
    if ('replay' in reserved) {
      if (reserved.replay.requestHash !== requestHash) {
        throw new AppError(HttpStatus.CONFLICT, 'REFUND_NO_REUSED', `outRefundNo ${outRefundNo} was already used for a different refund`);
      }
      return { refund: refundView(reserved.replay), replayed: true };
    }

    let answer: RefundResult;
    try {
      answer = await this.callWithRetries(() =>
        this.gateway.refund({
          outTradeNo: reserved.paymentOutTradeNo,
          outRefundNo,
          reason: dto.reason,
          amount: dto.amount,
          total: reserved.paidTotal,
          ...(reserved.subMchid ? { merchant: { subMchid: reserved.subMchid } } : {}),
          ...(reserved.appid ? { appid: reserved.appid } : {}),
        }),
      );
    } catch (error) {
      if (error instanceof WechatPayApiError && error.httpStatus >= 400 && error.httpStatus < 500) {
        // WeChat refused it (400 INVALID_REQUEST "exceeds what is refundable", 403 NOT_ENOUGH "merchant
        // balance", 404 RESOURCE_NOT_EXISTS, …): the row stays, marked FAILED with WeChat's reason, and
        // the amount is free again. A later authoritative result from WeChat may still move it (applyResult).
        await this.refunds.update(
          { outRefundNo, status: 'PROCESSING' },
          { status: 'FAILED', wechatCode: error.wechatCode.slice(0, 64), wechatMessage: error.wechatMessage.slice(0, 255), updatedAt: this.clock.now() },
        );
        await this.orders.recordEvent(dto.outTradeNo, 'refund_failed', { outRefundNo, wechatCode: error.wechatCode, wechatStatus: error.httpStatus, message: error.wechatMessage });
        throw new AppError(
          error.httpStatus === 429 ? HttpStatus.SERVICE_UNAVAILABLE : HttpStatus.UNPROCESSABLE_ENTITY,
          'WECHAT_REFUND_REJECTED',
          `WeChat refused the refund: ${error.wechatCode} ${error.wechatMessage}`,
          { wechatCode: error.wechatCode, wechatMessage: error.wechatMessage, wechatStatus: error.httpStatus, outRefundNo, status: 'FAILED' },
        );
      }
      // Unknown outcome (5xx after retries, network): WeChat may or may not have the refund. The row
      // stays PROCESSING, so the amount stays reserved; GET /admin/refunds/:no and the refund job ask
      // WeChat and settle it (a refund WeChat never received is sent again, same out_refund_no).
      const message = (error as Error).message;
      this.logger.warn(`refund ${outRefundNo} outcome unknown: ${message}`);
      const wechat = error instanceof WechatPayApiError ? { wechatCode: error.wechatCode, wechatStatus: error.httpStatus } : {};
      await this.orders
        .recordEvent(dto.outTradeNo, 'refund_outcome_unknown', { outRefundNo, error: error instanceof AppError ? error.code : 'ERROR', message: message.slice(0, 255) })
        .catch((e: Error) => this.logger.error(`could not record refund_outcome_unknown for ${outRefundNo}: ${e.message}`));
      throw new AppError(
        HttpStatus.BAD_GATEWAY,
        'WECHAT_REFUND_OUTCOME_UNKNOWN',
        `WeChat Pay did not answer the refund request (${message}); refund ${outRefundNo} stays PROCESSING until WeChat is asked about it (GET /admin/refunds/${outRefundNo} or the refund job)`,
        { outRefundNo, status: 'PROCESSING', error: error instanceof AppError ? error.code : 'ERROR', ...wechat },
      );
    }
    await this.refunds.update({ outRefundNo }, { refundId: answer.refundId, updatedAt: this.clock.now() });
    if (answer.status !== 'PROCESSING') await this.applyResult(outRefundNo, answer.status, answer.refundId, answer.successAt?.toISOString(), 'create');
    return { refund: refundView(await this.refunds.findOneByOrFail({ outRefundNo })), replayed: false };
  }

  /** Under a lock on the order: how much may still be refunded, and the PROCESSING row. */
  private async reserve(
    dto: CreateRefundDto,
    outRefundNo: string,
    requestHash: string,
    source: string,
    duplicateOf?: string,
  ): Promise<{ replay: Refund } | { paidTotal: number; paymentOutTradeNo: string; subMchid?: string | null; appid?: string | null }> {
    return inTransaction(this.dataSource, async (_runner, manager): Promise<{ replay: Refund } | { paidTotal: number; paymentOutTradeNo: string; subMchid?: string | null; appid?: string | null }> => {
      // The lock comes first: on MySQL (REPEATABLE READ) the first plain read fixes the snapshot, and it
      // must be taken after a competing refund committed, or its row would be invisible to the sum below.
      const order = await this.orders.lockForUpdate(manager, dto.outTradeNo);
      const existing = await manager.findOneBy(Refund, { outRefundNo });
      if (existing) return { replay: existing };
      if (!order) throw new NotFoundError(`order ${dto.outTradeNo}`, 'ORDER_NOT_FOUND');
      let paidTotal: number;
      let paymentOutTradeNo: string;
      let appid: string | null;
      if (duplicateOf) {
        // A duplicate payment: the attempt's own money (it matched the order's total to be recorded as one).
        const duplicate = await this.orders.duplicatePayment(order, duplicateOf);
        if (!duplicate) throw new AppError(HttpStatus.CONFLICT, 'NOT_A_DUPLICATE_PAYMENT', `${duplicateOf} is not a duplicate payment of order ${dto.outTradeNo}`);
        paidTotal = order.total;
        paymentOutTradeNo = duplicate.outTradeNo;
        appid = duplicate.appid;
      } else {
        if (!['PAID', 'PAID_AFTER_CLOSE', 'REFUNDED'].includes(order.status)) {
          throw new AppError(HttpStatus.CONFLICT, 'ORDER_NOT_PAID', `order ${dto.outTradeNo} is ${order.status}; only paid orders can be refunded`, { status: order.status });
        }
        paidTotal = order.paidTotal ?? order.total;
        ({ outTradeNo: paymentOutTradeNo, appid } = await this.orders.paidAttempt(order));
      }
      const committed: Array<{ status: string; sum: string | number | null }> = await manager
        .createQueryBuilder(Refund, 'r')
        .select('r.status', 'status')
        .addSelect('SUM(r.amount)', 'sum')
        .where('r.out_trade_no = :no', { no: dto.outTradeNo })
        .andWhere('COALESCE(r.payment_out_trade_no, r.out_trade_no) = :pno', { pno: paymentOutTradeNo })
        .andWhere('r.status IN (:...statuses)', { statuses: ['PROCESSING', 'ABNORMAL', 'SUCCESS'] })
        .groupBy('r.status')
        .getRawMany();
      const sum = (status: RefundStatus) => Number(committed.find((c) => c.status === status)?.sum ?? 0);
      const refunded = sum('SUCCESS');
      // ABNORMAL refunds count as in flight: WeChat holds that money until the refund is retried
      // (apply-abnormal-refund) or closed; refunding it again could pay the shopper twice.
      const abnormal = sum('ABNORMAL');
      const inFlight = sum('PROCESSING') + abnormal;
      const remaining = paidTotal - refunded - inFlight;
      if (dto.amount > remaining) {
        throw new AppError(
          HttpStatus.CONFLICT,
          'REFUND_EXCEEDS_REMAINING',
          `cannot refund ${dto.amount} fen: paid ${paidTotal}, refunded ${refunded}, in flight ${inFlight}${abnormal ? ` (of which ${abnormal} ABNORMAL, held by WeChat until resolved)` : ''}, ${remaining} left`,
          { paid: paidTotal, refunded, inFlight, abnormal, remaining },
        );
      }
      const now = this.clock.now();
      await manager.insert(Refund, {
        outRefundNo,
        outTradeNo: dto.outTradeNo,
        paymentOutTradeNo,
        amount: dto.amount,
        reason: dto.reason,
        status: 'PROCESSING',
        requestHash,
        source,
        createdAt: now,
        updatedAt: now,
      });
      await this.orders.recordEvent(
        dto.outTradeNo,
        'refund_requested',
        { outRefundNo, amount: dto.amount, reason: dto.reason, source, ...(paymentOutTradeNo !== dto.outTradeNo ? { attempt: paymentOutTradeNo } : {}) },
        manager,
      );
      return { paidTotal, paymentOutTradeNo, subMchid: order.subMchid, appid };
    });
  }

  private async callWithRetries<T>(call: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        // Same out_refund_no, same body: WeChat refunds it only once, so 5xx and network errors are safe to retry.
        const retryable = (error instanceof WechatPayApiError && (error.isServerError || error.isRateLimited)) || error instanceof WechatPayNetworkError;
        if (!retryable || attempt >= 3) throw error;
        await sleep(150 * attempt);
      }
    }
  }

  /**
   * Applies an authoritative result from WeChat (notification, query, create answer, bill) once, by a
   * guarded UPDATE on the status it was read in, and, for SUCCESS, adds the amount to the order in the
   * same transaction. Transitions:
   * - PROCESSING → SUCCESS | CLOSED | ABNORMAL
   * - ABNORMAL → SUCCESS | CLOSED (an abnormal refund retried or closed at WeChat)
   * - FAILED → SUCCESS | CLOSED | ABNORMAL (we concluded WeChat refused or never got it, but WeChat
   *   says otherwise: WeChat is right; the move is on the order's timeline with the previous status)
   * SUCCESS and CLOSED are final. Returns 'applied', 'duplicate' (nothing to do), 'unknown_refund' or
   * 'still_processing'.
   */
  async applyResult(outRefundNo: string, status: string, refundId: string | undefined, successTime: string | undefined, source: string): Promise<string> {
    if (!['SUCCESS', 'CLOSED', 'ABNORMAL'].includes(status)) return 'still_processing';
    const target = status as RefundStatus;
    return inTransaction(this.dataSource, async (_runner, manager) => {
      const refund = await manager.findOneBy(Refund, { outRefundNo });
      if (!refund) return 'unknown_refund';
      const from = refund.status;
      if (!TRANSITIONS[from]?.includes(target)) return 'duplicate';
      const now = this.clock.now();
      const at = successTime && !Number.isNaN(Date.parse(successTime)) ? new Date(successTime) : now;
      const res = await manager
        .createQueryBuilder()
        .update(Refund)
        .set({
          status: target,
          successAt: target === 'SUCCESS' ? at : null,
          refundId: refundId ?? refund.refundId,
          // WeChat's refusal no longer describes the refund once WeChat reports it (it stays on the timeline)
          ...(from === 'FAILED' ? { wechatCode: null, wechatMessage: null } : {}),
          updatedAt: now,
        })
        .where('out_refund_no = :no AND status = :from', { no: outRefundNo, from })
        .execute();
      if (!res.affected) return 'duplicate';
      if (from === 'FAILED') this.logger.warn(`refund ${outRefundNo} was FAILED here, WeChat reports ${target} (${source}): applied`);
      let orderStatus: string | undefined;
      const order = await manager.findOneBy(Order, { outTradeNo: refund.outTradeNo });
      const duplicate = order && refund.paymentOutTradeNo ? await this.orders.duplicatePayment(order, refund.paymentOutTradeNo) : null;
      if (target === 'SUCCESS' && duplicate) {
        // A duplicate payment given back: the attempt is REFUNDED; the order's own payment is untouched.
        if (refund.amount >= (order?.total ?? 0)) await this.orders.markAttemptRefunded(manager, duplicate.outTradeNo);
      } else if (target === 'SUCCESS') {
        orderStatus = await this.orders.addRefunded(manager, refund.outTradeNo, refund.amount);
      }
      await this.orders.recordEvent(
        refund.outTradeNo,
        `refund_${target.toLowerCase()}`,
        { outRefundNo, amount: refund.amount, source, orderStatus, ...(from !== 'PROCESSING' ? { previousStatus: from } : {}) },
        manager,
      );
      return 'applied';
    });
  }

  /** From the notify module: a verified, decrypted REFUND.* notification. */
  async handleRefundNotification(resource: RefundNotificationResource, eventType: string): Promise<string> {
    // Direct: mchid. Service provider: sp_mchid ours and sub_mchid the refunded order's own.
    const mchid = resource.mchid ?? resource.sp_mchid;
    if (mchid && mchid !== this.credentials.mchid) {
      this.logger.error(`refund notification for mchid ${mchid} is not ours`);
      return 'not_ours';
    }
    const refunded = await this.refunds.findOneBy({ outRefundNo: resource.out_refund_no });
    const order = refunded ? await this.orders.findByOutTradeNo(refunded.outTradeNo) : null;
    if (order && (resource.sub_mchid ?? null) !== (order.subMchid ?? null)) {
      this.logger.error(`refund notification of ${resource.out_refund_no} names sub_mchid ${resource.sub_mchid ?? '(none)'}, its order's is ${order.subMchid ?? '(none)'}: not ours`);
      return 'not_ours';
    }
    const status = resource.refund_status ?? eventType.replace('REFUND.', '');
    return this.applyResult(resource.out_refund_no, status, resource.refund_id, resource.success_time, 'notification');
  }

  /**
   * The refund, asking WeChat first while it is unresolved (PROCESSING or ABNORMAL). `previousStatus`
   * is set when that query changed it (the caller audits it).
   */
  async get(outRefundNo: string): Promise<{ refund: RefundDto; previousStatus?: RefundStatus }> {
    let refund = await this.refunds.findOneBy({ outRefundNo });
    if (!refund) throw new NotFoundError(`refund ${outRefundNo}`, 'REFUND_NOT_FOUND');
    const before = refund.status;
    if (before === 'PROCESSING' || before === 'ABNORMAL') {
      await this.query(refund).catch((error: Error) => this.logger.warn(`query of refund ${outRefundNo} failed: ${error.message}`));
      refund = await this.refunds.findOneByOrFail({ outRefundNo });
    }
    return { refund: refundView(refund), ...(refund.status !== before ? { previousStatus: before } : {}) };
  }

  private async query(refund: Refund): Promise<string> {
    await this.refunds.update({ outRefundNo: refund.outRefundNo }, { lastQueriedAt: this.clock.now() });
    try {
      const order = await this.orders.findByOutTradeNo(refund.outTradeNo);
      const answer = await this.gateway.queryRefund(refund.outRefundNo, order?.subMchid ? { subMchid: order.subMchid } : undefined);
      return await this.applyResult(refund.outRefundNo, answer.status, answer.refundId, answer.successAt?.toISOString(), 'query');
    } catch (error) {
      if (error instanceof WechatPayApiError && error.httpStatus === 404 && refund.status === 'PROCESSING') {
        // "Not found" is not an answer about a request that may have left: it may be held in the network
        // and reach WeChat later (a FAILED row would free the amount, and a second refund pay out twice).
        // The row stays PROCESSING and the very same request (same out_refund_no, which WeChat takes
        // once) is sent again; only WeChat's refusal of it, or its CLOSED/ABNORMAL result, ends it.
        return this.resend(refund);
      }
      throw error;
    }
  }

  /** Sends a PROCESSING refund's request again, unchanged (a held, dropped or never-sent request). */
  private async resend(refund: Refund): Promise<string> {
    const order = await this.orders.findByOutTradeNo(refund.outTradeNo);
    if (!order) return 'still_processing';
    let answer: RefundResult;
    try {
      const duplicate = refund.paymentOutTradeNo ? await this.orders.duplicatePayment(order, refund.paymentOutTradeNo) : null;
      const paymentOutTradeNo = refund.paymentOutTradeNo ?? refund.outTradeNo;
      const appid = duplicate ? duplicate.appid : await this.orders.attemptAppid(paymentOutTradeNo);
      answer = await this.gateway.refund({
        outTradeNo: paymentOutTradeNo,
        outRefundNo: refund.outRefundNo,
        ...(refund.reason ? { reason: refund.reason } : {}),
        amount: refund.amount,
        total: duplicate ? order.total : (order.paidTotal ?? order.total),
        ...(order.subMchid ? { merchant: { subMchid: order.subMchid } } : {}),
        ...(appid ? { appid } : {}),
      });
    } catch (error) {
      if (error instanceof WechatPayApiError && error.httpStatus >= 400 && error.httpStatus < 500 && !error.isRateLimited) {
        // WeChat's own refusal of this very request: definitive, the amount is free again.
        const res = await this.refunds.update(
          { outRefundNo: refund.outRefundNo, status: 'PROCESSING' },
          { status: 'FAILED', wechatCode: error.wechatCode.slice(0, 64), wechatMessage: error.wechatMessage.slice(0, 255), updatedAt: this.clock.now() },
        );
        if (!res.affected) return 'duplicate';
        await this.orders.recordEvent(refund.outTradeNo, 'refund_failed', { outRefundNo: refund.outRefundNo, wechatCode: error.wechatCode, wechatStatus: error.httpStatus, source: 'resend', message: error.wechatMessage });
        return 'failed';
      }
      this.logger.warn(`refund ${refund.outRefundNo} re-send got no definitive answer, stays PROCESSING: ${(error as Error).message}`);
      return 'still_processing';
    }
    await this.refunds.update({ outRefundNo: refund.outRefundNo }, { refundId: answer.refundId, updatedAt: this.clock.now() });
    await this.orders.recordEvent(refund.outTradeNo, 'refund_resent', { outRefundNo: refund.outRefundNo, status: answer.status });
    if (answer.status !== 'PROCESSING') return this.applyResult(refund.outRefundNo, answer.status, answer.refundId, answer.successAt?.toISOString(), 'resend');
    return 'resent';
  }

  /** RefundProgress: of these orders, those with a refund in flight (PROCESSING, ABNORMAL) or done. */
  async ordersWithActiveRefund(outTradeNos: string[]): Promise<Set<string>> {
    if (!outTradeNos.length) return new Set();
    const rows = await this.refunds.find({ select: ['outTradeNo'], where: { outTradeNo: In(outTradeNos), status: In(['PROCESSING', 'ABNORMAL', 'SUCCESS']) } });
    return new Set(rows.map((r) => r.outTradeNo));
  }

  async list(filter: { outTradeNo?: string; status?: string; subMchid?: string }): Promise<RefundDto[]> {
    const qb = this.refunds.createQueryBuilder('r').orderBy('r.id', 'DESC').limit(200);
    if (filter.outTradeNo) qb.andWhere('r.out_trade_no = :outTradeNo', { outTradeNo: filter.outTradeNo });
    if (filter.status) qb.andWhere('r.status = :status', { status: filter.status });
    // Service-provider mode: refunds of that sub-merchant's orders (a refund names its order's number).
    if (filter.subMchid) qb.andWhere('r.out_trade_no IN (SELECT o.out_trade_no FROM orders o WHERE o.sub_mchid = :subMchid)', { subMchid: filter.subMchid });
    return (await qb.getMany()).map(refundView);
  }

  /** The refund job: refunds PROCESSING longer than REFUND_QUERY_AFTER are asked about. Returns how many changed. */
  async sweepProcessing(limit = 100): Promise<number> {
    const cutoff = new Date(this.clock.nowMs() - this.config.billing.refundQueryAfterMs);
    const stale = await this.refunds.find({ where: { status: 'PROCESSING', createdAt: LessThanOrEqual(cutoff) }, order: { id: 'ASC' }, take: limit });
    // Reserved but never answered by WeChat (no refund_id: the send failed, or the commit's acknowledgement
    // was lost and it was never sent): at once, not after REFUND_QUERY_AFTER, so the amount is not held
    // for nothing. A few seconds' grace leaves a request being sent right now alone (a re-send would be
    // harmless anyway: same out_refund_no).
    const unsentCutoff = new Date(this.clock.nowMs() - Math.min(UNSENT_GRACE_MS, this.config.billing.refundQueryAfterMs));
    const unsent = await this.refunds.find({ where: { status: 'PROCESSING', refundId: IsNull(), createdAt: LessThanOrEqual(unsentCutoff) }, order: { id: 'ASC' }, take: limit });
    for (const r of unsent) if (!stale.some((s) => s.outRefundNo === r.outRefundNo)) stale.push(r);
    let changed = 0;
    for (const refund of stale) {
      try {
        const outcome = await this.query(refund);
        if (outcome === 'applied' || outcome === 'failed' || outcome === 'resent') changed++;
      } catch (error) {
        this.logger.warn(`refund ${refund.outRefundNo} query failed: ${(error as Error).message}`);
      }
    }
    return changed;
  }

  /** Refunds that succeeded on a Beijing day, for reconciliation; with `subMchid`, only refunds of that sub-merchant's orders. */
  async succeededBetween(from: Date, to: Date, subMchid?: string): Promise<Refund[]> {
    const qb = this.refunds
      .createQueryBuilder('r')
      .where('r.success_at >= :from AND r.success_at < :to', { from, to })
      .andWhere('r.status = :s', { s: 'SUCCESS' });
    if (subMchid) qb.andWhere('r.out_trade_no IN (SELECT o.out_trade_no FROM orders o WHERE o.sub_mchid = :subMchid)', { subMchid });
    return qb.getMany();
  }

  async byNumbers(outRefundNos: string[]): Promise<Refund[]> {
    return outRefundNos.length ? this.refunds.findBy({ outRefundNo: In(outRefundNos) }) : [];
  }

  /**
   * Gives the money of a payment after close back, once: with PAID_AFTER_CLOSE_ACTION=refund, or when
   * the event asks for it (action 'refund': a reinstatement found no stock, or the payment jobs pursue
   * a refund decided earlier). The refund number is derived from the order (AC<outTradeNo>), so the
   * event delivered twice — or re-emitted by the payment jobs' sweep after a crash — refunds once. A
   * refund in flight or done is left alone; one WeChat refused (FAILED) or closed is retried under
   * the next derived number (AC<outTradeNo>-2, -3, …), up to 5 attempts, after which the order stays
   * PAID_AFTER_CLOSE for an operator (logged and audited, never silently dropped).
   */
  @OnEvent(ORDER_PAID_AFTER_CLOSE, { async: true, promisify: true })
  async onPaidAfterClose(event: { outTradeNo: string; action?: 'refund'; retry?: boolean }): Promise<void> {
    if (this.config.orders.paidAfterCloseAction !== 'refund' && event.action !== 'refund') return;
    const order = await this.orders.findByOutTradeNo(event.outTradeNo);
    // Resolved already (refunded, reinstated) or not a payment after close at all.
    if (!order || order.status !== 'PAID_AFTER_CLOSE') return;
    const base = `AC${event.outTradeNo}`.slice(0, 64);
    const earlier = (await this.refunds.findBy({ outTradeNo: event.outTradeNo })).filter(
      (r) => r.outRefundNo === base || r.outRefundNo.startsWith(`${base}-`),
    );
    if (earlier.some((r) => r.status === 'PROCESSING' || r.status === 'SUCCESS' || r.status === 'ABNORMAL')) return;
    const maxAttempts = 5;
    if (earlier.length >= maxAttempts) {
      this.logger.error(`automatic refund of ${event.outTradeNo} (paid after close) failed ${earlier.length} times; an operator must settle it`);
      await this.audit.record({ tokenFingerprint: 'system', action: 'refund.auto_paid_after_close', target: base, outcome: 'gave_up' });
      return;
    }
    const outRefundNo = earlier.length === 0 ? base : `${base}-${earlier.length + 1}`;
    let outcome = 'ok';
    try {
      await this.create({ outTradeNo: event.outTradeNo, amount: order.paidTotal ?? order.total, reason: '订单已关闭，款项原路退回', outRefundNo }, 'auto');
    } catch (error) {
      outcome = `error:${error instanceof AppError ? error.code : 'ERROR'}`;
      this.logger.error(`automatic refund of ${event.outTradeNo} (paid after close) failed: ${(error as Error).message}`);
    }
    await this.audit.record({ tokenFingerprint: 'system', action: 'refund.auto_paid_after_close', target: outRefundNo, outcome });
  }

  /**
   * A second attempt of an order that was already paid was paid too (a race closing narrows but
   * cannot remove): its money goes back in full, to that attempt, automatically. The refund number
   * is derived from the attempt (DP<attempt out_trade_no>), so the event delivered twice — or
   * re-emitted by the payment jobs' sweep — refunds once; a refused or closed one is retried under
   * -2, -3, … up to 5 times, then left to an operator (logged and audited).
   */
  @OnEvent(ORDER_DUPLICATE_PAYMENT, { async: true, promisify: true })
  async onDuplicatePayment(event: DuplicatePaymentEvent): Promise<void> {
    const base = `DP${event.attemptOutTradeNo}`.slice(0, 64);
    const earlier = (await this.refunds.findBy({ outTradeNo: event.outTradeNo, paymentOutTradeNo: event.attemptOutTradeNo })).filter(
      (r) => r.outRefundNo === base || r.outRefundNo.startsWith(`${base}-`),
    );
    if (earlier.some((r) => r.status === 'PROCESSING' || r.status === 'SUCCESS' || r.status === 'ABNORMAL')) return;
    if (earlier.length >= 5) {
      this.logger.error(`automatic refund of duplicate payment ${event.attemptOutTradeNo} failed ${earlier.length} times; an operator must settle it`);
      await this.audit.record({ tokenFingerprint: 'system', action: 'refund.auto_duplicate_payment', target: base, outcome: 'gave_up' });
      return;
    }
    const outRefundNo = earlier.length === 0 ? base : `${base}-${earlier.length + 1}`;
    let outcome = 'ok';
    try {
      await this.create({ outTradeNo: event.outTradeNo, amount: event.amount, reason: '重复支付，款项原路退回', outRefundNo }, 'auto', event.attemptOutTradeNo);
    } catch (error) {
      outcome = `error:${error instanceof AppError ? error.code : 'ERROR'}`;
      this.logger.error(`automatic refund of duplicate payment ${event.attemptOutTradeNo} failed: ${(error as Error).message}`);
    }
    await this.audit.record({ tokenFingerprint: 'system', action: 'refund.auto_duplicate_payment', target: outRefundNo, outcome });
  }
}
