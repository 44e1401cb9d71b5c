import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { EntityManager, In, LessThan, MoreThan, Not, Repository } from 'typeorm';
import { Clock } from '../common/clock';
import { dbDate } from '../database/transactions';
import { AppConfig } from '../config/app-config';
import { Metrics } from '../metrics/metrics.service';
import { ApplyOutcome, BatchHook, PaymentApplier } from '../payment/payment-applier.service';
import { WechatPayDecryptError, WechatPaySignatureError } from '../wechat/pay/errors';
import { WechatPayNotificationParser } from '../wechat/pay/notification-parser';
import type { NotificationEnvelope, RefundNotificationResource, Transaction } from '../wechat/pay/types';
import { V2NotificationError, V2NotificationKeys, parseV2PaymentNotification, parseV2RefundNotification } from '../wechat/pay-v2/notifications';
import { PAYMENT_GATEWAY, type PaymentGateway } from '../wechat/pay/payment-gateway';
import { WechatCredentials } from '../wechat/wechat-credentials';
import { PaymentEvent } from './entities/payment-event.entity';
import { REFUND_NOTIFICATION_SINK, RefundNotificationSink } from './refund-notification.sink';

/** What the controller answers WeChat. */
export type NotifyAnswer =
  | { status: 204 }
  | { status: 400 | 401 | 500; code: 'FAIL'; message: string }
  | { status: 429; code: 'FAIL'; message: string; retryAfterS: number };

/** A condition of the notification flow an operator should look at (the console shows it in amber). */
export interface NotificationWarning {
  code: 'NOTIFICATIONS_NOT_ARRIVING';
  message: string;
  appliedByQuery: number;
  notifyUrl: string;
  check: string[];
}

/**
 * Payments were found by querying WeChat while not one payment notification arrived: exactly what a
 * notify_url WeChat cannot reach looks like (the jobs still find the payments, minutes late, so
 * nothing else turns red).
 */
export function notificationWarnings(appliedByQuery: number, paymentNotifications: number, notifyUrl: string): NotificationWarning[] {
  if (appliedByQuery === 0 || paymentNotifications > 0) return [];
  return [
    {
      code: 'NOTIFICATIONS_NOT_ARRIVING',
      message: `最近 24 小时有 ${appliedByQuery} 笔支付是查单才发现的，却没有收到一条支付通知：微信很可能访问不到 notify_url（${notifyUrl}）`,
      appliedByQuery,
      notifyUrl,
      check: [
        `从外网用 https 访问 ${notifyUrl}：证书有效、证书链完整（不是自签名证书），443 端口可达`,
        'PUBLIC_BASE_URL 是微信能访问到的 https 地址（notify_url 由它拼成），不是 localhost 或内网地址',
        `反向代理（nginx 等）把 POST ${pathOf(notifyUrl)} 原样转发到本服务：不改写请求体，不要求登录，不跳转`,
        '防火墙、安全组或 WAF 放行微信支付回调的来访请求（不按地区或 User-Agent 拦截）',
      ],
    },
  ];
}

function pathOf(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return url;
  }
}

/** Signature headers kept for a notification that failed verification (its body is not kept). */
const SIGNATURE_HEADERS = ['wechatpay-signature', 'wechatpay-serial', 'wechatpay-timestamp', 'wechatpay-nonce', 'wechatpay-signature-type'];

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
  rawEncoding: 'utf8' | 'base64' | 'omitted' | 'headers';
  rawSize: number;
  rawSha256: string;
  receivedAt: Date;
}

/**
 * Larger bodies are not kept (a marker, their size and hash are): both notify routes refuse bodies
 * over 64 KiB, so this only guards against a future caller; it also keeps a batch's multi-row insert
 * far below MariaDB's max_allowed_packet.
 */
export const RAW_BODY_STORE_MAX = 256 * 1024;

/**
 * The notification's bytes, faithfully, for the raw_body column: as text when they are valid UTF-8
 * (then the text is exactly those bytes), else base64; too large: a marker. With size and SHA-256.
 */
export function rawBodyColumns(raw: Buffer): Pick<EventRow, 'rawBody' | 'rawEncoding' | 'rawSize' | 'rawSha256'> {
  const rawSha256 = createHash('sha256').update(raw).digest('hex');
  if (raw.length > RAW_BODY_STORE_MAX) {
    return { rawBody: `[raw body of ${raw.length} bytes not stored; sha256 ${rawSha256}]`, rawEncoding: 'omitted', rawSize: raw.length, rawSha256 };
  }
  if (isUtf8(raw)) return { rawBody: raw.toString('utf8'), rawEncoding: 'utf8', rawSize: raw.length, rawSha256 };
  return { rawBody: raw.toString('base64'), rawEncoding: 'base64', rawSize: raw.length, rawSha256 };
}

/**
 * A notification that failed verification is anybody's bytes: only its size, SHA-256 and signature
 * headers are kept (raw_encoding 'headers', raw_body the headers as JSON), so junk cannot fill the disk.
 */
function unverifiedRow(row: EventRow, headers: IncomingHttpHeaders, outcome: string): EventRow {
  const kept = Object.fromEntries(SIGNATURE_HEADERS.map((name) => [name, header(headers, name)?.slice(0, 512)]).filter(([, v]) => v !== undefined));
  return { ...row, outcome, rawBody: JSON.stringify(kept), rawEncoding: 'headers' };
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * WeChat Pay notifications. Order of work: verify the signature over the raw bytes (bad → 401, stored
 * with verified = 0 before answering); decrypt; then apply — the raw event row, the order transition
 * and its timeline entry commit together in one transaction (shared with other notifications arriving
 * at the same moment) and WeChat gets 204 only after that commit. Duplicates are acknowledged and
 * change nothing; a database failure answers 500 so WeChat retries.
 *
 * Why the verified raw notification is stored in the commit that applies it, after decrypting, rather
 * than in a commit of its own before: nothing is acted on and nothing acknowledged before that commit,
 * so a notification whose processing fails or whose process dies is answered 500 (or not at all) and
 * WeChat delivers the same bytes again — none is lost, and every acknowledged one is stored. Decrypting
 * is a pure function of the bytes; a separate insert first would cost a round trip and a commit per
 * notification (the throughput target of bench/notify.ts) and a second row or an UPDATE of an
 * append-only table for the outcome. Notifications that are not applied (bad signature, undecryptable,
 * malformed, wrong endpoint) are stored on their own, awaited, before the answer.
 */
/** The event row of a notification as it arrives: not verified yet, its body as received. */
function receivedRow(kind: 'transaction' | 'refund', raw: Buffer, serial: string | null, receivedAt: Date): EventRow {
  return {
    kind,
    notificationId: null,
    eventType: null,
    outTradeNo: null,
    outRefundNo: null,
    verified: 0,
    outcome: 'received',
    serial,
    ...rawBodyColumns(raw),
    receivedAt,
  };
}

@Injectable()
export class NotifyService {
  private readonly logger = new Logger(NotifyService.name);
  /** Rejections per client IP in the current minute window (this instance). */
  private rejections = new Map<string, number>();
  private windowStart = 0;

  constructor(
    private readonly parser: WechatPayNotificationParser,
    private readonly applier: PaymentApplier,
    @InjectRepository(PaymentEvent) private readonly events: Repository<PaymentEvent>,
    private readonly clock: Clock,
    private readonly config: AppConfig,
    @Optional() @Inject(REFUND_NOTIFICATION_SINK) private readonly refundSink?: RefundNotificationSink,
    @Optional() private readonly metrics?: Metrics,
    @Optional() private readonly credentials?: WechatCredentials,
    @Optional() @Inject(PAYMENT_GATEWAY) private readonly gateway?: PaymentGateway,
  ) {}

  /** Writes the raw events of one apply batch, in its transaction, with the outcome each got. */
  private readonly persist: BatchHook = async (manager: EntityManager, items) => {
    // Hand-written (one multi-row INSERT, as TypeORM's builder sent it, without building it per batch):
    // this runs inside the batch's transaction, while the orders' row locks are held.
    const d = (date: Date) => dbDate(manager.connection, date);
    const params = items.flatMap(({ outcome, attachment }) => {
      const r = attachment as EventRow;
      return [r.kind, r.notificationId, r.eventType, r.outTradeNo, r.outRefundNo, r.verified, outcome, r.serial, r.rawBody, r.rawEncoding, r.rawSize, r.rawSha256, d(r.receivedAt)];
    });
    await manager.query(
      `INSERT INTO payment_events (kind, notification_id, event_type, out_trade_no, out_refund_no, verified, outcome, serial, raw_body, raw_encoding, raw_size, raw_sha256, received_at) VALUES ${items.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
      params,
    );
  };

  async transaction(headers: IncomingHttpHeaders, rawBody: Buffer | undefined, clientIp?: string): Promise<NotifyAnswer> {
    const pre = await this.verifyAndDecrypt('transaction', headers, rawBody, clientIp);
    if ('status' in pre) return pre;
    const { envelope, resource, row } = pre;
    if (!envelope.event_type.startsWith('TRANSACTION.')) {
      await this.store({ ...row, outcome: 'wrong_endpoint' });
      return { status: 400, code: 'FAIL', message: `${envelope.event_type} is not a payment notification` };
    }
    return this.applyTransaction(resource as Transaction, row);
  }

  /**
   * An APIv2 payment notification (POST XML to /notify/wechatpay/v2/transaction): parsed without any
   * DTD, its sign checked with the APIv2 key (constant time), return_code/result_code, appid, mch_id,
   * total_fee and fee_type checked — then applied exactly like an APIv3 one (same applier, grouped
   * commit, raw event stored). Refusals are stored unverified, as for v3.
   */
  async transactionV2(rawBody: Buffer | undefined, clientIp?: string): Promise<NotifyAnswer> {
    const received = await this.receiveV2('transaction', rawBody, clientIp, (raw, keys) => parseV2PaymentNotification(raw, keys).transaction, 'bad_signature');
    if ('status' in received) return received;
    const { parsed: tx, row } = received;
    row.eventType = 'TRANSACTION.SUCCESS';
    return this.applyTransaction(tx, row);
  }

  /**
   * What every APIv2 notification goes through before it is applied: the per-IP rejection limit, the
   * event row, the APIv2 key, parsing and checking (`parse` throws V2NotificationError), and for a
   * refusal an unverified event (size, hash and no body) and a FAIL answer — 401 for `authReason`
   * (the sign or the decryption failed), 400 otherwise.
   */
  private async receiveV2<T>(
    kind: 'transaction' | 'refund',
    rawBody: Buffer | undefined,
    clientIp: string | undefined,
    parse: (raw: Buffer, keys: V2NotificationKeys) => T,
    authReason: string,
  ): Promise<NotifyAnswer | { parsed: T; row: EventRow }> {
    const limited = this.rejectLimited(clientIp);
    if (limited) {
      this.metrics?.notification(kind, 'rate_limited');
      return limited;
    }
    const raw = rawBody ?? Buffer.alloc(0);
    const row = receivedRow(kind, raw, null, this.clock.now());
    const keys = this.v2Keys();
    if (!keys) return { status: 400, code: 'FAIL', message: 'APIv2 is not configured (WECHATPAY_API_V2_KEY)' };
    try {
      const parsed = parse(raw, keys);
      row.verified = 1;
      return { parsed, row };
    } catch (error) {
      if (!(error instanceof V2NotificationError)) throw error;
      this.countRejection(clientIp);
      await this.store({ ...row, outcome: `rejected:v2_${error.reason}`.slice(0, 32), rawBody: '{}', rawEncoding: 'headers' });
      this.metrics?.notification(kind, 'rejected');
      this.logger.warn(`v2 ${kind === 'transaction' ? 'payment' : 'refund'} notification rejected: ${error.message}`);
      return { status: error.reason === authReason ? 401 : 400, code: 'FAIL', message: error.message };
    }
  }

  private v2Keys(): V2NotificationKeys | undefined {
    const c = this.credentials;
    if (!c?.apiV2Key) return undefined;
    return { appid: c.appid, mchid: c.mchid, apiKey: c.apiV2Key, signType: this.config.wechat.v2SignType, otherAppids: c.miniprogram ? [c.miniprogram.appid] : [] };
  }

  /** The apply step every payment notification shares, whichever API version delivered it. */
  private async applyTransaction(tx: Transaction, row: EventRow): Promise<NotifyAnswer> {
    row.outTradeNo = typeof tx.out_trade_no === 'string' ? tx.out_trade_no.slice(0, 32) : null;
    try {
      const result = await this.applier.apply(tx, 'notification', { attachment: row, hook: this.persist });
      this.metrics?.notification('transaction', result.outcome);
      this.logOutcome(result.outcome, tx);
      return { status: 204 };
    } catch (error) {
      this.metrics?.notification('transaction', 'error');
      this.logger.error(`notification for ${row.outTradeNo} not applied (WeChat will retry): ${(error as Error).message}`);
      return { status: 500, code: 'FAIL', message: '系统繁忙，请稍后重试' };
    }
  }

  async refund(headers: IncomingHttpHeaders, rawBody: Buffer | undefined, clientIp?: string): Promise<NotifyAnswer> {
    const pre = await this.verifyAndDecrypt('refund', headers, rawBody, clientIp);
    if ('status' in pre) return pre;
    const { envelope, resource, row } = pre;
    if (!envelope.event_type.startsWith('REFUND.')) {
      await this.store({ ...row, outcome: 'wrong_endpoint' });
      return { status: 400, code: 'FAIL', message: `${envelope.event_type} is not a refund notification` };
    }
    return this.applyRefund(resource as RefundNotificationResource, envelope.event_type, row);
  }

  /**
   * An APIv2 refund notification (POST XML to /notify/wechatpay/v2/refund): parsed without any DTD,
   * return_code and appid/mch_id checked, `req_info` decrypted with the APIv2 key (AES-256-ECB, key =
   * lowercase hex MD5 of it: decrypting is the proof, v2 refund notifications carry no sign), then
   * applied through the same refund step as an APIv3 one. Refusals are stored unverified, as for v3.
   */
  async refundV2(rawBody: Buffer | undefined, clientIp?: string): Promise<NotifyAnswer> {
    const received = await this.receiveV2('refund', rawBody, clientIp, (raw, keys) => parseV2RefundNotification(raw, keys).refund, 'undecryptable');
    if ('status' in received) return received;
    const { parsed: refund, row } = received;
    row.eventType = `REFUND.${refund.refund_status}`;
    return this.applyRefund(refund, row.eventType, row);
  }

  /** The apply step every refund notification shares, whichever API version delivered it. */
  private async applyRefund(refund: RefundNotificationResource, eventType: string, row: EventRow): Promise<NotifyAnswer> {
    row.outTradeNo = typeof refund.out_trade_no === 'string' ? refund.out_trade_no.slice(0, 32) : null;
    row.outRefundNo = typeof refund.out_refund_no === 'string' ? refund.out_refund_no.slice(0, 64) : null;
    try {
      const outcome = this.refundSink ? await this.refundSink.handleRefundNotification(refund, eventType) : 'no_refund_module';
      await this.events.insert({ ...row, outcome: `refund:${outcome}`.slice(0, 32) });
      this.metrics?.notification('refund', `refund:${outcome}`);
      return { status: 204 };
    } catch (error) {
      this.metrics?.notification('refund', 'error');
      this.logger.error(`refund notification ${row.outRefundNo} not applied (WeChat will retry): ${(error as Error).message}`);
      return { status: 500, code: 'FAIL', message: '系统繁忙，请稍后重试' };
    }
  }

  private async verifyAndDecrypt(
    kind: 'transaction' | 'refund',
    headers: IncomingHttpHeaders,
    rawBody: Buffer | undefined,
    clientIp?: string,
  ): Promise<NotifyAnswer | { envelope: NotificationEnvelope; resource: unknown; row: EventRow }> {
    const now = this.clock.now();
    const limited = this.rejectLimited(clientIp);
    if (limited) {
      this.metrics?.notification(kind, 'rate_limited');
      return limited;
    }
    const raw = rawBody ?? Buffer.alloc(0);
    const row = receivedRow(kind, raw, header(headers, 'wechatpay-serial')?.slice(0, 64) ?? null, now);
    if (raw.length === 0) {
      this.countRejection(clientIp);
      await this.store(unverifiedRow(row, headers, 'rejected:empty_body'));
      return { status: 400, code: 'FAIL', message: 'empty body' };
    }
    try {
      await this.parser.verify(headers, raw);
    } catch (error) {
      if (error instanceof WechatPaySignatureError) {
        this.countRejection(clientIp);
        await this.store(unverifiedRow(row, headers, `rejected:${error.reason}`));
        this.logger.warn(`${kind} notification rejected: ${error.message}`);
        return { status: 401, code: 'FAIL', message: `签名验证失败（${error.reason}）` };
      }
      this.metrics?.notification(kind, 'error');
      this.logger.error(`could not verify a ${kind} notification: ${(error as Error).message}`);
      return { status: 500, code: 'FAIL', message: '系统繁忙，请稍后重试' };
    }
    row.verified = 1;
    let envelope: NotificationEnvelope;
    try {
      envelope = this.parser.envelope(raw);
    } catch {
      await this.store({ ...row, outcome: 'malformed' });
      return { status: 400, code: 'FAIL', message: 'notification body is not a WeChat Pay notification' };
    }
    row.notificationId = typeof envelope.id === 'string' ? envelope.id.slice(0, 64) : null;
    row.eventType = envelope.event_type.slice(0, 32);
    try {
      const parsed = this.parser.decrypt(envelope);
      return { envelope, resource: parsed.resource, row };
    } catch (error) {
      if (error instanceof WechatPayDecryptError) {
        await this.store({ ...row, outcome: 'decrypt_failed' });
        this.logger.warn(`${kind} notification ${row.notificationId} could not be decrypted: ${error.message}`);
        return { status: 401, code: 'FAIL', message: '解密失败' };
      }
      throw error;
    }
  }

  /** 429 when this client IP already had NOTIFY_REJECT_RATE_LIMIT rejections in the current minute. */
  private rejectLimited(clientIp: string | undefined): NotifyAnswer | undefined {
    const nowMs = this.clock.nowMs();
    if (nowMs - this.windowStart >= 60_000 || nowMs < this.windowStart) {
      this.windowStart = nowMs;
      this.rejections = new Map();
    }
    const key = clientIp ?? 'unknown';
    if ((this.rejections.get(key) ?? 0) < this.config.orders.notifyRejectRatePerMinute) return undefined;
    const retryAfterS = Math.max(1, Math.ceil((this.windowStart + 60_000 - nowMs) / 1000));
    return { status: 429, code: 'FAIL', message: `too many rejected notifications from this address; retry after ${retryAfterS} s`, retryAfterS };
  }

  private countRejection(clientIp: string | undefined): void {
    const key = clientIp ?? 'unknown';
    this.rejections.set(key, (this.rejections.get(key) ?? 0) + 1);
  }

  /** Deletes rejected (unverified) rows older than `olderThanMs`, `batch` rows per statement; returns how many. */
  async purgeRejected(olderThanMs: number, batch = 500): Promise<number> {
    const cutoff = new Date(this.clock.nowMs() - olderThanMs);
    let total = 0;
    for (;;) {
      const ids = await this.events.find({ select: ['id'], where: { verified: 0, receivedAt: LessThan(cutoff) }, order: { id: 'ASC' }, take: batch });
      if (ids.length === 0) return total;
      await this.events.delete({ id: In(ids.map((e) => e.id)), verified: 0 });
      total += ids.length;
      if (ids.length < batch) return total;
    }
  }

  /**
   * Records a notification we did not apply (verified says whether its signature held; nothing in it
   * is acted on), before the answer. A failure to record it is logged and does not change the answer:
   * a forgery is refused with 401 whether or not the database is up.
   */
  private async store(row: EventRow): Promise<void> {
    this.metrics?.notification(row.kind as 'transaction' | 'refund', row.outcome);
    try {
      await this.events.insert(row);
    } catch (error) {
      this.logger.error(`could not record a ${row.outcome} ${row.kind} notification (sha256 ${row.rawSha256}): ${(error as Error).message}`);
    }
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
      .where({ receivedAt: MoreThan(since), rawEncoding: Not('headers') })
      .groupBy('e.outcome')
      .getRawMany();
    // Unsigned/forged posts (failed verification) are anybody's junk: counted apart, not as failed notifications.
    const rejectedUnverifiedLast24h = await this.events.count({ where: { receivedAt: MoreThan(since), rawEncoding: 'headers' } });
    // WeChat redelivers until acknowledged: several events with one notification id are its retries.
    const retries: Array<{ n: number | string }> = await this.events
      .createQueryBuilder('e')
      .select('COUNT(*) - COUNT(DISTINCT e.notification_id)', 'n')
      .where({ receivedAt: MoreThan(since) })
      .andWhere('e.notification_id IS NOT NULL')
      .getRawMany();
    const paymentNotificationsLast24h = await this.events.count({ where: { kind: 'transaction', verified: 1, receivedAt: MoreThan(since) } });
    const paymentsAppliedLast24h = await this.applier.appliedBySource(since);
    const appliedByQueryLast24h = Object.entries(paymentsAppliedLast24h)
      .filter(([source]) => source !== 'notification')
      .reduce((sum, [, n]) => sum + (n ?? 0), 0);
    return {
      last24h: Object.fromEntries(counts.map((c) => [c.outcome, Number(c.n)])),
      paymentNotificationsLast24h,
      paymentsAppliedLast24h,
      appliedByQueryLast24h,
      // the notify_url payments are prepaid with (the adapter's own for APIv2, else the APIv3 route)
      warnings: notificationWarnings(appliedByQueryLast24h, paymentNotificationsLast24h, this.gateway?.paymentNotifyUrl ?? `${this.config.publicBaseUrl}/notify/wechatpay/transaction`),
      rejectedUnverifiedLast24h,
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
