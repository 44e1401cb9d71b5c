import { KeyObject, createHash, createHmac, createSecretKey, timingSafeEqual } from 'node:crypto';

export type V2SignType = 'MD5' | 'HMAC-SHA256';
export const V2_SIGN_TYPES: readonly V2SignType[] = ['MD5', 'HMAC-SHA256'];

export function isV2SignType(value: unknown): value is V2SignType {
  return value === 'MD5' || value === 'HMAC-SHA256';
}

/**
 * stringA of the APIv2 sign: every field but `sign` with a non-empty value, sorted by name (ASCII,
 * case-sensitive), joined as `k=v&…` without URL-encoding. Unknown fields take part, as WeChat adds
 * fields to its answers over time.
 */
export function v2SignString(fields: Record<string, string | number | undefined>): string {
  return Object.keys(fields)
    .filter((k) => k !== 'sign' && fields[k] !== undefined && fields[k] !== null && String(fields[k]) !== '')
    .sort()
    .map((k) => `${k}=${String(fields[k])}`)
    .join('&');
}

/**
 * HMAC keys, made once per API key (a deployment has one or two; they are configuration, so the
 * cache is bounded by the keys it is ever given and never stale). Creating the key object from the
 * string each time is a good part of an HMAC over a 500-byte message.
 */
const hmacKeys = new Map<string, KeyObject>();
function hmacKey(apiKey: string): KeyObject {
  let key = hmacKeys.get(apiKey);
  if (!key) {
    if (hmacKeys.size >= 16) hmacKeys.clear();
    key = createSecretKey(Buffer.from(apiKey, 'utf8'));
    hmacKeys.set(apiKey, key);
  }
  return key;
}

function v2Digest(fields: Record<string, string | number | undefined>, apiKey: string, signType: V2SignType): Buffer {
  const message = `${v2SignString(fields)}&key=${apiKey}`;
  const digest = signType === 'MD5' ? createHash('md5').update(message, 'utf8') : createHmac('sha256', hmacKey(apiKey)).update(message, 'utf8');
  return digest.digest();
}

/** `upper(hex(MD5(stringA&key=K)))` or `upper(hex(HMAC-SHA256(K, stringA&key=K)))`. */
export function signV2(fields: Record<string, string | number | undefined>, apiKey: string, signType: V2SignType): string {
  return v2Digest(fields, apiKey, signType).toString('hex').toUpperCase();
}

const HEX = /^[0-9A-Fa-f]+$/;

/** Constant-time check of `fields.sign` (hex, any case) against our own signature, compared as bytes. */
export function verifyV2(fields: Record<string, string | undefined>, apiKey: string, signType: V2SignType): boolean {
  const given = fields.sign;
  if (!given || !HEX.test(given)) return false;
  const expected = v2Digest(fields, apiKey, signType);
  // Buffer.from(hex) drops a trailing odd digit: the length of the text is checked, not of the bytes.
  if (given.length !== expected.length * 2) return false;
  return timingSafeEqual(expected, Buffer.from(given, 'hex'));
}

/**
 * The algorithm a received message (answer or notification) is signed with: its own `sign_type`
 * when it names one, else told apart by the length of the sign (32 hex = MD5, 64 = HMAC-SHA256) —
 * WeChat omits sign_type in many answers and notifications. Either way the API key is needed.
 */
export function receivedSignType(fields: Record<string, string | undefined>, configured: V2SignType): V2SignType | undefined {
  if (fields.sign_type !== undefined && fields.sign_type !== '') return isV2SignType(fields.sign_type) ? fields.sign_type : undefined;
  if (fields.sign?.length === 32) return 'MD5';
  if (fields.sign?.length === 64) return 'HMAC-SHA256';
  return configured;
}
