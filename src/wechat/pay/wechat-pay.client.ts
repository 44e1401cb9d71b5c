import { KeyObject, constants, createDecipheriv, createHash, privateDecrypt } from 'node:crypto';
import { PassThrough, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { WechatCredentials } from '../wechat-credentials';
import { TransportError, readAll } from '../http/transport';
import { CertificateManager } from './certificates';
import { WechatPayApiError, WechatPayBillDecryptError, WechatPayBillHashError, WechatPayNetworkError } from './errors';
import { nonce } from './formatter';
import { loadPrivateKey } from './rsa';
import { WechatPaySigner } from './signer';
import type {
  BillApplyResponse,
  CreateRefundRequest,
  EncryptedBillList,
  EncryptedBillPart,
  FundFlowAccountType,
  JsapiInvokeParams,
  JsapiPrepayRequest,
  JsapiPrepayResponse,
  H5PrepayRequest,
  H5PrepayResponse,
  NativePrepayRequest,
  NativePrepayResponse,
  PlatformCertificate,
  Refund,
  TradeBillType,
  Transaction,
} from './types';
import { WechatPayHttp } from './wechat-pay.http';

/**
 * Whether a bill apply answer was asked for as GZIP (tar_type), remembered per answer object: the
 * download decides decompression from what was requested, not from a marker in download_url.
 */
const requestedGzip = new WeakMap<BillApplyResponse | EncryptedBillList, boolean>();

const GCM_TAG_BYTES = 16;

/**
 * AEAD_AES_256_GCM over a stream: the last 16 bytes are the tag, so they are held back until the end,
 * where final() checks it. What passes before is not yet authenticated: consumers must treat a stream
 * error as fatal (the billing service spools the whole file first).
 */
function gcmDecipherStream(key: Buffer, iv: Buffer): Transform {
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  let held = Buffer.alloc(0);
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      const all = held.length ? Buffer.concat([held, chunk]) : chunk;
      if (all.length <= GCM_TAG_BYTES) {
        held = Buffer.from(all);
        done();
        return;
      }
      held = Buffer.from(all.subarray(all.length - GCM_TAG_BYTES));
      done(null, decipher.update(all.subarray(0, all.length - GCM_TAG_BYTES)));
    },
    flush(done) {
      if (held.length < GCM_TAG_BYTES) {
        done(new WechatPayBillDecryptError('the encrypted bill part is too short to hold its GCM tag'));
        return;
      }
      try {
        decipher.setAuthTag(held);
        const tail = decipher.final();
        if (tail.length) this.push(tail);
        done();
      } catch {
        done(new WechatPayBillDecryptError('AES-256-GCM authentication of a bill part failed: the part was tampered with (or is not the one its encrypt_key and nonce are for)'));
      }
    },
  });
}

/** A part's hash check as the plain text passes: the stream ends with WechatPayBillHashError on a mismatch. */
function hashCheck(hashType: string | undefined, hashValue: string): Transform {
  const hash = createHash((hashType || 'SHA1').toLowerCase().replace('-', ''));
  const expected = String(hashValue).toLowerCase();
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
    flush(done) {
      const actual = hash.digest('hex');
      done(actual === expected ? undefined : new WechatPayBillHashError(expected, actual));
    },
  });
}

export type PrepayInput = Omit<JsapiPrepayRequest, 'appid' | 'mchid'>;
export type H5PrepayInput = Omit<H5PrepayRequest, 'appid' | 'mchid'>;
export type NativePrepayInput = Omit<NativePrepayRequest, 'appid' | 'mchid'>;

/**
 * The typed Pay APIv3 calls this shop needs (direct merchant, JSAPI). Knows nothing of our orders:
 * it takes and returns WeChat's own shapes.
 */
export class WechatPayClient {
  constructor(
    private readonly http: WechatPayHttp,
    private readonly credentials: WechatCredentials,
    private readonly signer: WechatPaySigner,
    private readonly certificates: CertificateManager,
    private readonly nowSeconds: () => number,
  ) {}

  private merchantKey?: KeyObject;

  get mchid(): string {
    return this.credentials.mchid;
  }

  get appid(): string {
    return this.credentials.appid;
  }

  /** JSAPI prepay; `appid` defaults to the official account's (a mini-program's for mini-program pay). */
  async prepayJsapi(input: PrepayInput, appid: string = this.credentials.appid): Promise<JsapiPrepayResponse> {
    const body: JsapiPrepayRequest = { appid, mchid: this.credentials.mchid, ...input };
    const res = await this.http.request<JsapiPrepayResponse>({ method: 'POST', path: '/v3/pay/transactions/jsapi', body });
    return this.required(res.body, 'prepay_id', res.requestId);
  }

  /** H5 (MWEB) prepay: a cashier URL for a mobile browser outside WeChat. */
  async prepayH5(input: H5PrepayInput): Promise<H5PrepayResponse> {
    const body: H5PrepayRequest = { appid: this.credentials.appid, mchid: this.credentials.mchid, ...input };
    const res = await this.http.request<H5PrepayResponse>({ method: 'POST', path: '/v3/pay/transactions/h5', body });
    return this.required(res.body, 'h5_url', res.requestId);
  }

  /** Native prepay: a code_url to show as a QR code. */
  async prepayNative(input: NativePrepayInput): Promise<NativePrepayResponse> {
    const body: NativePrepayRequest = { appid: this.credentials.appid, mchid: this.credentials.mchid, ...input };
    const res = await this.http.request<NativePrepayResponse>({ method: 'POST', path: '/v3/pay/transactions/native', body });
    return this.required(res.body, 'code_url', res.requestId);
  }

  async queryByOutTradeNo(outTradeNo: string): Promise<Transaction> {
    const res = await this.http.request<Transaction>({
      method: 'GET',
      path: `/v3/pay/transactions/out-trade-no/${encodeURIComponent(outTradeNo)}`,
      query: { mchid: this.credentials.mchid },
    });
    return this.required(res.body, 'trade_state', res.requestId);
  }

  async queryByTransactionId(transactionId: string): Promise<Transaction> {
    const res = await this.http.request<Transaction>({
      method: 'GET',
      path: `/v3/pay/transactions/id/${encodeURIComponent(transactionId)}`,
      query: { mchid: this.credentials.mchid },
    });
    return this.required(res.body, 'trade_state', res.requestId);
  }

  /** 204 on success; closing an already closed order succeeds again, a paid one fails (ORDER_PAID). */
  async closeOrder(outTradeNo: string): Promise<void> {
    await this.http.request({
      method: 'POST',
      path: `/v3/pay/transactions/out-trade-no/${encodeURIComponent(outTradeNo)}/close`,
      body: { mchid: this.credentials.mchid },
    });
  }

  async createRefund(request: CreateRefundRequest): Promise<Refund> {
    const res = await this.http.request<Refund>({ method: 'POST', path: '/v3/refund/domestic/refunds', body: request });
    return this.required(res.body, 'status', res.requestId);
  }

  /** `subMchid`: a service provider's query names the trade's sub-merchant (?sub_mchid=). */
  async queryRefund(outRefundNo: string, subMchid?: string): Promise<Refund> {
    const res = await this.http.request<Refund>({
      method: 'GET',
      path: `/v3/refund/domestic/refunds/${encodeURIComponent(outRefundNo)}`,
      ...(subMchid ? { query: { sub_mchid: subMchid } } : {}),
    });
    return this.required(res.body, 'status', res.requestId);
  }

  /** `subMchid`: a service provider's trade bill of one sub-merchant (?sub_mchid=); without it, every sub-merchant's. */
  async applyTradeBill(params: { billDate: string; billType?: TradeBillType; tarType?: 'GZIP'; subMchid?: string }): Promise<BillApplyResponse> {
    const res = await this.http.request<BillApplyResponse>({
      method: 'GET',
      path: '/v3/bill/tradebill',
      query: { bill_date: params.billDate, ...(params.subMchid ? { sub_mchid: params.subMchid } : {}), bill_type: params.billType, tar_type: params.tarType },
    });
    const apply = this.required(res.body, 'download_url', res.requestId);
    requestedGzip.set(apply, params.tarType === 'GZIP');
    return apply;
  }

  async applyFundFlowBill(params: { billDate: string; accountType?: FundFlowAccountType; tarType?: 'GZIP' }): Promise<BillApplyResponse> {
    const res = await this.http.request<BillApplyResponse>({
      method: 'GET',
      path: '/v3/bill/fundflowbill',
      query: { bill_date: params.billDate, account_type: params.accountType, tar_type: params.tarType },
    });
    const apply = this.required(res.body, 'download_url', res.requestId);
    requestedGzip.set(apply, params.tarType === 'GZIP');
    return apply;
  }

  /**
   * 申请单个子商户资金账单: a service provider's fund-flow bill of one sub-merchant, always asked for
   * encrypted with AEAD_AES_256_GCM. Answers the download list (each part's encrypt_key still
   * encrypted; see downloadEncryptedBill), checked for shape.
   */
  async applySubMerchantFundFlowBill(params: { subMchid: string; billDate: string; accountType?: FundFlowAccountType; tarType?: 'GZIP' }): Promise<EncryptedBillList> {
    const res = await this.http.request<EncryptedBillList>({
      method: 'GET',
      path: '/v3/bill/sub-merchant-fundflowbill',
      query: { sub_mchid: params.subMchid, bill_date: params.billDate, account_type: params.accountType ?? 'BASIC', algorithm: 'AEAD_AES_256_GCM', tar_type: params.tarType },
    });
    const list = this.required(res.body, 'download_bill_list', res.requestId);
    const parts = list.download_bill_list;
    const wellFormed =
      Array.isArray(parts) &&
      parts.length > 0 &&
      list.download_bill_count === parts.length &&
      parts.every(
        (p) =>
          p && Number.isInteger(p.bill_sequence) && [p.download_url, p.encrypt_key, p.hash_value, p.nonce].every((v) => typeof v === 'string' && v.length > 0),
      ) &&
      new Set(parts.map((p) => p.bill_sequence)).size === parts.length;
    if (!wellFormed) throw new WechatPayApiError(200, 'INVALID_RESPONSE', 'malformed download_bill_list (count, sequence numbers, url, encrypt_key, hash or nonce)', res.requestId);
    requestedGzip.set(list, params.tarType === 'GZIP');
    return list;
  }

  /**
   * Downloads every part of an encrypted bill, in bill_sequence order, as one plain stream. For each
   * part: its encrypt_key is opened with the merchant's private key (RSA-OAEP, SHA-1 — WeChat's privacy
   * encryption), the part (signed GET of its download_url, not signed back) is decrypted with
   * AEAD_AES_256_GCM under that key and its nonce (no associated data; the tag is the last 16 bytes),
   * gunzipped when applied for as GZIP, and the SHA-1 of its plain text is checked against hash_value.
   * A tampered part ends the stream with WechatPayBillDecryptError (tag) or WechatPayBillHashError;
   * consumers must treat stream errors as fatal.
   */
  async downloadEncryptedBill(list: EncryptedBillList, options: { gzip?: boolean; idleTimeoutMs?: number } = {}): Promise<Readable> {
    const gzip = options.gzip ?? requestedGzip.get(list) ?? false;
    const parts = [...list.download_bill_list].sort((a, b) => a.bill_sequence - b.bill_sequence);
    // Every key is opened before anything is downloaded: one not for our key fails at once.
    const keys = parts.map((part) => this.openBillKey(part));
    const out = new PassThrough();
    let current: Readable | undefined;
    out.on('close', () => {
      if (!out.writableFinished) current?.destroy();
    });
    const writeAll = async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) {
        if (out.destroyed) throw new Error('the bill consumer went away');
        if (!out.write(chunk)) await new Promise<void>((resolve) => {
          out.once('drain', resolve);
          out.once('close', resolve);
        });
      }
    };
    (async () => {
      for (let i = 0; i < parts.length; i++) {
        const part = parts[i];
        const res = await this.http.download(part.download_url, { idleTimeoutMs: options.idleTimeoutMs });
        if (res.status < 200 || res.status >= 300) await this.downloadFailure(res);
        current = res.stream;
        try {
          const decrypt = gcmDecipherStream(keys[i], Buffer.from(part.nonce, 'utf8'));
          const check = hashCheck(part.hash_type, part.hash_value);
          await (gzip ? pipeline(res.stream, decrypt, createGunzip(), check, writeAll) : pipeline(res.stream, decrypt, check, writeAll));
        } catch (error) {
          // Decrypted bytes reach gunzip before the GCM tag (at the very end) is checked: a tampered part
          // usually fails there first. Either way the part is not what WeChat sealed.
          const zlib = typeof (error as { code?: unknown }).code === 'string' && (error as { code: string }).code.startsWith('Z_');
          if (zlib) throw new WechatPayBillDecryptError(`bill part ${part.bill_sequence} does not gunzip once decrypted: it was tampered with or damaged (${(error as Error).message})`);
          throw billStreamError(error, res.requestId);
        }
      }
      out.end();
    })().catch((error: unknown) => out.destroy(error instanceof Error ? error : new Error(String(error))));
    return out;
  }

  /** A part's AES key: its encrypt_key opened with the merchant private key (RSA-OAEP, SHA-1); 32 bytes. */
  private openBillKey(part: EncryptedBillPart): Buffer {
    this.merchantKey ??= loadPrivateKey(this.credentials.merchantPrivateKeyPem);
    let key: Buffer;
    try {
      key = privateDecrypt({ key: this.merchantKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, Buffer.from(part.encrypt_key, 'base64'));
    } catch {
      throw new WechatPayBillDecryptError(`the encrypt_key of bill part ${part.bill_sequence} does not open with the merchant private key (RSA-OAEP)`);
    }
    if (key.length !== 32) throw new WechatPayBillDecryptError(`the key of bill part ${part.bill_sequence} is ${key.length} bytes, not the 32 of AES-256`);
    return key;
  }

  /** A non-2xx answer to a download: WeChat's error (JSON when it is), as a typed WechatPayApiError. */
  private async downloadFailure(res: { status: number; stream: Readable; requestId?: string }): Promise<never> {
    const requestId = res.requestId;
    const body = await readAll(res.stream).catch((error: unknown) => {
      throw billStreamError(error, requestId);
    });
    let code = `HTTP_${res.status}`;
    let message = body.toString('utf8').slice(0, 200);
    let detail: unknown;
    try {
      const parsed = JSON.parse(body.toString('utf8')) as { code?: string; message?: string; detail?: unknown };
      code = parsed.code ?? code;
      message = parsed.message ?? message;
      detail = parsed.detail;
    } catch {
      // keep the raw text
    }
    throw new WechatPayApiError(res.status, code, message, requestId, detail);
  }

  /**
   * Downloads a bill (signed GET of download_url; the file itself is not signed), gunzips it when
   * it was applied for with tar_type GZIP (or `options.gzip` says so), and returns the plain CSV as a stream. The SHA-1 announced by the apply call is over
   * the uncompressed file and is checked as the data passes: on a mismatch the stream ends with a
   * WechatPayBillHashError instead of ending normally, so consumers must treat stream errors as fatal.
   * A body that stops arriving for `idleTimeoutMs` (default 30 s) or is cut short ends the stream
   * with a WechatPayNetworkError. Errors carry WeChat's Request-ID where there is one.
   */
  async downloadBill(apply: BillApplyResponse, options: { gzip?: boolean; idleTimeoutMs?: number } = {}): Promise<Readable> {
    const res = await this.http.download(apply.download_url, { idleTimeoutMs: options.idleTimeoutMs });
    const requestId = res.requestId;
    if (res.status < 200 || res.status >= 300) await this.downloadFailure(res);
    const gzip = options.gzip ?? requestedGzip.get(apply) ?? false;
    const check = hashCheck(apply.hash_type, apply.hash_value);
    // `out` stays outside the pipeline so that it ends with the typed error, not the raw one.
    const out = new PassThrough();
    const done = gzip ? pipeline(res.stream, createGunzip(), check) : pipeline(res.stream, check);
    check.pipe(out);
    done.catch((error: unknown) => out.destroy(billStreamError(error, requestId)));
    // A consumer that gives up early releases the download.
    out.on('close', () => {
      if (!out.readableEnded) res.stream.destroy();
    });
    return out;
  }

  /** Fetches the platform certificates now (verified, cached) and returns every one still valid. */
  async downloadCertificates(): Promise<PlatformCertificate[]> {
    await this.certificates.refresh({ skipStore: true });
    return this.certificates.list();
  }

  /**
   * Parameters for WeixinJSBridge.invoke('getBrandWCPayRequest'): paySign is SHA256withRSA with the
   * merchant key over `appId\ntimeStamp\nnonceStr\npackage\n` (signType is not signed).
   */
  buildJsapiInvokeParams(prepayId: string, timestamp: number = this.nowSeconds(), nonceStr: string = nonce(), appId: string = this.credentials.appid): JsapiInvokeParams {
    const timeStamp = String(timestamp);
    const pkg = `prepay_id=${prepayId}`;
    return {
      appId,
      timeStamp,
      nonceStr,
      package: pkg,
      signType: 'RSA',
      paySign: this.signer.sign(`${appId}\n${timeStamp}\n${nonceStr}\n${pkg}\n`),
    };
  }

  private required<T>(body: T | undefined, field: string, requestId?: string): T {
    if (!body || typeof body !== 'object' || !(field in (body as object))) {
      throw new WechatPayApiError(200, 'INVALID_RESPONSE', `response lacks ${field}`, requestId);
    }
    return body;
  }
}

/** Transport failures of a bill body become typed network errors naming the download's Request-ID. */
function billStreamError(error: unknown, requestId?: string): Error {
  if (error instanceof TransportError) {
    const suffix = requestId ? ` (request-id ${requestId})` : '';
    return new WechatPayNetworkError(`bill download failed: ${error.message}${suffix}`, true, error.timedOut, error.code, requestId);
  }
  return error instanceof Error ? error : new Error(String(error));
}
