import { createCipheriv, createPrivateKey, createPublicKey, KeyObject, randomBytes, sign, verify } from 'node:crypto';

/*
 * WeChat's side of the APIv3 cryptography, written independently of src/wechat (the merchant side)
 * from ../shared/wechatpay-protocol.md, so that one shared bug cannot make both sides agree on
 * something real WeChat would reject.
 */

export interface ParsedAuthorization {
  mchid?: string;
  nonce_str?: string;
  signature?: string;
  timestamp?: string;
  serial_no?: string;
}

/** `WECHATPAY2-SHA256-RSA2048 k="v",k="v",…` with the pairs in any order. */
export function parseAuthorization(header: string | undefined): ParsedAuthorization | undefined {
  if (!header) return undefined;
  const space = header.indexOf(' ');
  if (space < 0 || header.slice(0, space) !== 'WECHATPAY2-SHA256-RSA2048') return undefined;
  const out: Record<string, string> = {};
  for (const piece of header.slice(space + 1).split(',')) {
    const match = /^\s*([a-z_]+)="([^"]*)"\s*$/.exec(piece);
    if (!match) return undefined;
    out[match[1]] = match[2];
  }
  return out as ParsedAuthorization;
}

export function requestSignMessage(method: string, target: string, timestamp: string, nonce: string, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${method}\n${target}\n${timestamp}\n${nonce}\n`, 'utf8'), body, Buffer.from('\n')]);
}

export function verifyBase64Signature(message: Buffer, signatureBase64: string, key: KeyObject): boolean {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(signatureBase64)) return false;
  try {
    return verify('sha256', message, key, Buffer.from(signatureBase64, 'base64'));
  } catch {
    return false;
  }
}

export class SandboxSigningKey {
  readonly key: KeyObject;

  constructor(
    readonly serial: string,
    privateKeyPem: string,
  ) {
    this.key = createPrivateKey(privateKeyPem);
  }

  /** Wechatpay-* headers for a response or notification body (raw bytes). */
  headers(body: Buffer, timestamp: number, nonce = randomBytes(16).toString('hex')): Record<string, string> {
    const message = Buffer.concat([Buffer.from(`${timestamp}\n${nonce}\n`), body, Buffer.from('\n')]);
    return {
      'Wechatpay-Nonce': nonce,
      'Wechatpay-Signature': sign('sha256', message, this.key).toString('base64'),
      'Wechatpay-Timestamp': String(timestamp),
      'Wechatpay-Serial': this.serial,
      'Wechatpay-Signature-Type': 'WECHATPAY2-SHA256-RSA2048',
    };
  }

  signBase64(message: Buffer): string {
    return sign('sha256', message, this.key).toString('base64');
  }
}

export function publicKeyOf(pem: string): KeyObject {
  return createPublicKey(pem);
}

/** AEAD_AES_256_GCM as WeChat encrypts resources: key = the APIv3 key's bytes, 12-char nonce. */
export function encryptForMerchant(apiv3Key: string, plaintext: string, associatedData: string, originalType?: string) {
  const nonce = randomBytes(6).toString('hex');
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(apiv3Key, 'utf8'), Buffer.from(nonce, 'utf8'));
  cipher.setAAD(Buffer.from(associatedData, 'utf8'));
  const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return {
    algorithm: 'AEAD_AES_256_GCM',
    ciphertext: data.toString('base64'),
    nonce,
    associated_data: associatedData,
    ...(originalType ? { original_type: originalType } : {}),
  };
}

/** RFC 3339 in Beijing time, as WeChat writes every date: 2026-11-24T08:00:00+08:00. */
export function beijingTime(ms: number): string {
  const d = new Date(ms + 8 * 3600_000);
  return d.toISOString().replace(/\.\d{3}Z$/, '+08:00');
}

/** 'YYYY-MM-DD HH:mm:ss' in Beijing time (bill files). */
export function beijingDateTime(ms: number): string {
  return new Date(ms + 8 * 3600_000).toISOString().slice(0, 19).replace('T', ' ');
}

export function beijingDate(ms: number): string {
  return new Date(ms + 8 * 3600_000).toISOString().slice(0, 10);
}
