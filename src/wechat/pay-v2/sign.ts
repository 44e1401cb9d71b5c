import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

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

/** `upper(hex(MD5(stringA&key=K)))` or `upper(hex(HMAC-SHA256(K, stringA&key=K)))`. */
export function signV2(fields: Record<string, string | number | undefined>, apiKey: string, signType: V2SignType): string {
  const message = `${v2SignString(fields)}&key=${apiKey}`;
  const digest = signType === 'MD5' ? createHash('md5').update(message, 'utf8') : createHmac('sha256', apiKey).update(message, 'utf8');
  return digest.digest('hex').toUpperCase();
}

/** Constant-time check of `fields.sign` (hex, any case) against our own signature. */
export function verifyV2(fields: Record<string, string | undefined>, apiKey: string, signType: V2SignType): boolean {
  const given = fields.sign;
  if (!given || !/^[0-9A-Fa-f]+$/.test(given)) return false;
  const expected = Buffer.from(signV2(fields, apiKey, signType), 'utf8');
  const actual = Buffer.from(given.toUpperCase(), 'utf8');
  return expected.length === actual.length && timingSafeEqual(expected, actual);
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
