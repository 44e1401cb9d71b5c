import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import http from 'node:http';
import https from 'node:https';
import { randomUUID } from 'node:crypto';
import { beijingTime, encryptForMerchant, SandboxSigningKey } from './sandbox-crypto';
import { SandboxClock } from './sandbox-clock';
import { sandboxApiV2Key } from './keystore';
import { V2_RETRY_SCHEDULE_MS, SandboxV2SignType, sandboxNonce, sandboxParseV2, sandboxReqInfo, sandboxV2Sign, sandboxV2TimeOf, sandboxXml } from './sandbox-v2-wire';
import { SandboxSettings } from './sandbox.settings';

/** WeChat's retry schedule after a failed delivery (15 retries, ≈ 24 h 4 min), before scaling. */
export const RETRY_SCHEDULE_MS = [
  15_000, 15_000, 30_000, 180_000, 600_000, 1_200_000, 1_800_000, 1_800_000, 1_800_000, 3_600_000, 10_800_000,
  10_800_000, 10_800_000, 21_600_000, 21_600_000,
];

export type Tamper = 'signature' | 'timestamp' | 'ciphertext' | 'probe';

export interface NotificationAttempt {
  notificationId: string;
  target: string;
  eventType: string;
  attempt: number;
  kind: 'scheduled' | 'manual';
  tamper?: Tamper;
  /** The Wechatpay-Serial it was signed with (platform certificate or PUB_KEY_ID_…); absent when dropped unsent. */
  serial?: string;
  at: string;
  status?: number;
  latencyMs: number;
  ok: boolean;
  error?: string;
}

interface Notification {
  id: string;
  target: string;
  url: string;
  eventType: string;
  summary: string;
  resourceType: 'transaction' | 'refund';
  plaintext: string;
  createdAt: number;
  /**
   * APIv2: sent as signed XML (refunds: req_info), acknowledged by return_code SUCCESS, v2 retry
   * schedule; `appid` of a refund notification: the refunded order's (the mini-program's for its orders).
   */
  v2?: { signType: SandboxV2SignType; appid?: string };
  /** Scheduled delivery finished (acknowledged, dropped or retries exhausted). */
  done: boolean;
  timer?: NodeJS.Timeout;
}

/**
 * Sends payment and refund results to the merchant's notify_url: JSON envelope, AES-256-GCM resource,
 * Wechatpay-* signature. Anything but 200/204 within the deadline is a failure, retried on WeChat's
 * schedule divided by SANDBOX_TIME_SCALE. Every attempt is recorded for the control API.
 */
@Injectable()
export class SandboxNotifier implements OnModuleDestroy {
  private readonly logger = new Logger(SandboxNotifier.name);
  private readonly notifications = new Map<string, Notification[]>();
  private readonly attempts: NotificationAttempt[] = [];
  private readonly agentHttp = new http.Agent({ keepAlive: true, maxSockets: 256, timeout: 30_000 });
  private readonly agentHttps = new https.Agent({ keepAlive: true, maxSockets: 256, timeout: 30_000 });
  /** When set, results are recorded but never sent: only active queries can find them. */
  dropping = false;
  private destroyed = false;

  constructor(
    private readonly settings: SandboxSettings,
    private readonly clock: SandboxClock,
  ) {}

  /** Queues a notification and starts its scheduled delivery. */
  enqueue(input: {
    target: string;
    url: string;
    eventType: string;
    summary: string;
    resourceType: 'transaction' | 'refund';
    resource: object;
    v2?: { signType: SandboxV2SignType; appid?: string };
  }): void {
    const notification: Notification = {
      id: randomUUID(),
      target: input.target,
      url: input.url,
      eventType: input.eventType,
      summary: input.summary,
      resourceType: input.resourceType,
      plaintext: JSON.stringify(input.resource),
      createdAt: this.clock.now(),
      done: false,
      ...(input.v2 ? { v2: input.v2 } : {}),
    };
    const list = this.notifications.get(input.target) ?? [];
    list.push(notification);
    this.notifications.set(input.target, list);
    if (this.dropping) {
      notification.done = true;
      this.record(notification, 0, 'scheduled', undefined, { ok: false, latencyMs: 0, error: 'dropped by the sandbox (control API)' });
      return;
    }
    this.schedule(notification, 0, 0);
  }

  private schedule(notification: Notification, attempt: number, delayMs: number): void {
    if (this.destroyed) return;
    notification.timer = setTimeout(() => void this.deliverScheduled(notification, attempt), delayMs);
    notification.timer.unref();
  }

  private async deliverScheduled(notification: Notification, attempt: number): Promise<void> {
    notification.timer = undefined;
    if (this.destroyed || notification.done) return;
    const result = await this.deliver(notification, attempt, 'scheduled');
    if (result.ok) {
      notification.done = true;
      return;
    }
    const schedule = notification.v2 ? V2_RETRY_SCHEDULE_MS : RETRY_SCHEDULE_MS;
    if (attempt >= schedule.length) {
      notification.done = true;
      this.logger.warn(`notification ${notification.id} for ${notification.target} given up after ${attempt + 1} attempts`);
      return;
    }
    this.schedule(notification, attempt + 1, this.settings.scaled(schedule[attempt]));
  }

  /** Delivers the latest notification of a target `times` times at once (optionally tampered). */
  async redeliver(target: string, times: number, tamper?: Tamper): Promise<NotificationAttempt[]> {
    const latest = this.notifications.get(target)?.at(-1);
    if (!latest) return [];
    const results = await Promise.all(Array.from({ length: times }, () => this.deliver(latest, -1, 'manual', tamper)));
    return results;
  }

  list(target?: string): NotificationAttempt[] {
    return target ? this.attempts.filter((a) => a.target === target) : [...this.attempts];
  }

  hasNotification(target: string): boolean {
    return (this.notifications.get(target)?.length ?? 0) > 0;
  }

  reset(): void {
    for (const list of this.notifications.values()) for (const n of list) if (n.timer) clearTimeout(n.timer);
    this.notifications.clear();
    this.attempts.length = 0;
    this.dropping = false;
  }

  onModuleDestroy(): void {
    this.destroyed = true;
    for (const list of this.notifications.values()) for (const n of list) if (n.timer) clearTimeout(n.timer);
    this.agentHttp.destroy();
    this.agentHttps.destroy();
  }

  private build(notification: Notification, tamper?: Tamper): { body: Buffer; headers: Record<string, string> } {
    if (notification.v2) return this.buildV2(notification, notification.v2.signType, tamper);
    const resource = encryptForMerchant(
      this.settings.keystore.apiv3Key,
      notification.plaintext,
      notification.resourceType,
      notification.resourceType,
    );
    if (tamper === 'ciphertext') {
      const data = Buffer.from(resource.ciphertext, 'base64');
      data[Math.floor(data.length / 2)] ^= 0x5a;
      resource.ciphertext = data.toString('base64');
    }
    const body = Buffer.from(
      JSON.stringify({
        id: notification.id,
        create_time: beijingTime(notification.createdAt),
        resource_type: 'encrypt-resource',
        event_type: notification.eventType,
        summary: notification.summary,
        resource,
      }),
    );
    const timestamp = tamper === 'timestamp' ? this.clock.signatureSeconds() - 3600 : this.clock.signatureSeconds();
    const headers = this.key().headers(body, timestamp);
    if (tamper === 'signature') {
      const sig = Buffer.from(headers['Wechatpay-Signature'], 'base64');
      sig[10] ^= 0x01;
      headers['Wechatpay-Signature'] = sig.toString('base64');
    }
    if (tamper === 'probe') headers['Wechatpay-Signature'] = `WECHATPAY/SIGNTEST/${headers['Wechatpay-Signature']}`;
    return { body, headers: { ...headers, 'Content-Type': 'application/json', 'User-Agent': 'Mozilla/4.0' } };
  }

  /**
   * APIv2: the payment result as signed XML; the refund result as an unsigned envelope whose req_info
   * is the result encrypted with the APIv2 key. `signature`/`ciphertext` tampering breaks those.
   */
  private buildV2(notification: Notification, signType: SandboxV2SignType, tamper?: Tamper): { body: Buffer; headers: Record<string, string> } {
    const key = sandboxApiV2Key(this.settings.keystore);
    const r = JSON.parse(notification.plaintext) as {
      appid?: string;
      mchid: string;
      /** A provider's trade (the partner view): sp_* and sub_* instead of appid/mchid, payer sp_openid or sub_openid. */
      sp_appid?: string;
      sp_mchid?: string;
      sub_appid?: string;
      sub_mchid?: string;
      out_trade_no: string;
      transaction_id: string;
      trade_type?: string;
      bank_type?: string;
      attach?: string;
      success_time?: string;
      payer?: { openid?: string; sp_openid?: string; sub_openid?: string };
      refund_id?: string;
      out_refund_no?: string;
      refund_status?: string;
      user_received_account?: string;
      amount?: { total?: number; payer_total?: number; refund?: number; payer_refund?: number; currency?: string };
    };
    let xml: string;
    // APIv2 names a provider's trade as appid/mch_id = the provider's, plus sub_appid / sub_mch_id.
    const merchant = {
      appid: r.sp_appid ?? r.appid ?? this.settings.keystore.appid,
      mch_id: r.sp_mchid ?? r.mchid,
      sub_appid: r.sub_appid,
      sub_mch_id: r.sub_mchid,
    };
    if (notification.resourceType === 'transaction') {
      const fields: Record<string, string | undefined> = {
        return_code: 'SUCCESS',
        return_msg: 'OK',
        ...merchant,
        nonce_str: sandboxNonce(),
        ...(signType === 'MD5' ? {} : { sign_type: signType }),
        result_code: 'SUCCESS',
        ...(r.payer?.sub_openid ? { sub_openid: r.payer.sub_openid, sub_is_subscribe: 'N' } : { openid: r.payer?.openid ?? r.payer?.sp_openid, is_subscribe: 'N' }),
        trade_type: r.trade_type ?? 'JSAPI',
        bank_type: r.bank_type ?? 'OTHERS',
        total_fee: String(r.amount?.total),
        fee_type: r.amount?.currency ?? 'CNY',
        cash_fee: String(r.amount?.payer_total ?? r.amount?.total),
        transaction_id: r.transaction_id,
        out_trade_no: r.out_trade_no,
        attach: r.attach || undefined,
        time_end: sandboxV2TimeOf(r.success_time),
      };
      let sign = sandboxV2Sign(fields, key, signType);
      if (tamper === 'signature') sign = (sign[0] === 'A' ? 'B' : 'A') + sign.slice(1);
      xml = sandboxXml({ ...fields, sign });
    } else {
      const root = sandboxXml(
        {
          out_refund_no: r.out_refund_no,
          out_trade_no: r.out_trade_no,
          refund_account: 'REFUND_SOURCE_UNSETTLED_FUNDS',
          refund_fee: String(r.amount?.refund),
          refund_id: r.refund_id,
          refund_recv_accout: r.user_received_account,
          refund_request_source: 'API',
          refund_status: r.refund_status === 'CLOSED' ? 'REFUNDCLOSE' : r.refund_status === 'ABNORMAL' ? 'CHANGE' : r.refund_status,
          settlement_refund_fee: String(r.amount?.payer_refund ?? r.amount?.refund),
          settlement_total_fee: String(r.amount?.payer_total ?? r.amount?.total),
          success_time: sandboxV2TimeOf(r.success_time, true),
          total_fee: String(r.amount?.total),
          transaction_id: r.transaction_id,
        },
        'root',
      );
      let reqInfo = sandboxReqInfo(root, key);
      if (tamper === 'ciphertext') reqInfo = (reqInfo[0] === 'A' ? 'B' : 'A') + reqInfo.slice(1);
      // The refunded order's appid (the mini-program's for its orders); a provider's trade names its own
      // appid, and the one the payer was under as sub_appid.
      const orderAppid = notification.v2?.appid;
      const names = r.sp_mchid
        ? { ...merchant, appid: this.settings.keystore.appid, sub_appid: orderAppid && orderAppid !== this.settings.keystore.appid ? orderAppid : undefined }
        : { ...merchant, appid: orderAppid ?? this.settings.keystore.appid };
      xml = sandboxXml({ return_code: 'SUCCESS', ...names, nonce_str: sandboxNonce(), req_info: reqInfo });
    }
    return { body: Buffer.from(xml, 'utf8'), headers: { 'Content-Type': 'text/xml', 'User-Agent': 'Mozilla/4.0' } };
  }

  private key(): SandboxSigningKey {
    return this.settings.notificationKey();
  }

  private deliver(notification: Notification, attempt: number, kind: 'scheduled' | 'manual', tamper?: Tamper): Promise<NotificationAttempt> {
    const { body, headers } = this.build(notification, tamper);
    const started = Date.now();
    return new Promise((resolve) => {
      let settled = false;
      const finish = (outcome: { ok: boolean; status?: number; error?: string }) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(this.record(notification, attempt, kind, tamper, { ...outcome, serial: headers['Wechatpay-Serial'], latencyMs: Date.now() - started }));
      };
      let url: URL;
      try {
        url = new URL(notification.url);
      } catch {
        finish({ ok: false, error: 'invalid notify_url' });
        return;
      }
      const lib = url.protocol === 'https:' ? https : http;
      const req = lib.request(url, {
        method: 'POST',
        headers: { ...headers, 'Content-Length': String(body.length) },
        agent: url.protocol === 'https:' ? this.agentHttps : this.agentHttp,
      });
      const timer = setTimeout(() => {
        req.destroy();
        finish({ ok: false, error: `no answer within ${this.settings.notifyTimeoutMs} ms` });
      }, this.settings.notifyTimeoutMs);
      req.on('response', (res) => {
        if (notification.v2) {
          // APIv2 is acknowledged by the answer's return_code SUCCESS, not by the status alone.
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.length < 64 && chunks.push(c));
          res.on('end', () => {
            const parsed = sandboxParseV2(Buffer.concat(chunks));
            const ok = res.statusCode === 200 && 'fields' in parsed && parsed.fields.return_code === 'SUCCESS';
            finish({ ok, status: res.statusCode, ...(ok ? {} : { error: 'answer is not return_code SUCCESS' }) });
          });
          res.on('error', (error) => finish({ ok: false, status: res.statusCode, error: error.message }));
          return;
        }
        res.resume();
        res.on('end', () => finish({ ok: res.statusCode === 200 || res.statusCode === 204, status: res.statusCode }));
        res.on('error', (error) => finish({ ok: false, status: res.statusCode, error: error.message }));
      });
      req.on('error', (error) => finish({ ok: false, error: error.message }));
      req.end(body);
    });
  }

  private record(
    notification: Notification,
    attempt: number,
    kind: 'scheduled' | 'manual',
    tamper: Tamper | undefined,
    outcome: { ok: boolean; status?: number; error?: string; serial?: string; latencyMs: number },
  ): NotificationAttempt {
    const entry: NotificationAttempt = {
      notificationId: notification.id,
      target: notification.target,
      eventType: notification.eventType,
      attempt,
      kind,
      tamper,
      at: new Date(this.clock.now()).toISOString(),
      ...outcome,
    };
    this.attempts.push(entry);
    if (this.attempts.length > 10_000) this.attempts.splice(0, this.attempts.length - 10_000);
    return entry;
  }
}
