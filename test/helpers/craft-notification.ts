import { createCipheriv, createHash, createHmac, createPrivateKey, randomBytes, randomUUID, sign } from 'node:crypto';
import { SandboxKeystore, sandboxApiV2Key } from '../../src/sandbox/keystore';

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

/* ---------------------------------------------------------------- APIv2 ---------------------------------------------------------------- */

export type ApiVersion = 'v3' | 'v2';
export type V2SignType = 'MD5' | 'HMAC-SHA256';

/** A flat APIv2 message, every value in CDATA. */
export function v2Xml(fields: Record<string, string | number | undefined>, root = 'xml'): string {
  const parts = Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `<${k}><![CDATA[${String(v)}]]></${k}>`);
  return `<${root}>${parts.join('')}</${root}>`;
}

/** The APIv2 sign (non-empty fields but sign, sorted, `&key=`, MD5 or HMAC-SHA256, uppercase hex), written with node:crypto. */
export function v2Sign(fields: Record<string, string | number | undefined>, key: string, signType: V2SignType): string {
  const text = `${Object.keys(fields)
    .filter((k) => k !== 'sign' && fields[k] !== undefined && String(fields[k]) !== '')
    .sort()
    .map((k) => `${k}=${fields[k]}`)
    .join('&')}&key=${key}`;
  return (signType === 'MD5' ? createHash('md5').update(text, 'utf8') : createHmac('sha256', key).update(text, 'utf8')).digest('hex').toUpperCase();
}

/** The fields of a v2 payment result notification for an order (override any of them; undefined drops one). */
export function v2PaymentFields(keystore: SandboxKeystore, outTradeNo: string, total: number, overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    return_code: 'SUCCESS',
    return_msg: 'OK',
    appid: keystore.appid,
    mch_id: keystore.mchid,
    nonce_str: randomBytes(8).toString('hex'),
    result_code: 'SUCCESS',
    openid: 'o_crafted',
    is_subscribe: 'N',
    trade_type: 'JSAPI',
    bank_type: 'OTHERS',
    total_fee: String(total),
    fee_type: 'CNY',
    cash_fee: String(total),
    transaction_id: `4200000${Math.floor(Math.random() * 1e12)}`.padEnd(28, '0'),
    out_trade_no: outTradeNo,
    time_end: '20261124100000',
    ...overrides,
  };
}

/**
 * A v2 payment notification as WeChat sends it: XML signed with the merchant's APIv2 key (the
 * sandbox keystore's), MD5 (no sign_type, as WeChat sends it) or HMAC-SHA256 (sign_type named);
 * `key` signs with another key (a forgery), `unsigned` leaves the sign out.
 */
export function craftV2Notification(
  keystore: SandboxKeystore,
  fields: Record<string, string | undefined>,
  options: { signType?: V2SignType; key?: string; unsigned?: boolean } = {},
): { body: Buffer; headers: Record<string, string> } {
  const signType = options.signType ?? 'HMAC-SHA256';
  const signed: Record<string, string | undefined> = { ...fields, ...(signType === 'MD5' ? {} : { sign_type: signType }) };
  const sign = options.unsigned ? undefined : v2Sign(signed, options.key ?? sandboxApiV2Key(keystore), signType);
  return { body: Buffer.from(v2Xml({ ...signed, sign })), headers: { 'Content-Type': 'text/xml' } };
}

/** `req_info` of a v2 refund notification: Base64(AES-256-ECB(PKCS#7)), key = lowercase hex MD5 of the API key. */
export function v2ReqInfo(rootXml: string, apiKey: string): string {
  const cipher = createCipheriv('aes-256-ecb', Buffer.from(createHash('md5').update(apiKey, 'utf8').digest('hex'), 'utf8'), null);
  return Buffer.concat([cipher.update(rootXml, 'utf8'), cipher.final()]).toString('base64');
}

/** A v2 refund result notification: the result in req_info, encrypted with the APIv2 key (or `key`, a forgery). */
export function craftV2RefundNotification(
  keystore: SandboxKeystore,
  result: Record<string, string | number | undefined>,
  options: { key?: string } = {},
): { body: Buffer; headers: Record<string, string> } {
  const reqInfo = v2ReqInfo(v2Xml(result, 'root'), options.key ?? sandboxApiV2Key(keystore));
  const xml = v2Xml({ return_code: 'SUCCESS', appid: keystore.appid, mch_id: keystore.mchid, nonce_str: randomBytes(8).toString('hex'), req_info: reqInfo });
  return { body: Buffer.from(xml), headers: { 'Content-Type': 'text/xml' } };
}

/** What a crafted payment notification may differ in from a genuine one for the order, in either version's words. */
export interface PaymentOverrides {
  appid?: string;
  mchid?: string;
  currency?: string;
  transactionId?: string;
}

/**
 * A genuine-looking payment notification for `outTradeNo` in the API version's shape, with the path
 * WeChat would post it to: v3 JSON signed with the WeChat Pay key (resource encrypted with the APIv3
 * key), or v2 XML signed with the APIv2 key.
 */
export function craftPayment(
  version: ApiVersion,
  keystore: SandboxKeystore,
  outTradeNo: string,
  total: number,
  overrides: PaymentOverrides = {},
): { path: string; body: Buffer; headers: Record<string, string> } {
  if (version === 'v2') {
    const fields = v2PaymentFields(keystore, outTradeNo, total, {
      ...(overrides.appid ? { appid: overrides.appid } : {}),
      ...(overrides.mchid ? { mch_id: overrides.mchid } : {}),
      ...(overrides.currency ? { fee_type: overrides.currency } : {}),
      ...(overrides.transactionId ? { transaction_id: overrides.transactionId } : {}),
    });
    return { path: '/notify/wechatpay/v2/transaction', ...craftV2Notification(keystore, fields) };
  }
  const resource = successResource(keystore, outTradeNo, total, {
    ...(overrides.appid ? { appid: overrides.appid } : {}),
    ...(overrides.mchid ? { mchid: overrides.mchid } : {}),
    ...(overrides.currency ? { amount: { total, payer_total: total, currency: overrides.currency, payer_currency: overrides.currency } } : {}),
    ...(overrides.transactionId ? { transaction_id: overrides.transactionId } : {}),
  });
  return { path: '/notify/wechatpay/transaction', ...craftNotification(keystore, resource) };
}

/** POSTs a crafted notification to the app. */
export function postNotification(baseUrl: string, crafted: { path: string; body: Buffer; headers: Record<string, string> }): Promise<Response> {
  return fetch(`${baseUrl}${crafted.path}`, { method: 'POST', headers: crafted.headers, body: crafted.body });
}

/** Whether an answer to a notification acknowledges it: v3 204, v2 HTTP 200 with return_code SUCCESS. */
export async function acknowledged(version: ApiVersion, res: Response): Promise<boolean> {
  if (version === 'v3') return res.status === 204 || res.status === 200;
  return res.status === 200 && (await res.text()).includes('<return_code><![CDATA[SUCCESS]]></return_code>');
}
