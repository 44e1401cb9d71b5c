import { createHash } from 'node:crypto';

/** The page URL as signed: everything before `#`, otherwise untouched (not re-encoded). */
export function urlForSignature(url: string): string {
  const hash = url.indexOf('#');
  return hash < 0 ? url : url.slice(0, hash);
}

/** JS-SDK signature: lowercase hex SHA-1 of `jsapi_ticket=…&noncestr=…&timestamp=…&url=…`. */
export function jssdkSignature(params: { jsapiTicket: string; nonceStr: string; timestamp: number | string; url: string }): string {
  const string1 =
    `jsapi_ticket=${params.jsapiTicket}&noncestr=${params.nonceStr}` +
    `&timestamp=${params.timestamp}&url=${urlForSignature(params.url)}`;
  return createHash('sha1').update(string1, 'utf8').digest('hex');
}
