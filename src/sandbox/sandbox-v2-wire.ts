import { createCipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { XMLParser } from 'fast-xml-parser';

/*
 * The simulated WeChat's own APIv2 wire code (XML, sign, req_info). Written apart from the shop's
 * client (src/wechat/pay-v2) on purpose: one shared bug must not make both sides agree.
 */

export type SandboxV2SignType = 'MD5' | 'HMAC-SHA256';

/** WeChat's v2 retry schedule for notifications (protocol G.4), before scaling. */
export const V2_RETRY_SCHEDULE_MS = [15, 15, 30, 180, 1800, 1800, 1800, 1800, 3600].map((s) => s * 1000);

const xmlParser = new XMLParser({ processEntities: true, htmlEntities: false, ignoreAttributes: true, ignoreDeclaration: true, parseTagValue: false, trimValues: true });

/** A flat `<xml>` of strings, or a reason why not (WeChat answers return_code FAIL for it). */
export function sandboxParseV2(raw: Buffer | string, root = 'xml'): { fields: Record<string, string> } | { error: string } {
  const text = typeof raw === 'string' ? raw : raw.toString('utf8');
  if (!text.trim()) return { error: 'POST_DATA_EMPTY' };
  if (/<!(DOCTYPE|ENTITY)/i.test(text)) return { error: 'XML_FORMAT_ERROR' };
  let doc: Record<string, unknown>;
  try {
    doc = xmlParser.parse(text, true) as Record<string, unknown>;
  } catch {
    return { error: 'XML_FORMAT_ERROR' };
  }
  const body = doc[root];
  if (Object.keys(doc).length !== 1 || body === undefined) return { error: 'XML_FORMAT_ERROR' };
  if (body === '') return { fields: {} };
  if (typeof body !== 'object' || body === null) return { error: 'XML_FORMAT_ERROR' };
  const fields: Record<string, string> = {};
  for (const [k, v] of Object.entries(body)) {
    if (typeof v !== 'string') return { error: 'XML_FORMAT_ERROR' };
    fields[k] = v;
  }
  return { fields };
}

function cdata(value: string): string {
  return `<![CDATA[${value.split(']]>').join(']]]]><![CDATA[>')}]]>`;
}

export function sandboxXml(fields: Record<string, string | number | undefined>, root = 'xml'): string {
  const parts = Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => (typeof v === 'number' ? `<${k}>${v}</${k}>` : `<${k}>${cdata(String(v))}</${k}>`));
  return `<${root}>${parts.join('')}</${root}>`;
}

export function sandboxV2Sign(fields: Record<string, string | number | undefined>, key: string, type: SandboxV2SignType): string {
  const pairs: string[] = [];
  for (const name of Object.keys(fields).sort()) {
    const value = fields[name];
    if (name === 'sign' || value === undefined || value === '') continue;
    pairs.push(`${name}=${value}`);
  }
  const text = `${pairs.join('&')}&key=${key}`;
  const hash = type === 'HMAC-SHA256' ? createHmac('sha256', key).update(text, 'utf8') : createHash('md5').update(text, 'utf8');
  return hash.digest('hex').toUpperCase();
}

export function sandboxV2SignOk(fields: Record<string, string>, key: string, type: SandboxV2SignType): boolean {
  const expected = Buffer.from(sandboxV2Sign(fields, key, type));
  const given = Buffer.from((fields.sign ?? '').toUpperCase());
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export function sandboxNonce(): string {
  return randomBytes(16).toString('hex');
}

/** req_info of a refund notification: Base64(AES-256-ECB(PKCS#7)), key = lowercase hex MD5 of the API key. */
export function sandboxReqInfo(rootXml: string, apiKey: string): string {
  const key = Buffer.from(createHash('md5').update(apiKey, 'utf8').digest('hex'), 'utf8');
  const cipher = createCipheriv('aes-256-ecb', key, null);
  return Buffer.concat([cipher.update(rootXml, 'utf8'), cipher.final()]).toString('base64');
}

/** `yyyyMMddHHmmss` in Beijing time. */
export function sandboxV2Time(ms: number): string {
  const d = new Date(ms + 8 * 3600_000);
  return d.toISOString().replace(/\D/g, '').slice(0, 14);
}

/** RFC 3339 with offset (the v3 view) → `yyyyMMddHHmmss` Beijing; `yyyy-MM-dd HH:mm:ss` when `spaced`. */
export function sandboxV2TimeOf(rfc3339: string | undefined, spaced = false): string | undefined {
  if (!rfc3339) return undefined;
  const ms = Date.parse(rfc3339);
  if (Number.isNaN(ms)) return undefined;
  const t = sandboxV2Time(ms);
  return spaced ? `${t.slice(0, 4)}-${t.slice(4, 6)}-${t.slice(6, 8)} ${t.slice(8, 10)}:${t.slice(10, 12)}:${t.slice(12, 14)}` : t;
}

/**
 * The JS bridge's paySign check: `RSA` (APIv3, checked by the caller) or the APIv2 sign (MD5 /
 * HMAC-SHA256 over appId, nonceStr, package, signType, timeStamp with the APIv2 key). Answers
 * undefined when the v2 sign is right, else what is wrong; 'rsa' hands RSA back to the caller.
 */
export function sandboxV2PaySignProblem(p: Record<string, unknown>, appId: string, apiKey: string): string | undefined | 'rsa' {
  if (p.signType === 'RSA') return 'rsa';
  if (p.signType !== 'MD5' && p.signType !== 'HMAC-SHA256') return 'signType 必须是 RSA（APIv3）或 MD5、HMAC-SHA256（APIv2）';
  const fields = { appId, timeStamp: String(p.timeStamp), nonceStr: String(p.nonceStr), package: String(p.package), signType: p.signType };
  const expected = Buffer.from(sandboxV2Sign(fields, apiKey, p.signType));
  const given = Buffer.from(String(p.paySign).toUpperCase());
  return given.length === expected.length && timingSafeEqual(given, expected) ? undefined : `支付验证签名失败（signType ${p.signType}：APIv2 签名不符）`;
}

/** The signType a prepay must be invoked with: RSA for APIv3 prepays, the unifiedorder's for APIv2 ones. */
export function sandboxInvokeSignType(tx: { v2?: { signType: SandboxV2SignType } }): string {
  return tx.v2?.signType ?? 'RSA';
}
