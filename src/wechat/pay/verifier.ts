import { KeyObject } from 'node:crypto';
import { AUTH_SCHEME, MAX_CLOCK_SKEW_SECONDS, PUBLIC_KEY_ID_PREFIX, SIGNATURE_PROBE_PREFIX } from './constants';
import { WechatPaySignatureError } from './errors';
import { responseMessageParts } from './formatter';
import { loadPublicKey, rsaVerifyParts } from './rsa';

/** Finds the key for a Wechatpay-Serial; undefined when the serial is unknown even after refreshing. */
export interface VerificationKeySource {
  keyFor(serial: string): KeyObject | undefined | Promise<KeyObject | undefined>;
}

/** Public-key mode: one WeChat Pay public key, selected by its id (`PUB_KEY_ID_…`). */
export class PublicKeySource implements VerificationKeySource {
  readonly key: KeyObject;

  constructor(
    readonly keyId: string,
    key: KeyObject | string,
  ) {
    this.key = typeof key === 'string' ? loadPublicKey(key) : key;
  }

  keyFor(serial: string): KeyObject | undefined {
    return serial === this.keyId ? this.key : undefined;
  }
}

/**
 * The public key when the serial is its id, else the platform certificates (during a migration a
 * merchant may receive either). Like wechatpay-go's combined verifier. A `PUB_KEY_ID_…` serial other
 * than the configured id is refused here: it can never be a certificate, so it never costs a lookup.
 */
export class CombinedKeySource implements VerificationKeySource {
  constructor(
    private readonly publicKey: PublicKeySource | undefined,
    private readonly certificates: VerificationKeySource | undefined,
  ) {}

  keyFor(serial: string): KeyObject | undefined | Promise<KeyObject | undefined> {
    if (this.publicKey && serial === this.publicKey.keyId) return this.publicKey.key;
    if (serial.startsWith(PUBLIC_KEY_ID_PREFIX)) return undefined;
    return this.certificates?.keyFor(serial);
  }
}

export interface SignedHeaders {
  timestamp?: string;
  nonce?: string;
  signature?: string;
  serial?: string;
  /** Wechatpay-Signature-Type; absent means RSA (WECHATPAY2-SHA256-RSA2048), anything else is refused. */
  signatureType?: string;
}

/**
 * Checks the Wechatpay-* headers of a response or notification against the raw body bytes.
 * Throws WechatPaySignatureError with the reason; returns the serial that verified.
 */
export async function verifySigned(
  headers: SignedHeaders,
  rawBody: Buffer | string,
  keys: VerificationKeySource,
  nowSeconds: number,
): Promise<string> {
  const { timestamp, nonce, signature, serial, signatureType } = headers;
  if (signatureType !== undefined && signatureType !== AUTH_SCHEME) {
    throw new WechatPaySignatureError('unsupported_signature_type', `Wechatpay-Signature-Type ${signatureType} is not supported (only ${AUTH_SCHEME})`);
  }
  if (!timestamp || !nonce || !signature || !serial) {
    const missing = [
      !timestamp && 'Wechatpay-Timestamp',
      !nonce && 'Wechatpay-Nonce',
      !signature && 'Wechatpay-Signature',
      !serial && 'Wechatpay-Serial',
    ].filter(Boolean);
    throw new WechatPaySignatureError('missing_header', `missing ${missing.join(', ')}`);
  }
  if (!/^\d{1,12}$/.test(timestamp)) {
    throw new WechatPaySignatureError('bad_timestamp', 'Wechatpay-Timestamp is not a Unix time in seconds');
  }
  if (Math.abs(nowSeconds - Number(timestamp)) >= MAX_CLOCK_SKEW_SECONDS) {
    throw new WechatPaySignatureError('stale_timestamp', `Wechatpay-Timestamp is ${nowSeconds - Number(timestamp)} s away from now`);
  }
  if (signature.startsWith(SIGNATURE_PROBE_PREFIX)) {
    throw new WechatPaySignatureError('signature_probe', 'signature probe (WECHATPAY/SIGNTEST/): answered as a failure, as WeChat expects');
  }
  const key = await keys.keyFor(serial);
  if (!key) {
    // Said in plain words for the operator: a merchant on public-key mode whose app is configured
    // without the key (or with another one) sees every answer fail here.
    const hint = serial.startsWith(PUBLIC_KEY_ID_PREFIX)
      ? ': signed with a WeChat Pay public key that is not the configured one (none configured: the merchant has switched to public-key mode; set WECHATPAY_PUBLIC_KEY_ID and WECHATPAY_PUBLIC_KEY_PATH)'
      : '';
    throw new WechatPaySignatureError('unknown_serial', `unknown Wechatpay-Serial ${serial}${hint}`, serial);
  }
  if (!rsaVerifyParts(responseMessageParts(timestamp, nonce, rawBody), signature, key)) {
    throw new WechatPaySignatureError('bad_signature', 'Wechatpay-Signature does not match the body', serial);
  }
  return serial;
}
