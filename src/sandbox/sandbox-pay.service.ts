import { Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { partnerView } from './sandbox-partner';
import { Json, canonical, digits, isObject, requireString } from './sandbox-pay-input';
import { beijingDate, beijingDateTime, beijingTime } from './sandbox-crypto';
import { SandboxControlError, SandboxPayError, payError } from './sandbox-errors';
import { SandboxClock } from './sandbox-clock';
import { SandboxNotifier } from './sandbox-notifier.service';
import { SandboxSettings } from './sandbox.settings';
import { SandboxState, SandboxTradeState, SandboxTradeType, SandboxTransaction } from './sandbox.state';

const OUT_TRADE_NO = /^[0-9A-Za-z_\-|*]{6,32}$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const PREPAY_LIFETIME_MS = 2 * 3600_000;
/** An h5_url (MWEB) opens the cashier for 5 minutes; a prepay_id and a code_url live 2 hours. */
const H5_URL_LIFETIME_MS = 5 * 60_000;
/** Who pays an MWEB or NATIVE order when the tester does not say (no openid at prepay). */
export const DEFAULT_SANDBOX_PAYER = 'o_sandbox_payer';
const CODE_URL = /^weixin:\/\/wxpay\/bizpayurl\?pr=([0-9A-Za-z]{1,32})$/;

/** What query answers say for each trade_state (trade_state_desc). */
const TRADE_STATE_DESC: Record<SandboxTradeState, string> = {
  NOTPAY: '订单未支付',
  USERPAYING: '需要用户输入支付密码',
  SUCCESS: '支付成功',
  REFUND: '转入退款',
  CLOSED: '订单已关闭',
  PAYERROR: '支付失败，请重新下单支付',
};

/** Why a payment attempt was refused (PAY_PROBLEM_STATUS: their HTTP statuses). */
export type PayProblem = 'NOT_FOUND' | 'EXPIRED' | 'WRONG_PAYER' | 'PAID' | 'CLOSED' | 'PAYERROR';

/** The HTTP status of a payment the sandbox's WeChat refuses (the cashier's POST /sandbox/pay, the mini-program's requestPayment). */
export const PAY_PROBLEM_STATUS: Record<PayProblem, number> = {
  NOT_FOUND: 404,
  WRONG_PAYER: 403,
  EXPIRED: 409,
  PAID: 409,
  CLOSED: 409,
  PAYERROR: 409,
};

function isUnpaid(state: SandboxTradeState): boolean {
  return state === 'NOTPAY' || state === 'USERPAYING' || state === 'PAYERROR';
}

/**
 * WeChat Pay's transaction core (APIv3, and under the APIv2 and partner fronts): JSAPI, H5 and
 * Native prepay, queries, close, paying (cashier, control API) and the control API's changes to
 * transactions. Refunds are SandboxRefundsService's, bills SandboxBillsService's, /v3/certificates
 * SandboxCertificatesService's. Request signatures are checked by the controller before anything here runs.
 */
@Injectable()
export class SandboxPayService {
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
    this.recordSuccess(tx, at);
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

  /** SUCCESS at `at`, with a new transaction_id (paid in the cashier, or injected by the control API). */
  private recordSuccess(tx: SandboxTransaction, at: number): void {
    tx.state = 'SUCCESS';
    tx.successTime = at;
    tx.bankType = 'OTHERS';
    tx.transactionId = `42000${digits(5)}${beijingDate(at).replace(/-/g, '')}${digits(10)}`;
    this.state.transactionIds.set(tx.transactionId, tx.outTradeNo);
    this.state.changed();
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
    this.recordSuccess(tx, at);
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
}
