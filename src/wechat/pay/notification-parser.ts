import type { IncomingHttpHeaders } from 'node:http';
import { neutralTransaction } from './partner-gateway';
import { BadRequestError } from '../../common/errors/app-error';
import { AesGcmCipher } from './cipher';
import { WechatPayDecryptError } from './errors';
import type { NotificationEnvelope, RefundNotificationResource, Transaction } from './types';
import { signedHeadersOf } from './wechat-pay.http';
import { VerificationKeySource, verifySigned } from './verifier';

export type ParsedNotification =
  | { kind: 'transaction'; envelope: NotificationEnvelope; resource: Transaction }
  | { kind: 'refund'; envelope: NotificationEnvelope; resource: RefundNotificationResource };

/**
 * WeChat Pay notifications: verify the signature over the RAW body bytes exactly as received (never a
 * re-serialised JSON), then decrypt the resource. The steps are separate so a caller can store the
 * verified raw event before decrypting it.
 */
export class WechatPayNotificationParser {
  constructor(
    private readonly keys: VerificationKeySource,
    private readonly cipher: AesGcmCipher,
    private readonly nowSeconds: () => number,
  ) {}

  /** Throws WechatPaySignatureError (with a reason) unless the headers sign this exact body. */
  async verify(headers: IncomingHttpHeaders, rawBody: Buffer): Promise<void> {
    await verifySigned(signedHeadersOf(headers), rawBody, this.keys, this.nowSeconds());
  }

  envelope(rawBody: Buffer): NotificationEnvelope {
    let parsed: NotificationEnvelope;
    try {
      parsed = JSON.parse(rawBody.toString('utf8')) as NotificationEnvelope;
    } catch {
      throw new BadRequestError('NOTIFICATION_MALFORMED', 'notification body is not JSON');
    }
    if (!parsed || typeof parsed.event_type !== 'string' || typeof parsed.resource !== 'object' || !parsed.resource) {
      throw new BadRequestError('NOTIFICATION_MALFORMED', 'notification lacks event_type or resource');
    }
    return parsed;
  }

  decrypt(envelope: NotificationEnvelope): ParsedNotification {
    const resource = this.cipher.decryptJson<Record<string, unknown>>(envelope.resource);
    if (envelope.event_type.startsWith('TRANSACTION.')) {
      // A partner (服务商) notification's sp_*/sub_* fields become the neutral shape (sub_mchid kept).
      return { kind: 'transaction', envelope, resource: neutralTransaction(resource as unknown as Transaction) };
    }
    if (envelope.event_type.startsWith('REFUND.')) {
      return { kind: 'refund', envelope, resource: resource as unknown as RefundNotificationResource };
    }
    throw new WechatPayDecryptError(`unsupported event_type ${envelope.event_type}`);
  }

  async parse(headers: IncomingHttpHeaders, rawBody: Buffer): Promise<ParsedNotification> {
    await this.verify(headers, rawBody);
    return this.decrypt(this.envelope(rawBody));
  }
}
