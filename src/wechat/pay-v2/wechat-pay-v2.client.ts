import { Logger } from '@nestjs/common';
import https from 'node:https';
import tls from 'node:tls';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { redactUrl } from '../../common/logging';
import type { WechatCallObserver } from '../http/call-observer';
import { TransportError, TransportResponse, send } from '../http/transport';
import { USER_AGENT } from '../pay/constants';
import { WechatPayApiError, WechatPayBadAnswerError, WechatPayNetworkError } from '../pay/errors';
import { nonce as makeNonce } from '../pay/formatter';
import type { Refund, Transaction } from '../pay/types';
import { toV2Time, v2RefundAccepted, v2RefundQueried, v2Transaction } from './convert';
import { v2BusinessError, v2CommunicationError } from './errors';
import { V2SignType, receivedSignType, signV2, verifyV2 } from './sign';
import { V2Fields, V2XmlError, buildV2Xml, parseV2Xml } from './xml';

export interface WechatPayV2Options {
  appid: string;
  mchid: string;
  /** The 32-character APIv2 key. */
  apiKey: string;
  signType: V2SignType;
  /** WECHATPAY_API_BASE (no trailing slash); the v2 paths are appended to it. */
  baseUrl: string;
  backupBaseUrl?: string;
  /**
   * Where the calls needing the merchant certificate go (/secapi/pay/refund, /pay/downloadfundflow):
   * WECHATPAY_SECAPI_BASE, or a function when it is known only once the app's own sandbox listens.
   * Absent: baseUrl (and its backup).
   */
  secureBaseUrl?: string | (() => string);
  timeoutMs: number;
  /**
   * The merchant API certificate and its private key (PEM) for those calls: presented whenever their
   * base is https. WeChat's server is checked against Node's default CA store (NODE_EXTRA_CA_CERTS
   * honoured); `trustedCaPem` (sandbox mode only: the sandbox's CA) is trusted beside it. Verification
   * is never turned off.
   */
  clientCert?: { certPem: string; keyPem: string; trustedCaPem?: string };
  /** Milliseconds since the epoch. */
  now: () => number;
  nonce?: () => string;
  observe?: WechatCallObserver;
}

export type V2TradeType = 'JSAPI' | 'MWEB' | 'NATIVE';

/**
 * Service-provider mode (服务商): the sub-merchant a call is for. The request then names the
 * provider (appid, mch_id: the configured ones) and `sub_mch_id`; answers must name the same
 * sub_mch_id (one naming another sub-merchant is refused as a bad answer).
 */
export interface V2SubMerchant {
  subMchid: string;
  /**
   * orderquery / closeorder: the appid the trade's payer was under when not the provider's (sent as
   * sub_appid). A trade is the answer's appid = sub_appid ?? appid, so an answer that does not repeat
   * it is read with the one asked for (as the direct answer's appid is the request's, checked).
   */
  subAppid?: string;
}

export interface V2UnifiedOrderInput {
  tradeType: V2TradeType;
  /** Another appid bound to the merchant (the mini-program's); default the official account's. */
  appid?: string;
  /** `body`, at most 128 characters. */
  description: string;
  outTradeNo: string;
  /** fen */
  totalFee: number;
  notifyUrl: string;
  /** spbill_create_ip: the payer's IP (H5), else ours. */
  clientIp: string;
  timeExpire?: Date;
  attach?: string;
  goodsTag?: string;
  limitPay?: 'no_credit';
  /** JSAPI: the payer under `appid` (the provider's in service-provider mode). */
  openid?: string;
  /** Service-provider mode: the trade's sub-merchant. */
  merchant?: V2SubMerchant;
  /** Service-provider mode: the sub-merchant's own official account or mini-program (sub_appid). */
  subAppid?: string;
  /** JSAPI in service-provider mode: the payer under `subAppid` (instead of openid). */
  subOpenid?: string;
  /** NATIVE */
  productId?: string;
  /** MWEB: serialised as the `scene_info` JSON. */
  sceneInfo?: unknown;
}

export interface V2UnifiedOrderResult {
  tradeType: string;
  prepayId: string;
  codeUrl?: string;
  mwebUrl?: string;
}

export interface V2RefundInput {
  outTradeNo?: string;
  transactionId?: string;
  outRefundNo: string;
  totalFee: number;
  refundFee: number;
  reason?: string;
  notifyUrl?: string;
  /** The appid the order was prepaid with (the mini-program's for its orders), when not the configured one. */
  appid?: string;
  merchant?: V2SubMerchant;
}

/** Parameters for getBrandWCPayRequest / wx.requestPayment with the v2 sign. */
export interface V2JsapiInvokeParams {
  appId: string;
  timeStamp: string;
  nonceStr: string;
  package: string;
  signType: V2SignType;
  paySign: string;
}

/** Calls that change nothing when repeated may fail over to the backup domain on any network error. */
interface V2Call {
  path: string;
  fields: Record<string, string | number | undefined>;
  idempotent: boolean;
  secure?: boolean;
  /** The appid the call is made with (and its answer must name), when not the configured one. */
  appid?: string;
  /** Service-provider mode: sent as sub_mch_id, and the answer must name it. */
  merchant?: V2SubMerchant;
}

/**
 * The Pay APIv2 calls, as a direct merchant or as a service provider (a call with `merchant` names
 * the sub-merchant: sub_mch_id, and sub_appid/sub_openid on unifiedorder): XML in, XML out, signed
 * with the API key (the provider's). Every answer is
 * checked in WeChat's order — return_code, then its sign (unsigned or forged answers refused), then
 * result_code/err_code — and failures are the WechatPayApiError the APIv3 client raises for the same
 * situation (see errors.ts), so callers need not know which version answered.
 */
export class WechatPayV2Client {
  private readonly logger = new Logger('WechatPayV2Client');
  private readonly secureAgent?: https.Agent;

  constructor(private readonly options: WechatPayV2Options) {
    if (options.clientCert) {
      const { certPem, keyPem, trustedCaPem } = options.clientCert;
      // An explicit `ca` replaces Node's default store, hence the root certificates beside the sandbox's CA.
      this.secureAgent = new https.Agent({ keepAlive: true, maxSockets: 16, timeout: 30_000, cert: certPem, key: keyPem, ...(trustedCaPem ? { ca: [...tls.rootCertificates, trustedCaPem] } : {}) });
    }
  }

  get appid(): string {
    return this.options.appid;
  }

  get mchid(): string {
    return this.options.mchid;
  }

  get signType(): V2SignType {
    return this.options.signType;
  }

  async unifiedOrder(input: V2UnifiedOrderInput): Promise<V2UnifiedOrderResult> {
    if (input.tradeType === 'JSAPI' && !input.openid && !input.subOpenid) throw new Error('unifiedorder JSAPI needs the openid (or sub_openid)');
    if ((input.subAppid || input.subOpenid) && !input.merchant) throw new Error('sub_appid / sub_openid are for a service provider: name the sub-merchant');
    if (input.subOpenid && !input.subAppid) throw new Error('sub_openid is the payer under sub_appid: it needs the sub_appid');
    if (input.tradeType === 'NATIVE' && !input.productId) throw new Error('unifiedorder NATIVE needs a product_id');
    if (input.tradeType === 'MWEB' && input.sceneInfo === undefined) throw new Error('unifiedorder MWEB needs scene_info');
    const f = await this.call({
      path: '/pay/unifiedorder',
      idempotent: false,
      appid: input.appid,
      merchant: input.merchant,
      fields: {
        sub_appid: input.subAppid,
        body: input.description,
        attach: input.attach,
        out_trade_no: input.outTradeNo,
        fee_type: 'CNY',
        total_fee: input.totalFee,
        spbill_create_ip: input.clientIp,
        time_expire: input.timeExpire ? toV2Time(input.timeExpire) : undefined,
        goods_tag: input.goodsTag,
        notify_url: input.notifyUrl,
        trade_type: input.tradeType,
        product_id: input.productId,
        limit_pay: input.limitPay,
        openid: input.subOpenid ? undefined : input.openid,
        sub_openid: input.subOpenid,
        scene_info: input.sceneInfo === undefined ? undefined : JSON.stringify(input.sceneInfo),
      },
    });
    if (!f.prepay_id) throw invalid('unifiedorder', 'prepay_id');
    if (input.tradeType === 'NATIVE' && !f.code_url) throw invalid('unifiedorder', 'code_url');
    if (input.tradeType === 'MWEB' && !f.mweb_url) throw invalid('unifiedorder', 'mweb_url');
    return { tradeType: f.trade_type || input.tradeType, prepayId: f.prepay_id, codeUrl: f.code_url || undefined, mwebUrl: f.mweb_url || undefined };
  }

  /** The order as an APIv3 Transaction (ORDERNOTEXIST → 404 ORDER_NOT_EXIST, as v3 answers). */
  async queryByOutTradeNo(outTradeNo: string, appid?: string, merchant?: V2SubMerchant): Promise<Transaction> {
    const f = await this.call({ path: '/pay/orderquery', idempotent: true, merchant, fields: { out_trade_no: outTradeNo }, appid });
    if (!f.trade_state) throw invalid('orderquery', 'trade_state');
    return v2Transaction(f);
  }

  async queryByTransactionId(transactionId: string, merchant?: V2SubMerchant): Promise<Transaction> {
    const f = await this.call({ path: '/pay/orderquery', idempotent: true, merchant, fields: { transaction_id: transactionId } });
    if (!f.trade_state) throw invalid('orderquery', 'trade_state');
    return v2Transaction(f);
  }

  /**
   * Closes an unpaid order. Closing a closed one succeeds again (as APIv3's close does); a paid one
   * fails with ORDER_PAID.
   */
  async closeOrder(outTradeNo: string, appid?: string, merchant?: V2SubMerchant): Promise<void> {
    try {
      await this.call({ path: '/pay/closeorder', idempotent: true, merchant, fields: { out_trade_no: outTradeNo }, appid });
    } catch (error) {
      if (error instanceof WechatPayApiError && error.wechatCode === 'ORDER_CLOSED') return;
      throw error;
    }
  }

  /** secapi/pay/refund, over mutual TLS when the base is https. Accepted = PROCESSING. */
  async createRefund(input: V2RefundInput): Promise<Refund> {
    if (!input.outTradeNo && !input.transactionId) throw new Error('refund needs out_trade_no or transaction_id');
    const f = await this.call({
      path: '/secapi/pay/refund',
      idempotent: false,
      secure: true,
      appid: input.appid,
      merchant: input.merchant,
      fields: {
        transaction_id: input.transactionId,
        out_trade_no: input.transactionId ? undefined : input.outTradeNo,
        out_refund_no: input.outRefundNo,
        total_fee: input.totalFee,
        refund_fee: input.refundFee,
        refund_fee_type: 'CNY',
        refund_desc: input.reason,
        notify_url: input.notifyUrl,
      },
    });
    if (!f.refund_id) throw invalid('refund', 'refund_id');
    return v2RefundAccepted({ ...f, out_refund_no: f.out_refund_no || input.outRefundNo });
  }

  /** REFUNDNOTEXIST → 404 RESOURCE_NOT_EXISTS, as APIv3's refund query answers. */
  async queryRefund(outRefundNo: string, merchant?: V2SubMerchant): Promise<Refund> {
    const f = await this.call({ path: '/pay/refundquery', idempotent: true, merchant, fields: { out_refund_no: outRefundNo } });
    const refund = v2RefundQueried(f, outRefundNo);
    if (!refund) throw invalid('refundquery', `out_refund_no_$n = ${outRefundNo}`);
    return refund;
  }

  /**
   * The trade bill of a day (`yyyy-MM-dd` or `yyyyMMdd`) as plain text (gunzipped when asked for as
   * GZIP). WeChat answers the file unsigned, or an XML error: "No Bill Exist" becomes the APIv3 code
   * NO_STATEMENT_EXIST (a day without trades), "Bill Creating" STATEMENT_CREATING. A service
   * provider's bill of one sub-merchant names it (`merchant`: sub_mch_id); without, every one's.
   */
  async downloadBill(params: { billDate: string; billType?: 'ALL' | 'SUCCESS' | 'REFUND'; tarType?: 'GZIP'; merchant?: V2SubMerchant }): Promise<Readable> {
    const fields = this.signed({ sub_mch_id: params.merchant?.subMchid, bill_date: params.billDate.replace(/-/g, ''), bill_type: params.billType ?? 'ALL', tar_type: params.tarType });
    return this.downloadFile('/pay/downloadbill', fields, false, params.tarType === 'GZIP');
  }

  /**
   * The fund-flow bill of a day: WeChat takes it only signed with HMAC-SHA256 (whatever
   * WECHATPAY_V2_SIGN_TYPE says) and over mutual TLS; account_type Basic, Operation or Fees.
   */
  async downloadFundFlow(params: { billDate: string; accountType?: 'BASIC' | 'OPERATION' | 'FEES'; tarType?: 'GZIP' }): Promise<Readable> {
    const account = { BASIC: 'Basic', OPERATION: 'Operation', FEES: 'Fees' }[params.accountType ?? 'BASIC'];
    const all: Record<string, string | number | undefined> = {
      appid: this.options.appid,
      mch_id: this.options.mchid,
      nonce_str: this.nonce(),
      sign_type: 'HMAC-SHA256',
      bill_date: params.billDate.replace(/-/g, ''),
      account_type: account,
      tar_type: params.tarType,
    };
    const fields = { ...all, sign: signV2(all, this.options.apiKey, 'HMAC-SHA256') };
    return this.downloadFile('/pay/downloadfundflow', fields, true, params.tarType === 'GZIP');
  }

  private async downloadFile(path: string, fields: Record<string, string | number | undefined>, secure: boolean, gzip: boolean): Promise<Readable> {
    const res = await this.post(path, buildV2Xml(fields), true, secure);
    if (res.status !== 200) throw new WechatPayApiError(res.status >= 500 ? res.status : 502, `HTTP_${res.status}`, `${path} answered HTTP ${res.status}${htmlTitle(res.body)}`);
    const head = res.body.subarray(0, 64).toString('utf8').trimStart();
    if (head.startsWith('<xml')) {
      const f = this.parse(res.body, path);
      const text = `${f.return_msg ?? ''} ${f.err_code ?? ''}`;
      if (/No Bill Exist|NO_STATEMENT_EXIST|20002/i.test(text) && !/Creating/i.test(text)) {
        throw new WechatPayApiError(400, 'NO_STATEMENT_EXIST', f.return_msg || 'No Bill Exist', undefined, { v2ReturnMsg: f.return_msg, v2ErrCode: f.err_code });
      }
      if (/Bill Creating/i.test(text)) throw new WechatPayApiError(400, 'STATEMENT_CREATING', f.return_msg, undefined, { v2ReturnMsg: f.return_msg });
      if (f.return_code === 'FAIL' && !f.err_code) throw v2CommunicationError(f.return_msg);
      throw v2BusinessError(f.err_code, f.err_code_des || f.return_msg);
    }
    const body = gzip ? gunzipSync(res.body) : res.body;
    return Readable.from([body]);
  }

  /**
   * Parameters for getBrandWCPayRequest (and wx.requestPayment with `appId` = the mini-program's):
   * paySign is the request sign algorithm over appId, nonceStr, package, signType, timeStamp.
   */
  buildJsapiInvokeParams(prepayId: string, timestamp = Math.floor(this.options.now() / 1000), nonceStr = this.nonce(), appId = this.options.appid): V2JsapiInvokeParams {
    const params = { appId, timeStamp: String(timestamp), nonceStr, package: `prepay_id=${prepayId}`, signType: this.options.signType };
    return { ...params, paySign: signV2(params, this.options.apiKey, this.options.signType) };
  }

  // ------------------------------------------------------------------ plumbing

  private nonce(): string {
    return (this.options.nonce ?? makeNonce)();
  }

  /** appid, mch_id, nonce_str, sign_type (when not MD5) and sign added to a request's fields. */
  private signed(fields: Record<string, string | number | undefined>, appid = this.options.appid): Record<string, string | number | undefined> {
    const all: Record<string, string | number | undefined> = {
      appid,
      mch_id: this.options.mchid,
      nonce_str: this.nonce(),
      ...(this.options.signType === 'MD5' ? {} : { sign_type: this.options.signType }),
      ...fields,
    };
    return { ...all, sign: signV2(all, this.options.apiKey, this.options.signType) };
  }

  private async call(call: V2Call): Promise<V2Fields> {
    const appid = call.appid ?? this.options.appid;
    const subMchid = call.merchant?.subMchid;
    const subAppid = call.merchant?.subAppid;
    const res = await this.post(call.path, buildV2Xml(this.signed({ sub_mch_id: subMchid, sub_appid: subAppid, ...call.fields }, appid)), call.idempotent, call.secure ?? false);
    if (res.status >= 500) throw new WechatPayApiError(res.status, 'SYSTEM_ERROR', `${call.path} answered HTTP ${res.status}`);
    if (res.status !== 200) throw new WechatPayApiError(res.status, `HTTP_${res.status}`, `${call.path} answered HTTP ${res.status}${htmlTitle(res.body)}`);
    const f = this.parse(res.body, call.path);
    if (f.return_code !== 'SUCCESS') {
      if (f.return_code !== 'FAIL') throw invalid(call.path, 'return_code');
      const error = v2CommunicationError(f.return_msg);
      this.logger.warn(`POST ${call.path}: return_code FAIL: ${f.return_msg ?? ''}`);
      throw error;
    }
    this.verify(f, call.path);
    if (f.appid && f.appid !== appid) throw this.bad(call.path, `answer names appid ${f.appid}, not ours`);
    if (f.mch_id && f.mch_id !== this.options.mchid) throw this.bad(call.path, `answer names mch_id ${f.mch_id}, not ours`);
    // A provider's answer is about the sub-merchant asked for; a direct merchant's names none.
    if ((f.sub_mch_id || undefined) !== subMchid && (f.sub_mch_id || f.result_code === 'SUCCESS')) {
      throw this.bad(call.path, `answer names sub_mch_id ${f.sub_mch_id || '(none)'}, the call was for ${subMchid ?? 'no sub-merchant'}`);
    }
    if (subAppid && f.sub_appid && f.sub_appid !== subAppid) throw this.bad(call.path, `answer names sub_appid ${f.sub_appid}, the call was for ${subAppid}`);
    if (subAppid && !f.sub_appid) f.sub_appid = subAppid;
    if (f.result_code !== 'SUCCESS') {
      const error = v2BusinessError(f.err_code, f.err_code_des);
      const level = error.httpStatus === 404 ? 'log' : 'warn';
      this.logger[level](`POST ${call.path}: result_code ${f.result_code ?? '(none)'} ${f.err_code ?? ''}: ${f.err_code_des ?? ''}`);
      throw error;
    }
    return f;
  }

  private parse(body: Buffer, path: string): V2Fields {
    try {
      return parseV2Xml(body);
    } catch (error) {
      if (error instanceof V2XmlError) throw this.bad(path, `answer is not APIv2 XML: ${error.message}`);
      throw error;
    }
  }

  /** An answer with return_code SUCCESS must carry a sign made with our key. */
  private verify(f: V2Fields, path: string): void {
    if (!f.sign) throw this.bad(path, 'answer is not signed');
    const type = receivedSignType(f, this.options.signType);
    if (!type || !verifyV2(f, this.options.apiKey, type)) throw this.bad(path, 'answer sign does not match (forged, or another API key)');
  }

  private bad(path: string, message: string): WechatPayBadAnswerError {
    this.logger.error(`POST ${path}: ${message}`);
    return new WechatPayBadAnswerError('bad_signature', message);
  }

  /** The bases a call is tried at, in order: the primary (the secapi base for certificate calls), then the backup. */
  private basesFor(secure: boolean): string[] {
    const configured = secure ? this.options.secureBaseUrl : undefined;
    const primary = configured === undefined ? this.options.baseUrl : typeof configured === 'function' ? configured() : configured;
    const bases = [primary];
    // A secapi base of its own has no backup; the API base's backup serves both otherwise.
    if (primary === this.options.baseUrl && this.options.backupBaseUrl && this.options.backupBaseUrl !== primary) bases.push(this.options.backupBaseUrl);
    return bases;
  }

  private async post(path: string, xml: string, idempotent: boolean, secure: boolean): Promise<TransportResponse> {
    const bases = this.basesFor(secure);
    const body = Buffer.from(xml, 'utf8');
    for (let i = 0; ; i++) {
      const url = new URL(bases[i] + path);
      const agent = secure && url.protocol === 'https:' ? this.requireSecureAgent(path) : undefined;
      const started = Date.now();
      try {
        const res = await send({
          method: 'POST',
          url,
          headers: { 'Content-Type': 'text/xml; charset=utf-8', Accept: 'text/xml, text/plain, */*', 'User-Agent': USER_AGENT },
          body,
          timeoutMs: this.options.timeoutMs,
          agent,
        });
        this.options.observe?.({ api: 'pay', endpoint: `v2${path}`, status: String(res.status), durationMs: Date.now() - started });
        this.logger.log(`POST ${redactUrl(url.pathname)} -> ${res.status} ${Date.now() - started}ms`);
        return res;
      } catch (error) {
        if (!(error instanceof TransportError)) throw error;
        this.options.observe?.({ api: 'pay', endpoint: `v2${path}`, status: error.timedOut ? 'timeout' : 'network_error', durationMs: Date.now() - started });
        const canFailOver = i + 1 < bases.length && (!error.sent || idempotent);
        this.logger.warn(`POST ${path} to ${url.host} failed: ${error.message}${canFailOver ? '; trying the backup domain' : ''}`);
        if (!canFailOver) throw new WechatPayNetworkError(`POST ${path}: ${error.message}`, error.sent, error.timedOut, error.code);
      }
    }
  }

  private requireSecureAgent(path: string): https.Agent {
    if (!this.secureAgent) throw new Error(`${path} needs the merchant API certificate (WECHATPAY_CERT_PATH) for mutual TLS`);
    return this.secureAgent;
  }
}

/**
 * ` (<title>)` of an HTML error page, e.g. WeChat's front refusing a missing or wrong client certificate
 * ("400 No required SSL certificate was sent", "400 The SSL certificate error"); '' otherwise.
 */
function htmlTitle(body: Buffer): string {
  const title = /<title>([^<]{1,200})<\/title>/i.exec(body.subarray(0, 1024).toString('utf8'))?.[1]?.trim();
  return title ? ` (${title})` : '';
}

function invalid(api: string, field: string): WechatPayApiError {
  return new WechatPayApiError(200, 'INVALID_RESPONSE', `${api} answer lacks ${field}`);
}
