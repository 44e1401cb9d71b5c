import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { IncomingHttpHeaders } from 'node:http';
import { EntityManager, MoreThan, Repository } from 'typeorm';
import { Clock } from '../common/clock';
import { ApplyOutcome, BatchHook, PaymentApplier } from '../payment/payment-applier.service';
import { WechatPayDecryptError, WechatPaySignatureError } from '../wechat/pay/errors';
import { WechatPayNotificationParser } from '../wechat/pay/notification-parser';
import type { NotificationEnvelope, RefundNotificationResource, Transaction } from '../wechat/pay/types';
import { PaymentEvent } from './entities/payment-event.entity';
import { REFUND_NOTIFICATION_SINK, RefundNotificationSink } from './refund-notification.sink';

/** What the controller answers WeChat. */
export type NotifyAnswer = { status: 204 } | { status: 400 | 401 | 500; code: 'FAIL'; message: string };

interface EventRow {
  kind: string;
  notificationId: string | null;
  eventType: string | null;
  outTradeNo: string | null;
  outRefundNo: string | null;
  verified: number;
  outcome: string;
  serial: string | null;
  rawBody: string;
  receivedAt: Date;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * WeChat Pay notifications. Order of work: verify the signature over the raw bytes (bad → 401, stored
 * only as untrusted); decrypt; then apply — the raw event row, the order transition and its timeline
 * entry commit together in one transaction (shared with other notifications arriving at the same
 * moment) and WeChat gets 204 only after that commit. Duplicates are acknowledged and change nothing;
 * a database failure answers 500 so WeChat retries.
 */
@Injectable()
export class NotifyService {
  private readonly logger = new Logger(NotifyService.name);

  constructor(
    private readonly parser: WechatPayNotificationParser,
    private readonly applier: PaymentApplier,
    @InjectRepository(PaymentEvent) private readonly events: Repository<PaymentEvent>,
    private readonly clock: Clock,
    @Optional() @Inject(REFUND_NOTIFICATION_SINK) private readonly refundSink?: RefundNotificationSink,
  ) {}

  /** Writes the raw events of one apply batch, in its transaction, with the outcome each got. */
  private readonly persist: BatchHook = async (manager: EntityManager, items) => {
    await manager
      .createQueryBuilder()
      .insert()
      .into(PaymentEvent)
      .values(items.map(({ outcome, attachment }) => ({ ...(attachment as EventRow), outcome })))
      .execute();
  };

  async transaction(headers: IncomingHttpHeaders, rawBody: Buffer | undefined): Promise<NotifyAnswer> {
    const pre = await this.verifyAndDecrypt('transaction', headers, rawBody);
    if ('status' in pre) return pre;
    const { envelope, resource, row } = pre;
    if (!envelope.event_type.startsWith('TRANSACTION.')) {
      this.store({ ...row, outcome: 'wrong_endpoint' });
      return { status: 400, code: 'FAIL', message: `${envelope.event_type} is not a payment notification` };
    }
    const tx = resource as Transaction;
    row.outTradeNo = typeof tx.out_trade_no === 'string' ? tx.out_trade_no.slice(0, 32) : null;
    try {
      const result = await this.applier.apply(tx, 'notification', { attachment: row, hook: this.persist });
      this.logOutcome(result.outcome, tx);
      return { status: 204 };
    } catch (error) {
      this.logger.error(`notification for ${row.outTradeNo} not applied (WeChat will retry): ${(error as Error).message}`);
      return { status: 500, code: 'FAIL', message: '系统繁忙，请稍后重试' };
    }
  }

  async refund(headers: IncomingHttpHeaders, rawBody: Buffer | undefined): Promise<NotifyAnswer> {
    const pre = await this.verifyAndDecrypt('refund', headers, rawBody);
    if ('status' in pre) return pre;
    const { envelope, resource, row } = pre;
    if (!envelope.event_type.startsWith('REFUND.')) {
      this.store({ ...row, outcome: 'wrong_endpoint' });
      return { status: 400, code: 'FAIL', message: `${envelope.event_type} is not a refund notification` };
    }
    const refund = resource as RefundNotificationResource;
    row.outTradeNo = typeof refund.out_trade_no === 'string' ? refund.out_trade_no.slice(0, 32) : null;
    row.outRefundNo = typeof refund.out_refund_no === 'string' ? refund.out_refund_no.slice(0, 64) : null;
    try {
      const outcome = this.refundSink ? await this.refundSink.handleRefundNotification(refund, envelope.event_type) : 'no_refund_module';
      await this.events.insert({ ...row, outcome: `refund:${outcome}`.slice(0, 32) });
      return { status: 204 };
    } catch (error) {
      this.logger.error(`refund notification ${row.outRefundNo} not applied (WeChat will retry): ${(error as Error).message}`);
      return { status: 500, code: 'FAIL', message: '系统繁忙，请稍后重试' };
    }
  }

  private async verifyAndDecrypt(
    kind: 'transaction' | 'refund',
    headers: IncomingHttpHeaders,
    rawBody: Buffer | undefined,
  ): Promise<NotifyAnswer | { envelope: NotificationEnvelope; resource: unknown; row: EventRow }> {
    const now = this.clock.now();
    const raw = rawBody ?? Buffer.alloc(0);
    const row: EventRow = {
      kind,
      notificationId: null,
      eventType: null,
      outTradeNo: null,
      outRefundNo: null,
      verified: 0,
      outcome: 'received',
      serial: header(headers, 'wechatpay-serial')?.slice(0, 64) ?? null,
      rawBody: raw.toString('utf8').slice(0, 60_000),
      receivedAt: now,
    };
    if (raw.length === 0) {
      this.store({ ...row, outcome: 'rejected:empty_body' });
      return { status: 400, code: 'FAIL', message: 'empty body: the notification must be application/json' };
    }
    try {
      await this.parser.verify(headers, raw);
    } catch (error) {
      if (error instanceof WechatPaySignatureError) {
        this.store({ ...row, outcome: `rejected:${error.reason}` });
        this.logger.warn(`${kind} notification rejected: ${error.message}`);
        return { status: 401, code: 'FAIL', message: `签名验证失败（${error.reason}）` };
      }
      this.logger.error(`could not verify a ${kind} notification: ${(error as Error).message}`);
      return { status: 500, code: 'FAIL', message: '系统繁忙，请稍后重试' };
    }
    row.verified = 1;
    let envelope: NotificationEnvelope;
    try {
      envelope = this.parser.envelope(raw);
    } catch {
      this.store({ ...row, outcome: 'malformed' });
      return { status: 400, code: 'FAIL', message: 'notification body is not a WeChat Pay notification' };
    }
    row.notificationId = typeof envelope.id === 'string' ? envelope.id.slice(0, 64) : null;
    row.eventType = envelope.event_type.slice(0, 32);
    try {
      const parsed = this.parser.decrypt(envelope);
      return { envelope, resource: parsed.resource, row };
    } catch (error) {
      if (error instanceof WechatPayDecryptError) {
        this.store({ ...row, outcome: 'decrypt_failed' });
        this.logger.warn(`${kind} notification ${row.notificationId} could not be decrypted: ${error.message}`);
        return { status: 401, code: 'FAIL', message: '解密失败' };
      }
      throw error;
    }
  }

  /** Records a notification we did not apply; never blocks or fails the answer to WeChat. */
  private store(row: EventRow): void {
    this.events.insert(row).catch((error: Error) => this.logger.warn(`could not record a ${row.outcome} notification: ${error.message}`));
  }

  private logOutcome(outcome: ApplyOutcome, tx: Transaction): void {
    if (outcome === 'applied' || outcome === 'duplicate') return;
    this.logger.warn(`payment notification for ${tx.out_trade_no}: ${outcome}`);
  }

  /** Recent notifications and counts by outcome, for the operators' health panel. */
  async health(limit: number) {
    const since = new Date(this.clock.nowMs() - 24 * 3600_000);
    const recent = await this.events.find({
      select: ['id', 'kind', 'notificationId', 'eventType', 'outTradeNo', 'outRefundNo', 'verified', 'outcome', 'serial', 'receivedAt'],
      order: { id: 'DESC' },
      take: limit,
    });
    const counts: Array<{ outcome: string; n: number | string }> = await this.events
      .createQueryBuilder('e')
      .select('e.outcome', 'outcome')
      .addSelect('COUNT(*)', 'n')
      .where({ receivedAt: MoreThan(since) })
      .groupBy('e.outcome')
      .getRawMany();
    // WeChat redelivers until acknowledged: several events with one notification id are its retries.
    const retries: Array<{ n: number | string }> = await this.events
      .createQueryBuilder('e')
      .select('COUNT(*) - COUNT(DISTINCT e.notification_id)', 'n')
      .where({ receivedAt: MoreThan(since) })
      .andWhere('e.notification_id IS NOT NULL')
      .getRawMany();
    return {
      last24h: Object.fromEntries(counts.map((c) => [c.outcome, Number(c.n)])),
      redeliveriesLast24h: Number(retries[0]?.n ?? 0),
      recent: recent.map((e) => ({
        id: Number(e.id),
        kind: e.kind,
        notificationId: e.notificationId,
        eventType: e.eventType,
        outTradeNo: e.outTradeNo,
        outRefundNo: e.outRefundNo,
        verified: e.verified === 1,
        outcome: e.outcome,
        receivedAt: e.receivedAt.toISOString(),
      })),
    };
  }
}
