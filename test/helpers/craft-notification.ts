import { createCipheriv, createPrivateKey, randomBytes, randomUUID, sign } from 'node:crypto';
import type { SandboxKeystore } from '../../src/sandbox/keystore';

/**
 * Signs any bytes as WeChat signs a notification (Wechatpay-* headers over `timestamp\nnonce\nbody\n`
 * with the sandbox's WeChat Pay key), so tests can also send exact bodies: not UTF-8, not JSON,
 * large, with another Content-Type, with a stale timestamp. Written with node:crypto, independent of
 * src/wechat.
 */
export function signBody(
  keystore: SandboxKeystore,
  body: Buffer,
  options: { timestamp?: number; contentType?: string } = {},
): { body: Buffer; headers: Record<string, string> } {
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const nonce = randomBytes(16).toString('hex');
  const message = Buffer.concat([Buffer.from(`${timestamp}\n${nonce}\n`), body, Buffer.from('\n')]);
  return {
    body,
    headers: {
      'Content-Type': options.contentType ?? 'application/json',
      'Wechatpay-Timestamp': String(timestamp),
      'Wechatpay-Nonce': nonce,
      'Wechatpay-Serial': keystore.publicKey.id,
      'Wechatpay-Signature': sign('sha256', message, createPrivateKey(keystore.publicKey.privateKeyPem)).toString('base64'),
      'Wechatpay-Signature-Type': 'WECHATPAY2-SHA256-RSA2048',
    },
  };
}

/**
 * The JSON envelope of a notification around `resource`, encrypted with the merchant's APIv3 key;
 * `extra` top-level fields override the defaults (id, event_type, …).
 */
export function envelopeJson(
  keystore: SandboxKeystore,
  resource: Record<string, unknown>,
  extra: Record<string, unknown> = {},
  associatedData = 'transaction',
): string {
  const nonce = randomBytes(6).toString('hex');
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(keystore.apiv3Key), Buffer.from(nonce));
  cipher.setAAD(Buffer.from(associatedData));
  const ciphertext = Buffer.concat([cipher.update(JSON.stringify(resource)), cipher.final(), cipher.getAuthTag()]).toString('base64');
  return JSON.stringify({
    id: randomUUID(),
    create_time: '2026-11-24T10:00:00+08:00',
    resource_type: 'encrypt-resource',
    event_type: 'TRANSACTION.SUCCESS',
    summary: '支付成功',
    ...extra,
    resource: { algorithm: 'AEAD_AES_256_GCM', ciphertext, nonce, associated_data: associatedData, original_type: associatedData },
  });
}

/**
 * A notification exactly as WeChat would send it, signed with the sandbox's WeChat Pay key and
 * encrypted with the merchant's APIv3 key — with any resource a test needs (wrong appid, unknown
 * order, …).
 */
export function craftNotification(
  keystore: SandboxKeystore,
  resource: Record<string, unknown>,
  options: { eventType?: string; associatedData?: string; timestamp?: number } = {},
): { body: Buffer; headers: Record<string, string> } {
  const envelope = envelopeJson(keystore, resource, { event_type: options.eventType ?? 'TRANSACTION.SUCCESS' }, options.associatedData);
  return signBody(keystore, Buffer.from(envelope), { timestamp: options.timestamp });
}

export function successResource(keystore: SandboxKeystore, outTradeNo: string, total: number, overrides: Record<string, unknown> = {}) {
  return {
    appid: keystore.appid,
    mchid: keystore.mchid,
    out_trade_no: outTradeNo,
    transaction_id: `4200000${Math.floor(Math.random() * 1e12)}`.padEnd(28, '0'),
    trade_type: 'JSAPI',
    trade_state: 'SUCCESS',
    trade_state_desc: '支付成功',
    bank_type: 'OTHERS',
    success_time: '2026-11-24T10:00:00+08:00',
    payer: { openid: 'o_crafted' },
    amount: { total, payer_total: total, currency: 'CNY', payer_currency: 'CNY' },
    ...overrides,
  };
}
