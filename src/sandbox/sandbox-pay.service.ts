import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { SandboxPartnerInfo, checkBound, checkRefundSubMchid, notAProvider, partnerView } from './sandbox-partner';
import { X509Certificate, constants, createCipheriv, createHash, publicEncrypt, randomBytes, randomInt } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, realpath, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, gzipSync } from 'node:zlib';
import { beijingDate, beijingDateTime, beijingTime, encryptForMerchant } from './sandbox-crypto';
import { SandboxControlError, SandboxPayError, payError } from './sandbox-errors';
import { SandboxClock } from './sandbox-clock';
import { SandboxNotifier } from './sandbox-notifier.service';
import { SandboxSettings } from './sandbox.settings';
import { BillToken, SandboxRefund, SandboxRefundStatus, SandboxState, SandboxTradeState, SandboxTradeType, SandboxTransaction } from './sandbox.state';
import {
  DEFAULT_RATE,
  FundFlowRow,
  TRADE_BILL_ALL_HEADER,
  TradeBillRow,
  addToTotals,
  defaultFeeMilliFen,
  emptyTotals,
  renderFundFlowBill,
  summaryLines,
  tradeBillLine,
} from './bills/trade-bill';

const OUT_TRADE_NO = /^[0-9A-Za-z_\-|*]{6,32}$/;
const OUT_REFUND_NO = /^[0-9A-Za-z_\-|*@]{1,64}$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const PREPAY_LIFETIME_MS = 2 * 3600_000;
/** An h5_url (MWEB) opens the cashier for 5 minutes; a prepay_id and a code_url live 2 hours. */
const H5_URL_LIFETIME_MS = 5 * 60_000;
/** Who pays an MWEB or NATIVE order when the tester does not say (no openid at prepay). */
export const DEFAULT_SANDBOX_PAYER = 'o_sandbox_payer';
const CODE_URL = /^weixin:\/\/wxpay\/bizpayurl\?pr=([0-9A-Za-z]{1,32})$/;
/** Download tokens kept at once (each holds its frozen bill); the oldest go first. */
const MAX_BILL_TOKENS = 64;

/** What query answers say for each trade_state (trade_state_desc). */
const TRADE_STATE_DESC: Record<SandboxTradeState, string> = {
  NOTPAY: '订单未支付',
  USERPAYING: '需要用户输入支付密码',
  SUCCESS: '支付成功',
  REFUND: '转入退款',
  CLOSED: '订单已关闭',
  PAYERROR: '支付失败，请重新下单支付',
};

/** WeChat's answer to /v3/certificates for a merchant that only has the WeChat Pay public key. */
export const NO_PLATFORM_CERTIFICATE =
  '无可用的平台证书，请在商户平台-API安全申请使用微信支付公钥。可查看指引https://pay.weixin.qq.com/doc/v3/merchant/4012153196';

/** Why a payment attempt was refused (the cashier maps these to HTTP statuses). */
export type PayProblem = 'NOT_FOUND' | 'EXPIRED' | 'WRONG_PAYER' | 'PAID' | 'CLOSED' | 'PAYERROR';

function isUnpaid(state: SandboxTradeState): boolean {
  return state === 'NOTPAY' || state === 'USERPAYING' || state === 'PAYERROR';
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function requireString(body: Json, field: string, max: number, min = 1): string {
  const value = body[field];
  if (value === undefined || value === null) throw payError.param(`输入源“/body/${field}”映射到字段“${field}”必填性规则校验失败，此字段为必填项`, `/${field}`);
  if (typeof value !== 'string') throw payError.param(`字段 ${field} 类型错误，应为字符串`, `/${field}`, value);
  if (value.length < min || value.length > max) throw payError.param(`字段 ${field} 长度应在 ${min} 到 ${max} 之间`, `/${field}`, value);
  return value;
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (isObject(value)) {
    return `{${Object.keys(value)
      .sort()
      .filter((k) => value[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

function digits(n: number): string {
  let out = '';
  for (let i = 0; i < n; i++) out += String(randomInt(10));
  return out;
}

/**
 * WeChat Pay's side of the APIv3 business: JSAPI prepay, queries, close, refunds, bills. Request
 * signatures are checked by the controller before anything here runs.
 */
@Injectable()
export class SandboxPayService implements OnModuleDestroy {
  private readonly refundTimers = new Set<NodeJS.Timeout>();
  /** Outcome forced on the next refunds (control API): ABNORMAL / CLOSED instead of SUCCESS. */
  private readonly nextRefundOutcomes: Array<Exclude<SandboxRefundStatus, 'PROCESSING'>> = [];
  /** Control API: the merchant's balance cannot cover refunds (403 NOT_ENOUGH) until turned off. */
  private insufficientBalance = false;
  /** Gzip files registered as the ALL trade bill of a date (control API), by date (`<date>/<sub_mchid>`: one sub-merchant's bill). */
  private readonly externalBills = new Map<string, { path: string; hash: string }>();
  /** Control API: how many of the next bill files downloaded come with one byte changed (a tampered file). */
  private tamperNextBillFiles = 0;
  /** Control API: sub-merchant fund-flow bills are cut into parts of at most this many bytes (0: one part). */
  private subMerchantBillPartBytes = 0;
  private certificateValidity?: { from: number; to: number };

  constructor(
    private readonly state: SandboxState,
    private readonly settings: SandboxSettings,
    private readonly clock: SandboxClock,
    private readonly notifier: SandboxNotifier,
  ) {}

  get mchid(): string {
    return this.settings.keystore.mchid;
  }

  get appid(): string {
    return this.settings.keystore.appid;
  }

  // ---------------------------------------------------------------- prepay

  /** The appids bound to the merchant: the official account's, and the mini-program's when one is registered. */
  private boundAppids(tradeType: SandboxTradeType): string[] {
    return tradeType === 'JSAPI' ? [this.appid, this.settings.miniprogram.appid] : [this.appid];
  }

  /** The pr token of a code_url (weixin://wxpay/bizpayurl?pr=…), or undefined when it is not one. */
  static codeToken(codeUrl: string): string | undefined {
    return CODE_URL.exec(codeUrl)?.[1];
  }

  /**
   * JSAPI, H5 (MWEB) and Native prepay: one transaction core, three request shapes. JSAPI needs
   * payer.openid; H5 needs scene_info with payer_client_ip and h5_info.type; Native needs neither.
   * Answers prepay_id, h5_url (the sandbox's H5 cashier, `sandboxBase` + /h5pay) or code_url.
   */
  prepay(body: unknown, tradeType: SandboxTradeType = 'JSAPI', sandboxBase = '', alsoBound: string[] = []): { prepay_id: string } | { h5_url: string } | { code_url: string } {
    const prepayId = this.prepayTransaction(body, tradeType, alsoBound);
    if (tradeType === 'MWEB') return { h5_url: `${sandboxBase}/h5pay?prepay_id=${prepayId}&package=${prepayId.slice(-10)}` };
    if (tradeType === 'NATIVE') return { code_url: `weixin://wxpay/bizpayurl?pr=${prepayId}` };
    return { prepay_id: prepayId };
  }

  /** `alsoBound`: appids bound for this request only (a partner prepay's sub_appid, checked by the partner front). */
  private prepayTransaction(body: unknown, tradeType: SandboxTradeType, alsoBound: string[] = []): string {
    if (!isObject(body)) throw payError.param('请求体必须是 JSON 对象');
    const appid = requireString(body, 'appid', 32);
    const mchid = requireString(body, 'mchid', 32);
    const description = requireString(body, 'description', 127);
    // WeChat counts bytes of UTF-8 and refuses 4-byte characters (emoji) outright.
    if (/[\u{10000}-\u{10FFFF}]/u.test(description)) {
      throw payError.param('字段 description 含有不支持的字符（如 emoji 等 4 字节 UTF-8 字符）', '/description', description);
    }
    if (Buffer.byteLength(description, 'utf8') > 127) {
      throw payError.param(`字段 description 长度不能超过 127 字节，当前 ${Buffer.byteLength(description, 'utf8')} 字节`, '/description', description);
    }
    const outTradeNo = requireString(body, 'out_trade_no', 32, 6);
    const notifyUrl = requireString(body, 'notify_url', 256);
    if (!OUT_TRADE_NO.test(outTradeNo)) {
      throw payError.param('out_trade_no 只能是 6-32 位数字、大小写字母、_-|*', '/out_trade_no', outTradeNo);
    }
    if (mchid !== this.mchid) throw new SandboxPayError(400, 'MCH_NOT_EXISTS', '商户号不存在');
    if (![...this.boundAppids(tradeType), ...alsoBound].includes(appid)) throw new SandboxPayError(400, 'APPID_MCHID_NOT_MATCH', 'appid和mch_id不匹配');
    let notify: URL;
    try {
      notify = new URL(notifyUrl);
    } catch {
      throw payError.param('notify_url 格式不正确', '/notify_url', notifyUrl);
    }
    if ((notify.protocol !== 'https:' && notify.protocol !== 'http:') || notify.search) {
      throw payError.param('notify_url 必须是 http(s) 地址且不能携带参数', '/notify_url', notifyUrl);
    }
    const amount = body.amount;
    if (!isObject(amount)) throw payError.param('amount 为必填项', '/amount');
    if (!Number.isInteger(amount.total) || (amount.total as number) <= 0) {
      throw payError.param('amount.total 必须是大于 0 的整数（单位：分）', '/amount/total', amount.total);
    }
    if (amount.currency !== undefined && amount.currency !== 'CNY') {
      throw payError.param('Currency code is invalid', '/amount/currency', amount.currency);
    }
    const payer = body.payer;
    if (tradeType === 'JSAPI' && (!isObject(payer) || typeof payer.openid !== 'string' || !payer.openid)) {
      throw new SandboxPayError(400, 'PARAM_ERROR', 'JSAPI支付必须传openid', { field: '/payer/openid', location: 'body' });
    }
    const scene = body.scene_info;
    if (tradeType === 'MWEB') {
      if (!isObject(scene)) throw payError.param('输入源“/body/scene_info”映射到字段“场景信息”必填性规则校验失败，此字段为必填项', '/scene_info');
      if (typeof scene.payer_client_ip !== 'string' || !scene.payer_client_ip) {
        throw payError.param('输入源“/body/scene_info/payer_client_ip”映射到字段“用户终端IP”必填性规则校验失败，此字段为必填项', '/scene_info/payer_client_ip');
      }
      const h5 = scene.h5_info;
      if (!isObject(h5) || typeof h5.type !== 'string' || !['Wap', 'iOS', 'Android'].includes(h5.type)) {
        throw payError.param('输入源“/body/scene_info/h5_info/type”映射到字段“场景类型”必填性规则校验失败，应为 iOS、Android 或 Wap', '/scene_info/h5_info/type', isObject(h5) ? h5.type : undefined);
      }
    }
    let timeExpire: number | undefined;
    if (body.time_expire !== undefined) {
      if (typeof body.time_expire !== 'string' || !RFC3339.test(body.time_expire)) {
        throw payError.param('time_expire 必须是 RFC3339 格式，如 2018-06-08T10:34:56+08:00', '/time_expire', body.time_expire);
      }
      timeExpire = Date.parse(body.time_expire);
    }
    if (body.attach !== undefined && (typeof body.attach !== 'string' || body.attach.length > 128)) {
      throw payError.param('attach 长度不能超过 128', '/attach');
    }

    // "Identical parameters" (protocol D.1) means all of them, notify_url included. The stored
    // fingerprint leaves notify_url out (it is stored beside it, and state files written before
    // this rule keep working), so the two are compared separately.
    const fingerprint = canonical({ ...body, notify_url: undefined });
    const now = this.clock.now();
    const existing = this.state.transactions.get(outTradeNo);
    if (existing) {
      this.refreshTransaction(existing);
      if (existing.state === 'SUCCESS' || existing.state === 'REFUND') throw new SandboxPayError(400, 'ORDER_PAID', '该订单已支付');
      if (existing.state === 'CLOSED') throw new SandboxPayError(400, 'ORDER_CLOSED', '该订单已关闭');
      if ((existing.tradeType ?? 'JSAPI') !== tradeType) throw payError.invalid('商户订单号重复（该订单已使用其他交易类型下单）');
      if (existing.fingerprint !== fingerprint || existing.notifyUrl !== notifyUrl) throw payError.invalid('请求重入时，参数与首次请求时不一致');
      const valid = existing.prepays.find((p) => now - p.issuedAt < this.prepayLifetime(existing));
      if (valid) return valid.prepayId;
      const prepayId = this.newPrepayId(tradeType);
      existing.prepays.push({ prepayId, issuedAt: now });
      this.state.prepayIds.set(prepayId, outTradeNo);
      this.state.changed();
      return prepayId;
    }
    if (timeExpire !== undefined && timeExpire <= now) throw payError.invalid('订单已过期（time_expire 早于当前时间）');
    const prepayId = this.newPrepayId(tradeType);
    this.state.addTransaction({
      appid,
      mchid,
      outTradeNo,
      description,
      fingerprint,
      notifyUrl,
      attach: body.attach as string | undefined,
      total: amount.total as number,
      currency: 'CNY',
      openid: tradeType === 'JSAPI' && isObject(payer) ? String(payer.openid) : '',
      tradeType,
      timeExpire,
      createdAt: now,
      prepays: [{ prepayId, issuedAt: now }],
      state: 'NOTPAY',
      ...(isObject(body.scene_info) && typeof body.scene_info.payer_client_ip === 'string' ? { payerClientIp: body.scene_info.payer_client_ip } : {}),
    });
    this.state.changed();
    return prepayId;
  }

  /** A prepay_id (JSAPI, MWEB — the h5_url carries it) or a code_url's pr token (NATIVE). */
  private newPrepayId(tradeType: SandboxTradeType = 'JSAPI'): string {
    if (tradeType === 'NATIVE') return randomBytes(6).toString('hex');
    const stamp = beijingDateTime(this.clock.now()).replace(/\D/g, '');
    return `wx${stamp}${randomBytes(9).toString('hex')}`.slice(0, 36);
  }

  private prepayLifetime(tx: SandboxTransaction): number {
    return tx.tradeType === 'MWEB' ? H5_URL_LIFETIME_MS : PREPAY_LIFETIME_MS;
  }

  /** An unpaid order past its time_expire (or 7 days) is CLOSED, as WeChat does on its own. */
  private refreshTransaction(tx: SandboxTransaction): void {
    if (!isUnpaid(tx.state)) return;
    const deadline = tx.timeExpire ?? tx.createdAt + 7 * 24 * 3600_000;
    if (this.clock.now() >= deadline) {
      tx.state = 'CLOSED';
      tx.closedAt = deadline;
      this.state.changed();
    }
  }

  // ---------------------------------------------------------------- queries and close

  /** The query's ?mchid: missing → PARAM_ERROR saying so (location "query"), another merchant → PARAM_ERROR. */
  private requireQueryMchid(mchid: string | undefined): void {
    if (mchid === undefined || mchid === '') {
      throw new SandboxPayError(400, 'PARAM_ERROR', '输入源“/querystring/mchid”映射到字段“直连商户号”必填性规则校验失败，此字段为必填项', {
        field: 'mchid',
        value: '',
        issue: 'mchid is missing',
        location: 'query',
      });
    }
    if (mchid !== this.mchid) throw new SandboxPayError(400, 'PARAM_ERROR', 'mchid 与请求商户不一致', { field: 'mchid', value: mchid, issue: 'mchid 与请求商户不一致', location: 'query' });
  }

  findByOutTradeNo(outTradeNo: string, mchid: string | undefined): SandboxTransaction {
    this.requireQueryMchid(mchid);
    const tx = this.state.transactions.get(outTradeNo);
    if (!tx) throw payError.notFound();
    this.refreshTransaction(tx);
    return tx;
  }

  findByTransactionId(transactionId: string, mchid: string | undefined): SandboxTransaction {
    this.requireQueryMchid(mchid);
    const outTradeNo = this.state.transactionIds.get(transactionId);
    if (!outTradeNo) throw payError.notFound();
    return this.state.transactions.get(outTradeNo)!;
  }

  transactionView(tx: SandboxTransaction): Json {
    const paid = tx.state === 'SUCCESS' || tx.state === 'REFUND';
    const view: Json = {
      appid: tx.appid,
      mchid: tx.mchid,
      out_trade_no: tx.outTradeNo,
      trade_state: tx.state,
      trade_state_desc: TRADE_STATE_DESC[tx.state],
      amount: paid
        ? { total: tx.total, payer_total: tx.total, currency: tx.currency, payer_currency: tx.currency }
        : { total: tx.total, currency: tx.currency },
      ...(tx.openid ? { payer: { openid: tx.openid } } : {}),
    };
    if (paid) {
      Object.assign(view, {
        transaction_id: tx.transactionId,
        trade_type: tx.tradeType ?? 'JSAPI',
        bank_type: tx.bankType ?? 'OTHERS',
        success_time: beijingTime(tx.successTime!),
        attach: tx.attach ?? '',
      });
    }
    return view;
  }

  close(outTradeNo: string, body: unknown): void {
    if (!isObject(body) || typeof body.mchid !== 'string') throw payError.param('mchid 为必填项', '/mchid');
    const tx = this.findByOutTradeNo(outTradeNo, body.mchid);
    if (tx.state === 'SUCCESS' || tx.state === 'REFUND') throw new SandboxPayError(400, 'ORDER_PAID', '订单已支付，不能关闭');
    if (tx.state !== 'CLOSED') {
      tx.state = 'CLOSED';
      tx.closedAt = this.clock.now();
      this.state.changed();
    }
  }

  // ---------------------------------------------------------------- paying (cashier / control)

  prepayInfo(prepayId: string): SandboxTransaction | undefined {
    const outTradeNo = this.state.prepayIds.get(prepayId);
    const tx = outTradeNo ? this.state.transactions.get(outTradeNo) : undefined;
    if (tx) this.refreshTransaction(tx);
    return tx;
  }

  prepayValid(tx: SandboxTransaction, prepayId: string): boolean {
    const record = tx.prepays.find((p) => p.prepayId === prepayId);
    return !!record && this.clock.now() - record.issuedAt < this.prepayLifetime(tx);
  }

  /**
   * The user confirms (or cancels, or fails) the payment in the cashier. Returns the JS bridge's
   * err_msg suffix: ok | cancel | fail, with a reason when it fails.
   */
  pay(
    prepayId: string,
    openid: string | undefined,
    outcome: 'success' | 'cancel' | 'fail' = 'success',
  ): { result: 'ok' | 'cancel' | 'fail'; reason?: string; problem?: PayProblem; transaction?: SandboxTransaction } {
    const tx = this.prepayInfo(prepayId);
    if (!tx) return { result: 'fail', problem: 'NOT_FOUND', reason: 'prepay_id 不存在' };
    const refuse = (problem: PayProblem, reason: string) => ({ result: 'fail' as const, problem, reason, transaction: tx });
    if (!this.prepayValid(tx, prepayId)) {
      return refuse('EXPIRED', tx.tradeType === 'MWEB' ? '支付链接已过期（h5_url 有效期 5 分钟）' : tx.tradeType === 'NATIVE' ? '二维码已过期（code_url 有效期 2 小时）' : 'prepay_id 已过期（有效期 2 小时）');
    }
    // JSAPI: only the user the order was made for may pay it; H5 and Native: whoever pays (scans).
    const payerFixed = (tx.tradeType ?? 'JSAPI') === 'JSAPI';
    if (payerFixed && openid !== undefined && openid !== tx.openid) return refuse('WRONG_PAYER', '支付用户与下单用户不一致（openid 不匹配）');
    if (tx.state === 'SUCCESS' || tx.state === 'REFUND') return refuse('PAID', '该订单已支付');
    if (tx.state === 'CLOSED') return refuse('CLOSED', '该订单已关闭或已过期');
    if (tx.state === 'PAYERROR') return refuse('PAYERROR', '该订单支付失败（PAYERROR），请重新下单支付');
    if (outcome === 'cancel') return { result: 'cancel', transaction: tx };
    if (outcome === 'fail') return { result: 'fail', reason: '支付失败（沙箱模拟：银行卡余额不足）', transaction: tx };
    if (!payerFixed) tx.openid = openid ?? (tx.openid || DEFAULT_SANDBOX_PAYER);
    this.markPaid(tx, this.clock.now());
    return { result: 'ok', transaction: tx };
  }

  private markPaid(tx: SandboxTransaction, at: number): void {
    tx.state = 'SUCCESS';
    tx.successTime = at;
    tx.bankType = 'OTHERS';
    tx.transactionId = `42000${digits(5)}${beijingDate(at).replace(/-/g, '')}${digits(10)}`;
    this.state.transactionIds.set(tx.transactionId, tx.outTradeNo);
    this.state.changed();
    this.notifier.enqueue({
      target: `transaction:${tx.outTradeNo}`,
      url: tx.notifyUrl,
      eventType: 'TRANSACTION.SUCCESS',
      summary: '支付成功',
      resourceType: 'transaction',
      resource: partnerView(this.transactionView(tx), tx, this.appid),
      v2: tx.v2,
    });
  }

  /** Control API: a paid transaction that never went through prepay (reconciliation tests). */
  inject(input: { outTradeNo: string; total: number; openid?: string; successTime?: number; notifyUrl?: string; description?: string }): SandboxTransaction {
    if (!OUT_TRADE_NO.test(input.outTradeNo)) throw payError.param('out_trade_no 格式不正确');
    if (!Number.isInteger(input.total) || input.total <= 0) throw payError.param('total 必须是正整数');
    const at = input.successTime ?? this.clock.now();
    const tx: SandboxTransaction = {
      appid: this.appid,
      mchid: this.mchid,
      outTradeNo: input.outTradeNo,
      description: input.description ?? 'injected',
      fingerprint: '',
      notifyUrl: input.notifyUrl ?? '',
      total: input.total,
      currency: 'CNY',
      openid: input.openid ?? 'o_sandbox_injected',
      createdAt: at,
      prepays: [],
      state: 'NOTPAY',
      injected: true,
    };
    this.state.addTransaction(tx);
    tx.state = 'SUCCESS';
    tx.successTime = at;
    tx.bankType = 'OTHERS';
    tx.transactionId = `42000${digits(5)}${beijingDate(at).replace(/-/g, '')}${digits(10)}`;
    this.state.transactionIds.set(tx.transactionId, tx.outTradeNo);
    this.state.changed();
    return tx;
  }

  /** Control API: change what WeChat recorded for an order (amount differences in reconciliation tests). */
  alter(outTradeNo: string, changes: { total?: number }): SandboxTransaction {
    const tx = this.state.transactions.get(outTradeNo);
    if (!tx) throw payError.notFound();
    if (changes.total !== undefined) tx.total = changes.total;
    this.state.changed();
    return tx;
  }

  /**
   * Control API: put an unpaid order into USERPAYING (the user is entering the password) or PAYERROR
   * (the bank refused), or back to NOTPAY, so clients can be tested against those states. A
   * USERPAYING order can still be paid; a PAYERROR one cannot (the merchant must order again).
   */
  setTradeState(outTradeNo: string, state: 'NOTPAY' | 'USERPAYING' | 'PAYERROR'): SandboxTransaction {
    const tx = this.state.transactions.get(outTradeNo);
    if (!tx) throw payError.notFound();
    this.refreshTransaction(tx);
    if (!isUnpaid(tx.state)) throw new SandboxControlError(`order ${outTradeNo} is ${tx.state}: only unpaid orders (NOTPAY, USERPAYING, PAYERROR) can change to ${state}`, 409);
    tx.state = state;
    this.state.changed();
    return tx;
  }

  // ---------------------------------------------------------------- refunds

  /** Control API: refunds answer 403 NOT_ENOUGH (merchant balance insufficient) while enabled. */
  setInsufficientBalance(enabled: boolean): void {
    this.insufficientBalance = enabled;
  }

  get balanceInsufficient(): boolean {
    return this.insufficientBalance;
  }

  forceNextRefundOutcome(outcome: Exclude<SandboxRefundStatus, 'PROCESSING'>, count = 1): void {
    for (let i = 0; i < count; i++) this.nextRefundOutcomes.push(outcome);
  }

  createRefund(body: unknown): SandboxRefund {
    if (!isObject(body)) throw payError.param('请求体必须是 JSON 对象');
    const outRefundNo = requireString(body, 'out_refund_no', 64);
    if (!OUT_REFUND_NO.test(outRefundNo)) throw payError.param('out_refund_no 只能是数字、大小写字母、_-|*@', '/out_refund_no', outRefundNo);
    let tx: SandboxTransaction | undefined;
    if (typeof body.transaction_id === 'string') {
      const no = this.state.transactionIds.get(body.transaction_id);
      tx = no ? this.state.transactions.get(no) : undefined;
    } else if (typeof body.out_trade_no === 'string') {
      tx = this.state.transactions.get(body.out_trade_no);
    } else {
      throw payError.param('transaction_id 和 out_trade_no 必须二选一', '/out_trade_no');
    }
    checkRefundSubMchid(tx, body.sub_mchid, 'body', this.settings.subMchids);
    const amount = body.amount;
    if (!isObject(amount)) throw payError.param('amount 为必填项', '/amount');
    if (!Number.isInteger(amount.refund) || (amount.refund as number) <= 0) throw payError.param('amount.refund 必须是大于 0 的整数', '/amount/refund', amount.refund);
    if (!Number.isInteger(amount.total) || (amount.total as number) <= 0) throw payError.param('amount.total 必须是大于 0 的整数', '/amount/total', amount.total);
    if (amount.currency !== 'CNY') throw payError.param('amount.currency 必须是 CNY', '/amount/currency', amount.currency);
    if (body.notify_url !== undefined && typeof body.notify_url !== 'string') throw payError.param('notify_url 格式不正确', '/notify_url');
    if (body.reason !== undefined && (typeof body.reason !== 'string' || body.reason.length > 80)) throw payError.param('reason 长度不能超过 80', '/reason');

    const fingerprint = canonical({ ...body, notify_url: undefined, reason: undefined });
    const existing = this.state.refunds.get(outRefundNo);
    if (existing) {
      if (existing.fingerprint !== fingerprint) throw payError.invalid('请求重入时，参数与首次请求时不一致');
      this.refreshRefund(existing);
      return existing;
    }
    if (!tx || (tx.state !== 'SUCCESS' && tx.state !== 'REFUND')) throw payError.resourceNotFound('订单不存在或未支付');
    if (amount.total !== tx.total) throw payError.invalid('订单金额（amount.total）与原订单金额不一致');
    const refunded = [...this.state.refunds.values()]
      .filter((r) => r.outTradeNo === tx!.outTradeNo && r.status !== 'CLOSED' && r.status !== 'ABNORMAL')
      .reduce((sum, r) => sum + r.refund, 0);
    if ((amount.refund as number) > tx.total - refunded) {
      const detail = `订单金额 ${tx.total} 分，已退及退款中 ${refunded} 分，本次申请 ${amount.refund} 分`;
      // The issue pins 403 NOT_ENOUGH; the protocol's error table (E.5) gives 400 INVALID_REQUEST for
      // "amount exceeds refundable" (NOT_ENOUGH being the merchant's balance): SANDBOX_OVER_REFUND_ERROR.
      if (this.settings.overRefundError === 'INVALID_REQUEST') throw payError.invalid(`申请退款金额超过订单可退金额：${detail}`);
      throw new SandboxPayError(403, 'NOT_ENOUGH', `可退金额不足：${detail}`);
    }
    if (this.insufficientBalance) throw new SandboxPayError(403, 'NOT_ENOUGH', '基本账户余额不足，请充值后重新发起');
    const now = this.clock.now();
    const refund: SandboxRefund = {
      refundId: `50${digits(6)}${beijingDate(now).replace(/-/g, '')}${digits(13)}`,
      outRefundNo,
      outTradeNo: tx.outTradeNo,
      transactionId: tx.transactionId!,
      fingerprint,
      reason: body.reason as string | undefined,
      notifyUrl: body.notify_url as string | undefined,
      refund: amount.refund as number,
      total: tx.total,
      currency: 'CNY',
      status: 'PROCESSING',
      createdAt: now,
      outcome: this.nextRefundOutcomes.shift() ?? 'SUCCESS',
      completesAt: now + this.settings.scaled(this.settings.refundDelayMs),
    };
    this.state.refunds.set(outRefundNo, refund);
    tx.state = 'REFUND';
    this.state.changed();
    const timer = setTimeout(() => {
      this.refundTimers.delete(timer);
      this.refreshRefund(refund, true);
    }, refund.completesAt - now);
    timer.unref();
    this.refundTimers.add(timer);
    return refund;
  }

  /** `subMchid`: the query's ?sub_mchid (a provider's query of a partner trade's refund must name it). */
  queryRefund(outRefundNo: string, subMchid?: unknown): SandboxRefund {
    const refund = this.state.refunds.get(outRefundNo);
    if (!refund) throw payError.resourceNotFound('退款单不存在');
    checkRefundSubMchid(this.state.transactions.get(refund.outTradeNo), subMchid, 'query', this.settings.subMchids);
    this.refreshRefund(refund);
    return refund;
  }

  private refreshRefund(refund: SandboxRefund, timerFired = false): void {
    if (refund.status !== 'PROCESSING') return;
    if (!timerFired && this.clock.now() < refund.completesAt) return;
    refund.status = refund.outcome;
    if (refund.status === 'SUCCESS') refund.successTime = this.clock.now();
    this.state.changed();
    if (refund.notifyUrl) {
      this.notifier.enqueue({
        target: `refund:${refund.outRefundNo}`,
        url: refund.notifyUrl,
        eventType: `REFUND.${refund.status}`,
        summary: refund.status === 'SUCCESS' ? '退款成功' : refund.status === 'CLOSED' ? '退款关闭' : '退款异常',
        resourceType: 'refund',
        resource: {
          ...this.refundMerchantFields(refund),
          transaction_id: refund.transactionId,
          out_trade_no: refund.outTradeNo,
          refund_id: refund.refundId,
          out_refund_no: refund.outRefundNo,
          refund_status: refund.status,
          ...(refund.successTime ? { success_time: beijingTime(refund.successTime) } : {}),
          user_received_account: '支付用户零钱',
          amount: { total: refund.total, refund: refund.refund, payer_total: refund.total, payer_refund: refund.refund },
        },
        v2: refund.v2 ? { signType: 'MD5', appid: this.state.transactions.get(refund.outTradeNo)?.appid } : undefined,
      });
    }
  }

  /** A refund notification names mchid, or for a partner trade sp_mchid + sub_mchid (as WeChat's partner refund notifications). */
  private refundMerchantFields(refund: SandboxRefund): Json {
    const partner = (this.state.transactions.get(refund.outTradeNo) as (SandboxTransaction & { partner?: SandboxPartnerInfo }) | undefined)?.partner;
    return partner ? { sp_mchid: this.mchid, sub_mchid: partner.subMchid } : { mchid: this.mchid };
  }

  refundView(refund: SandboxRefund): Json {
    return {
      refund_id: refund.refundId,
      out_refund_no: refund.outRefundNo,
      transaction_id: refund.transactionId,
      out_trade_no: refund.outTradeNo,
      channel: 'ORIGINAL',
      user_received_account: '支付用户零钱',
      ...(refund.successTime ? { success_time: beijingTime(refund.successTime) } : {}),
      create_time: beijingTime(refund.createdAt),
      status: refund.status,
      funds_account: 'AVAILABLE',
      amount: {
        total: refund.total,
        refund: refund.refund,
        from: [],
        payer_total: refund.total,
        payer_refund: refund.refund,
        settlement_refund: refund.refund,
        settlement_total: refund.total,
        discount_refund: 0,
        currency: refund.currency,
      },
      promotion_detail: [],
    };
  }

  // ---------------------------------------------------------------- bills

  private validateBillDate(value: unknown): string {
    if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(value) || Number.isNaN(Date.parse(`${value}T00:00:00+08:00`))) {
      throw new SandboxPayError(400, 'PARAM_ERROR', 'bill_date 格式应为 yyyy-MM-DD', { field: 'bill_date', value, location: 'query' });
    }
    const today = beijingDate(this.clock.now());
    if (value > today) throw new SandboxPayError(400, 'INVALID_REQUEST', '账单日期不能晚于今天');
    const oldest = beijingDate(this.clock.now() - 92 * 24 * 3600_000);
    if (value < oldest) throw new SandboxPayError(400, 'INVALID_REQUEST', '只能下载三个月以内的账单');
    return value;
  }

  /**
   * Applies for a bill and returns what WeChat answers, with a short-lived download token. The file
   * is built now and frozen behind the token: what is downloaded is exactly what `hash_value` was
   * computed over, whatever happens (payments, refunds, re-registrations) before the download.
   */
  applyBill(kind: 'trade' | 'fundflow', query: Record<string, unknown>, sandboxBase: string): Json {
    const billDate = this.validateBillDate(query.bill_date);
    let billType = 'ALL';
    if (kind === 'trade') {
      billType = (query.bill_type as string | undefined) ?? 'ALL';
      if (!['ALL', 'SUCCESS', 'REFUND'].includes(billType)) {
        throw new SandboxPayError(400, 'PARAM_ERROR', 'bill_type 只能是 ALL、SUCCESS 或 REFUND', { field: 'bill_type', value: billType, location: 'query' });
      }
    } else {
      billType = (query.account_type as string | undefined) ?? 'BASIC';
      if (!['BASIC', 'OPERATION', 'FEES'].includes(billType)) {
        throw new SandboxPayError(400, 'PARAM_ERROR', 'account_type 只能是 BASIC、OPERATION 或 FEES', { field: 'account_type', value: billType, location: 'query' });
      }
    }
    const tarType = query.tar_type as string | undefined;
    if (tarType !== undefined && tarType !== 'GZIP') {
      throw new SandboxPayError(400, 'PARAM_ERROR', 'tar_type 只能是 GZIP', { field: 'tar_type', value: tarType, location: 'query' });
    }
    // A provider's trade bill of one sub-merchant (sub_mchid); without it, every sub-merchant's trades.
    const subMchid = kind === 'trade' && query.sub_mchid !== undefined ? String(query.sub_mchid) : undefined;
    if (subMchid !== undefined && !this.settings.subMchids.includes(subMchid)) {
      throw payError.invalid('特约商户号与服务商商户号不存在绑定关系');
    }
    const external = kind === 'trade' && billType === 'ALL' ? this.externalBills.get(subMchid === undefined ? billDate : `${billDate}/${subMchid}`) : undefined;
    let plain: Buffer | undefined;
    if (!external) {
      if (kind === 'trade') {
        const rows = this.tradeRows(billDate, billType, subMchid);
        if (rows.length > 0) plain = this.renderTrade(rows);
      } else {
        const rows = this.fundRows(billDate);
        if (rows.length > 0) plain = this.renderFund(rows);
      }
      if (!plain) throw new SandboxPayError(400, 'NO_STATEMENT_EXIST', '账单日期没有交易，不会生成账单文件');
    }
    this.pruneBillTokens();
    const token = randomBytes(24).toString('base64url');
    const gzip = tarType === 'GZIP';
    const hashValue = external ? external.hash : createHash('sha1').update(plain!).digest('hex');
    this.state.billTokens.set(token, {
      token,
      kind,
      billDate,
      billType,
      gzip,
      expiresAt: this.clock.now() + this.settings.billUrlTtlMs,
      hash: hashValue,
      ...(external ? { externalPath: external.path } : { plain }),
    });
    return {
      hash_type: 'SHA1',
      hash_value: hashValue,
      download_url: `${sandboxBase}/v3/billdownload/file?token=${token}${gzip ? '&tartype=gzip' : ''}`,
    };
  }

  /**
   * 申请单个子商户资金账单 (GET /v3/bill/sub-merchant-fundflowbill): the provider asks for one bound
   * sub-merchant's fund flow (its trades' and refunds' movements). The answer is a download list: each
   * part (bill_sequence from 1; the file is cut when the control API asks for small parts, as WeChat
   * cuts a file past ~16 GB) is gzipped when tar_type=GZIP, then encrypted with AEAD_AES_256_GCM under
   * its own random key (32 characters, used as their bytes) and nonce (16 characters, the IV; no
   * associated data; the 16-byte tag at the end). encrypt_key is that key RSA-OAEP-encrypted (SHA-1,
   * as WeChat's privacy encryption) with the merchant's API public key, so only its private key opens
   * it; hash_value is the SHA-1 of the part's plain (decrypted, uncompressed) text.
   */
  applySubMerchantFundFlowBill(query: Record<string, unknown>, sandboxBase: string): Json {
    // A provider's API: a direct merchant has no such product.
    if (this.settings.merchantKind === 'direct') throw notAProvider();
    const subMchid = query.sub_mchid;
    if (typeof subMchid !== 'string' || !subMchid) {
      throw new SandboxPayError(400, 'PARAM_ERROR', '输入源“/querystring/sub_mchid”映射到字段“子商户号”必填性规则校验失败，此字段为必填项', { field: 'sub_mchid', location: 'query' });
    }
    const billDate = this.validateBillDate(query.bill_date);
    const accountType = query.account_type;
    if (typeof accountType !== 'string' || !['BASIC', 'OPERATION', 'FEES'].includes(accountType)) {
      throw new SandboxPayError(400, 'PARAM_ERROR', 'account_type 必填，只能是 BASIC、OPERATION 或 FEES', { field: 'account_type', value: accountType, location: 'query' });
    }
    const algorithm = query.algorithm;
    if (algorithm !== 'AEAD_AES_256_GCM') {
      throw new SandboxPayError(400, 'PARAM_ERROR', algorithm === 'SM4_GCM' ? '沙箱只支持 AEAD_AES_256_GCM 加密算法' : 'algorithm 必填，只能是 AEAD_AES_256_GCM 或 SM4_GCM', {
        field: 'algorithm',
        value: algorithm,
        location: 'query',
      });
    }
    const tarType = query.tar_type as string | undefined;
    if (tarType !== undefined && tarType !== 'GZIP') {
      throw new SandboxPayError(400, 'PARAM_ERROR', 'tar_type 只能是 GZIP', { field: 'tar_type', value: tarType, location: 'query' });
    }
    checkBound(subMchid, this.settings.subMchids);
    const rows = this.fundRows(billDate, subMchid);
    if (!rows.length) throw new SandboxPayError(400, 'NO_STATEMENT_EXIST', '账单日期没有资金流水，不会生成账单文件');
    const plain = this.renderFund(rows);
    const size = this.subMerchantBillPartBytes > 0 ? this.subMerchantBillPartBytes : plain.length;
    const merchantKey = this.settings.keystore.merchant.publicKeyPem;
    this.pruneBillTokens();
    const list: Json[] = [];
    for (let offset = 0, sequence = 1; offset < plain.length; offset += size, sequence++) {
      const part = plain.subarray(offset, offset + size);
      const key = randomBytes(24).toString('base64'); // 32 characters
      const nonce = randomBytes(8).toString('hex'); // 16 characters
      const cipher = createCipheriv('aes-256-gcm', Buffer.from(key, 'utf8'), Buffer.from(nonce, 'utf8'));
      const body = tarType === 'GZIP' ? gzipSync(part) : part;
      const encrypted = Buffer.concat([cipher.update(body), cipher.final(), cipher.getAuthTag()]);
      const hash = createHash('sha1').update(part).digest('hex');
      const token = randomBytes(24).toString('base64url');
      this.state.billTokens.set(token, {
        token,
        kind: 'sub-merchant-fundflow',
        billDate,
        billType: accountType,
        gzip: tarType === 'GZIP',
        expiresAt: this.clock.now() + this.settings.billUrlTtlMs,
        hash,
        encrypted,
      });
      list.push({
        bill_sequence: sequence,
        download_url: `${sandboxBase}/v3/billdownload/file?token=${token}`,
        encrypt_key: publicEncrypt({ key: merchantKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, Buffer.from(key, 'utf8')).toString('base64'),
        hash_type: 'SHA1',
        hash_value: hash,
        nonce,
      });
    }
    return { download_bill_count: list.length, download_bill_list: list };
  }

  /** Control API: the next `count` bill files downloaded have one byte changed (0 turns it off). */
  tamperBillFiles(count: number): void {
    this.tamperNextBillFiles = count;
  }

  /** Control API: cut sub-merchant fund-flow bills into parts of at most `bytes` (0: one part). */
  setSubMerchantBillPartBytes(bytes: number): void {
    this.subMerchantBillPartBytes = bytes;
  }

  /** Drops expired download tokens (and their frozen files), then the oldest beyond the cap. */
  private pruneBillTokens(): void {
    const now = this.clock.now();
    for (const [token, entry] of this.state.billTokens) {
      if (now > entry.expiresAt) this.state.billTokens.delete(token);
    }
    for (const token of this.state.billTokens.keys()) {
      if (this.state.billTokens.size < MAX_BILL_TOKENS) break;
      this.state.billTokens.delete(token);
    }
  }

  /**
   * Control API (benchmarks, big-bill tests): serve a gzip file as the ALL trade bill of `date`. Only
   * files inside the app's DATA_DIR are accepted (the sandbox's own directory is DATA_DIR/sandbox):
   * the path is resolved against DATA_DIR and through every symlink, and must still be inside it.
   * Its SHA-1 is computed over the uncompressed content, as WeChat's is.
   */
  /**
   * Registers a gzip trade bill inside DATA_DIR. Errors name only what the caller sent (or a path
   * relative to DATA_DIR), never an absolute path: a path outside DATA_DIR is refused before the disk
   * is touched, so the answer says nothing about what exists out there, and fs errors (which carry
   * the resolved absolute path) are reduced to their code.
   */
  async registerTradeBillFile(date: string, requested: string, subMchid?: string): Promise<{ path: string; hash: string; bytes: number }> {
    const shown = JSON.stringify(requested.length > 200 ? `${requested.slice(0, 200)}…` : requested);
    const outsideError = () =>
      new SandboxControlError(`${shown} is outside DATA_DIR: only bill files inside the data directory can be registered (give a path relative to DATA_DIR)`);
    const escapes = (rel: string) => rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel);
    const root = resolve(this.settings.appDataDir);
    let realRoot: string;
    try {
      realRoot = await realpath(root);
    } catch {
      throw new SandboxControlError('the data directory (DATA_DIR) does not exist');
    }
    const lexical = resolve(root, requested);
    // Absolute paths may name DATA_DIR as configured or as resolved (DATA_DIR itself behind a symlink).
    if (escapes(relative(root, lexical)) && escapes(relative(realRoot, lexical))) throw outsideError();
    let real: string;
    try {
      real = await realpath(lexical);
    } catch {
      throw new SandboxControlError(`${shown} does not exist in DATA_DIR (relative paths are resolved inside DATA_DIR)`);
    }
    const rel = relative(realRoot, real);
    // A symlink inside DATA_DIR that leads out: refused like any other outside path, target not named.
    if (escapes(rel)) throw outsideError();
    const fsCode = (error: unknown) => (error as NodeJS.ErrnoException).code ?? 'unreadable';
    try {
      if (!(await stat(real)).isFile()) throw new SandboxControlError(`${shown} is not a regular file`);
      const magic = Buffer.alloc(2);
      const handle = await open(real, 'r');
      try {
        await handle.read(magic, 0, 2, 0);
      } finally {
        await handle.close();
      }
      if (magic[0] !== 0x1f || magic[1] !== 0x8b) throw new SandboxControlError(`${shown} is not a gzip file (a .gz trade bill is expected)`);
    } catch (error) {
      if (error instanceof SandboxControlError) throw error;
      throw new SandboxControlError(`cannot read ${shown} (${fsCode(error)})`);
    }
    const hash = createHash('sha1');
    let bytes = 0;
    try {
      await pipeline(createReadStream(real), createGunzip(), async (source: AsyncIterable<Buffer>) => {
        for await (const chunk of source) {
          hash.update(chunk);
          bytes += chunk.length;
        }
      });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new SandboxControlError(`${shown} is not a valid gzip file${code ? ` (${code})` : ''}`);
    }
    const entry = { path: real, hash: hash.digest('hex') };
    this.externalBills.set(subMchid === undefined ? date : `${date}/${subMchid}`, entry);
    return { path: rel.split(sep).join('/'), hash: entry.hash, bytes };
  }

  /** The file behind a download token, exactly as frozen when applied for: plain CSV or gzip (not signed). */
  billFile(token: string | undefined): Buffer | Readable {
    const entry: BillToken | undefined = token ? this.state.billTokens.get(token) : undefined;
    if (!entry) throw new SandboxPayError(400, 'INVALID_REQUEST', '下载地址无效（token 不存在）');
    if (this.clock.now() > entry.expiresAt) {
      this.state.billTokens.delete(entry.token);
      throw new SandboxPayError(400, 'INVALID_REQUEST', '下载地址已过期，请重新申请账单');
    }
    if (entry.externalPath) return entry.gzip ? createReadStream(entry.externalPath) : createReadStream(entry.externalPath).pipe(createGunzip());
    const file = entry.encrypted ?? (entry.gzip ? gzipSync(entry.plain!) : entry.plain!);
    if (this.tamperNextBillFiles > 0 && file.length > 0) {
      this.tamperNextBillFiles--;
      const tampered = Buffer.from(file);
      tampered[Math.floor(tampered.length / 2)] ^= 0x01;
      return tampered;
    }
    return file;
  }

  private renderTrade(rows: TradeBillRow[]): Buffer {
    const totals = emptyTotals();
    let text = '\uFEFF' + TRADE_BILL_ALL_HEADER.join(',') + '\r\n';
    for (const row of rows) {
      addToTotals(totals, row);
      text += tradeBillLine(row);
    }
    return Buffer.from(text + summaryLines(totals), 'utf8');
  }

  private renderFund(rows: FundFlowRow[]): Buffer {
    return Buffer.from(renderFundFlowBill(rows), 'utf8');
  }

  /** `subMchid`: only that sub-merchant's trades (a provider's per-sub-merchant bill). */
  tradeRows(billDate: string, billType: string, subMchid?: string): TradeBillRow[] {
    const rows: Array<TradeBillRow & { at: number }> = [];
    const subOf = (tx: SandboxTransaction) => (tx as SandboxTransaction & { partner?: SandboxPartnerInfo }).partner?.subMchid;
    const included = (tx: SandboxTransaction) => subMchid === undefined || subOf(tx) === subMchid;
    if (billType === 'ALL' || billType === 'SUCCESS') {
      for (const tx of this.state.transactions.values()) {
        if (!tx.successTime || beijingDate(tx.successTime) !== billDate || !included(tx)) continue;
        rows.push({
          at: tx.successTime,
          time: beijingDateTime(tx.successTime),
          appid: tx.appid,
          mchid: tx.mchid,
          ...(subOf(tx) ? { subMchid: subOf(tx) } : {}),
          transactionId: tx.transactionId!,
          outTradeNo: tx.outTradeNo,
          openid: tx.openid,
          tradeType: tx.tradeType ?? 'JSAPI',
          tradeState: 'SUCCESS',
          bankType: tx.bankType ?? 'OTHERS',
          total: tx.total,
          body: tx.description,
          attach: tx.attach,
          feeMilliFen: defaultFeeMilliFen(tx.total),
          rate: DEFAULT_RATE,
        });
      }
    }
    if (billType === 'ALL' || billType === 'REFUND') {
      for (const refund of this.state.refunds.values()) {
        if (refund.status !== 'SUCCESS' || !refund.successTime || beijingDate(refund.successTime) !== billDate) continue;
        const tx = this.state.transactions.get(refund.outTradeNo)!;
        if (!included(tx)) continue;
        rows.push({
          at: refund.successTime,
          time: beijingDateTime(refund.successTime),
          appid: tx.appid,
          mchid: tx.mchid,
          ...(subOf(tx) ? { subMchid: subOf(tx) } : {}),
          transactionId: refund.transactionId,
          outTradeNo: refund.outTradeNo,
          openid: tx.openid,
          tradeType: tx.tradeType ?? 'JSAPI',
          tradeState: 'REFUND',
          bankType: tx.bankType ?? 'OTHERS',
          total: tx.total,
          refundId: refund.refundId,
          outRefundNo: refund.outRefundNo,
          refund: refund.refund,
          refundStatus: 'SUCCESS',
          body: tx.description,
          attach: tx.attach,
          feeMilliFen: -defaultFeeMilliFen(refund.refund),
          rate: DEFAULT_RATE,
        });
      }
    }
    return rows.sort((a, b) => a.at - b.at);
  }

  /** `subMchid`: only that sub-merchant's movements (its trades and their refunds). */
  private fundRows(billDate: string, subMchid?: string): FundFlowRow[] {
    const events: Array<{ at: number; row: Omit<FundFlowRow, 'balance'> }> = [];
    const included = (tx: SandboxTransaction | undefined) => subMchid === undefined || (tx as (SandboxTransaction & { partner?: SandboxPartnerInfo }) | undefined)?.partner?.subMchid === subMchid;
    for (const tx of this.state.transactions.values()) {
      if (!tx.successTime || beijingDate(tx.successTime) !== billDate || !included(tx)) continue;
      events.push({
        at: tx.successTime,
        row: { time: beijingDateTime(tx.successTime), businessId: tx.transactionId!, flowId: `FL${tx.transactionId}`, name: '交易', type: '交易', direction: '收入', amount: tx.total, applicant: '系统', remark: tx.description, voucher: tx.outTradeNo },
      });
    }
    for (const refund of this.state.refunds.values()) {
      if (refund.status !== 'SUCCESS' || !refund.successTime || beijingDate(refund.successTime) !== billDate) continue;
      if (!included(this.state.transactions.get(refund.outTradeNo))) continue;
      events.push({
        at: refund.successTime,
        row: { time: beijingDateTime(refund.successTime), businessId: refund.refundId, flowId: `FL${refund.refundId}`, name: '退款', type: '退款', direction: '支出', amount: refund.refund, applicant: this.mchid, remark: refund.reason ?? '', voucher: refund.outRefundNo },
      });
    }
    let balance = 0;
    return events
      .sort((a, b) => a.at - b.at)
      .map(({ row }) => {
        balance += row.direction === '收入' ? row.amount : -row.amount;
        return { ...row, balance };
      });
  }

  /**
   * The platform certificate, encrypted with the APIv3 key, with the certificate's own validity period.
   * A merchant in pure public-key mode has none: WeChat answers 404 RESOURCE_NOT_EXISTS with this
   * message (as quoted from real answers in wechatpay-java #306/#400 and wechatpay-go #251).
   */
  certificatesView(): Json {
    if (this.settings.signMode === 'public_key') throw payError.resourceNotFound(NO_PLATFORM_CERTIFICATE);
    const ks = this.settings.keystore;
    if (!this.certificateValidity) {
      const cert = new X509Certificate(ks.platform.certificatePem);
      this.certificateValidity = { from: Date.parse(cert.validFrom), to: Date.parse(cert.validTo) };
    }
    return {
      data: [
        {
          serial_no: ks.platform.serial,
          effective_time: beijingTime(this.certificateValidity.from),
          expire_time: beijingTime(this.certificateValidity.to),
          encrypt_certificate: encryptForMerchant(ks.apiv3Key, ks.platform.certificatePem, 'certificate'),
        },
      ],
    };
  }

  /** Control reset: forced refund outcomes, pending refund timers, the balance switch, registered bill files, bill tampering and part size. */
  reset(): void {
    this.nextRefundOutcomes.length = 0;
    for (const timer of this.refundTimers) clearTimeout(timer);
    this.refundTimers.clear();
    this.insufficientBalance = false;
    this.externalBills.clear();
    this.tamperNextBillFiles = 0;
    this.subMerchantBillPartBytes = 0;
  }

  onModuleDestroy(): void {
    this.reset();
  }
}
