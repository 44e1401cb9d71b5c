import { randomBytes } from 'node:crypto';
import { AUTH_SCHEME } from './constants';

const NONCE_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** 32 characters of [0-9A-Za-z], as the official SDKs generate. */
export function nonce(length = 32): string {
  const bytes = randomBytes(length);
  let out = '';
  // 62 does not divide 256; the bias of a modulo over one byte is < 1% per character and irrelevant
  // for a nonce whose only job is to be unique.
  for (let i = 0; i < length; i++) out += NONCE_ALPHABET[bytes[i] % 62];
  return out;
}

/** `METHOD\nCANONICAL_URL\nTIMESTAMP\nNONCE\nBODY\n` — every line ends with \n, the last one too. */
export function requestMessage(method: string, canonicalUrl: string, timestamp: number | string, nonceStr: string, body: string): string {
  return `${method.toUpperCase()}\n${canonicalUrl}\n${timestamp}\n${nonceStr}\n${body}\n`;
}

/** `TIMESTAMP\nNONCE\nBODY\n` over the raw body bytes of a response or notification. */
export function responseMessageParts(timestamp: string, nonceStr: string, body: Buffer | string): Array<string | Buffer> {
  return [`${timestamp}\n${nonceStr}\n`, body, '\n'];
}

export function authorizationHeader(fields: {
  mchid: string;
  nonceStr: string;
  signature: string;
  timestamp: number | string;
  serialNo: string;
}): string {
  return (
    `${AUTH_SCHEME} mchid="${fields.mchid}",nonce_str="${fields.nonceStr}",signature="${fields.signature}",` +
    `timestamp="${fields.timestamp}",serial_no="${fields.serialNo}"`
  );
}

/** The request-target as sent on the wire: path (with any base prefix) and query, no scheme or host. */
export function canonicalUrl(url: URL): string {
  return url.pathname + url.search;
}
