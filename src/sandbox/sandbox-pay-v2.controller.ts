import { Controller, HttpCode, Logger, Post, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { sandboxApiV2Key } from './keystore';
import { sandboxPrefixOf } from './root-alias';
import { SandboxPayError } from './sandbox-errors';
import { SandboxHttp, type RawRequest } from './sandbox-http';
import type { SandboxEndpoint } from './sandbox-faults';
import { checkBound, checkRefundSubMchid, partnerOf } from './sandbox-partner';
import { SandboxPartnerService } from './sandbox-partner.service';
import { SandboxPayService } from './sandbox-pay.service';
import { SandboxBillsService } from './sandbox-bills.service';
import { SandboxRefundsService } from './sandbox-refunds.service';
import { SandboxSecapiServer, secapiClientOf } from './sandbox-secapi.server';
import { SandboxSettings } from './sandbox.settings';
import { SandboxRefund, SandboxState, SandboxTradeType, SandboxTransaction } from './sandbox.state';
import { SandboxV2SignType, sandboxNonce, sandboxParseV2, sandboxV2Sign, sandboxV2SignOk, sandboxV2TimeOf, sandboxXml } from './sandbox-v2-wire';

const MAX_BODY_BYTES = 1024 * 1024;

type Fields = Record<string, string>;

/** A refusal at WeChat's communication level: return_code FAIL, unsigned. */
class V2ReturnFail extends Error {}

/** A business refusal: return_code SUCCESS, result_code FAIL with err_code, signed. */
class V2ResultFail extends Error {
  constructor(
    readonly errCode: string,
    message: string,
  ) {
    super(message);
  }
}

/** The v3 codes the shared transaction core raises, as APIv2's err_code. */
const ERR_CODE_OF: Record<string, string> = {
  ORDER_PAID: 'ORDERPAID',
  ORDER_CLOSED: 'ORDERCLOSED',
  ORDER_NOT_EXIST: 'ORDERNOTEXIST',
  RESOURCE_NOT_EXISTS: 'ORDERNOTEXIST',
  NOT_ENOUGH: 'NOTENOUGH',
  MCH_NOT_EXISTS: 'MCHID_NOT_EXIST',
  APPID_MCHID_NOT_MATCH: 'APPID_MCHID_NOT_MATCH',
  FREQUENCY_LIMITED: 'FREQUENCY_LIMITED',
  SYSTEM_ERROR: 'SYSTEMERROR',
  INVALID_REQUEST: 'INVALID_REQUEST',
  PARAM_ERROR: 'PARAM_ERROR',
};

async function readBody(req: RawRequest): Promise<Buffer> {
  if (req.rawBody) return req.rawBody;
  if (req.readableEnded) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new V2ReturnFail('请求体过大（超过 1 MB）');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function required(f: Fields, name: string): string {
  const value = f[name];
  if (value === undefined || value === '') throw new V2ReturnFail(`缺少参数 ${name}`);
  return value;
}

function fen(f: Fields, name: string): number {
  const value = required(f, name);
  if (!/^[1-9]\d{0,11}$/.test(value)) throw new V2ReturnFail(`${name} 参数格式错误（整数，单位为分）`);
  return Number(value);
}

/**
 * WeChat Pay APIv2 as seen by a merchant, under /sandbox/pay/… and /sandbox/secapi/… (the standalone
 * sandbox also at the root): XML checked as WeChat checks it (well-formed without a DTD, appid and
 * mch_id, sign_type, sign with the merchant's APIv2 key, required fields), signed answers. A thin
 * front over the same transaction core as APIv3 (SandboxPayService): an order made here is the
 * same order under /v3, and the other way round.
 *
 * Service provider (服务商): a request naming sub_mch_id (and sub_appid / sub_openid) is the sandbox
 * merchant speaking as the provider for that sub-merchant, checked by the same SandboxPartnerService
 * as the APIv3 partner routes (sub_mch_id bound to the provider, sub_openid only with sub_appid and a
 * user of it); a partner trade is found only under its own sub_mch_id (omitted → 受理机构必须传入
 * sub_mch_id), answers name it, and its notifications carry sub_mch_id / sub_appid / sub_openid.
 *
 * Mutual TLS: WeChat takes /secapi/pay/refund and /pay/downloadfundflow only with the merchant API
 * certificate. The sandbox serves them on its mutual-TLS port (SandboxSecapiServer), which checks the
 * certificate; the same paths on the plain http port are refused with return_code FAIL, nothing done.
 */
@ApiExcludeController()
@Controller('sandbox')
export class SandboxPayV2Controller {
  private readonly logger = new Logger('SandboxPayV2');

  constructor(
    private readonly pay: SandboxPayService,
    private readonly refunds: SandboxRefundsService,
    private readonly bills: SandboxBillsService,
    private readonly state: SandboxState,
    private readonly settings: SandboxSettings,
    private readonly http: SandboxHttp,
    private readonly secapi: SandboxSecapiServer,
    private readonly partner: SandboxPartnerService,
  ) {}

  @Post('pay/unifiedorder')
  @HttpCode(200)
  unifiedOrder(@Req() req: RawRequest, @Res() res: Response) {
    return this.handle('pay/unifiedorder', req, res, (f, signType) => {
      const tradeType = required(f, 'trade_type');
      if (!['JSAPI', 'NATIVE', 'MWEB', 'APP'].includes(tradeType)) throw new V2ReturnFail('trade_type 参数格式错误');
      if (tradeType === 'APP') throw new V2ResultFail('NOAUTH', '沙箱不模拟 APP 支付（trade_type=APP）');
      const totalFee = fen(f, 'total_fee');
      const clientIp = required(f, 'spbill_create_ip');
      const v3Body: Record<string, unknown> = {
        appid: f.appid,
        mchid: f.mch_id,
        description: required(f, 'body'),
        out_trade_no: required(f, 'out_trade_no'),
        notify_url: required(f, 'notify_url'),
        amount: { total: totalFee, currency: f.fee_type || 'CNY' },
        scene_info: { payer_client_ip: clientIp },
      };
      const provider = Boolean(f.sub_mch_id || f.sub_appid || f.sub_openid);
      if (tradeType === 'JSAPI') {
        if (!f.openid && !(provider && f.sub_openid)) throw new V2ReturnFail('trade_type=JSAPI时（即JSAPI支付），必须传openid');
        if (f.openid && f.sub_openid) throw new V2ReturnFail('openid和sub_openid只能传其中之一');
        v3Body.payer = { openid: f.openid };
      }
      if (tradeType === 'NATIVE' && !f.product_id) throw new V2ReturnFail('trade_type=NATIVE时，product_id为必填参数');
      if (tradeType === 'MWEB') {
        // v2 sends scene_info as a JSON string: {"h5_info": {"type": "Wap", "wap_url": …, "wap_name": …}}.
        let scene: { h5_info?: unknown } | undefined;
        try {
          scene = f.scene_info ? (JSON.parse(f.scene_info) as { h5_info?: unknown }) : undefined;
        } catch {
          throw new V2ReturnFail('scene_info 参数格式错误（JSON）');
        }
        if (!scene || typeof scene !== 'object') throw new V2ReturnFail('trade_type=MWEB时，scene_info为必填参数');
        v3Body.scene_info = { payer_client_ip: clientIp, h5_info: scene.h5_info };
      }
      if (f.attach) v3Body.attach = f.attach;
      if (f.time_expire) {
        const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(f.time_expire);
        if (!m) throw new V2ReturnFail('time_expire 参数格式错误（yyyyMMddHHmmss）');
        v3Body.time_expire = `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}+08:00`;
      }
      const base = `${req.protocol}://${req.get('host')}${sandboxPrefixOf(req)}`;
      let answer: ReturnType<SandboxPayService['prepay']>;
      if (provider) {
        // The provider's unifiedorder, in the APIv3 partner shape, through the same checks as /v3/pay/partner.
        const { appid, mchid, payer: _payer, ...rest } = v3Body;
        const payer = tradeType !== 'JSAPI' ? undefined : f.sub_openid ? { sub_openid: f.sub_openid } : { sp_openid: f.openid };
        answer = this.partner.prepay(
          { ...rest, sp_appid: appid, sp_mchid: mchid, sub_mchid: f.sub_mch_id || undefined, ...(f.sub_appid ? { sub_appid: f.sub_appid } : {}), ...(payer ? { payer } : {}) },
          tradeType as SandboxTradeType,
          base,
        );
      } else {
        answer = this.pay.prepay(v3Body, tradeType as SandboxTradeType, base);
      }
      const tx = this.state.transactions.get(f.out_trade_no)!;
      tx.v2 = { signType };
      this.state.changed();
      if ('h5_url' in answer) return { trade_type: tradeType, prepay_id: new URL(answer.h5_url).searchParams.get('prepay_id') ?? undefined, mweb_url: answer.h5_url };
      // NATIVE: the sandbox's code_url token doubles as the prepay_id (real WeChat answers a wx… one beside it).
      if ('code_url' in answer) return { trade_type: tradeType, prepay_id: new URL(answer.code_url).searchParams.get('pr') ?? undefined, code_url: answer.code_url };
      return { trade_type: tradeType, prepay_id: answer.prepay_id };
    });
  }

  @Post('pay/orderquery')
  @HttpCode(200)
  orderQuery(@Req() req: RawRequest, @Res() res: Response) {
    return this.handle('pay/orderquery', req, res, (f) => {
      const tx = this.findTransaction(f);
      return this.transactionFields(tx);
    });
  }

  @Post('pay/closeorder')
  @HttpCode(200)
  closeOrder(@Req() req: RawRequest, @Res() res: Response) {
    return this.handle('pay/closeorder', req, res, (f) => {
      const tx = this.findTransaction({ ...f, out_trade_no: required(f, 'out_trade_no'), transaction_id: '' });
      if (tx.state === 'CLOSED') throw new V2ResultFail('ORDERCLOSED', '订单已关闭，无法重复关闭');
      this.pay.close(tx.outTradeNo, { mchid: f.mch_id });
      return {};
    });
  }

  @Post('secapi/pay/refund')
  @HttpCode(200)
  refund(@Req() req: RawRequest, @Res() res: Response) {
    if (!this.overMutualTls(req, res)) return;
    return this.handle('secapi/pay/refund', req, res, (f) => {
      if (!f.transaction_id && !f.out_trade_no) throw new V2ReturnFail('transaction_id 和 out_trade_no 必须二选一');
      // As WeChat: a refund must name the appid the order was paid under (the mini-program's for its orders).
      const paid = this.findTransaction(f);
      if (paid.appid && paid.appid !== f.appid) throw new V2ResultFail('INVALID_REQUEST', '您的请求参数与订单信息不一致（appid 与订单的 appid 不一致）');
      const v3Body: Record<string, unknown> = {
        ...(f.transaction_id ? { transaction_id: f.transaction_id } : { out_trade_no: f.out_trade_no }),
        out_refund_no: required(f, 'out_refund_no'),
        amount: { refund: fen(f, 'refund_fee'), total: fen(f, 'total_fee'), currency: f.refund_fee_type || 'CNY' },
      };
      if (f.sub_mch_id) v3Body.sub_mchid = f.sub_mch_id;
      if (f.refund_desc) v3Body.reason = f.refund_desc;
      if (f.notify_url) v3Body.notify_url = f.notify_url;
      const refund = this.refunds.createRefund(v3Body);
      if (!refund.v2) {
        refund.v2 = true;
        this.state.changed();
      }
      return {
        transaction_id: refund.transactionId,
        out_trade_no: refund.outTradeNo,
        out_refund_no: refund.outRefundNo,
        refund_id: refund.refundId,
        refund_fee: refund.refund,
        total_fee: refund.total,
        cash_fee: refund.total,
        cash_refund_fee: refund.refund,
        refund_channel: 'ORIGINAL',
      };
    });
  }

  @Post('pay/refundquery')
  @HttpCode(200)
  refundQuery(@Req() req: RawRequest, @Res() res: Response) {
    return this.handle('pay/refundquery', req, res, (f) => {
      let refunds: SandboxRefund[];
      const sub = f.sub_mch_id || undefined;
      if (f.out_refund_no) {
        refunds = [this.queryRefund(f.out_refund_no, sub)];
      } else if (f.refund_id) {
        const found = [...this.state.refunds.values()].find((r) => r.refundId === f.refund_id);
        if (!found) throw new V2ResultFail('REFUNDNOTEXIST', '退款单不存在');
        refunds = [this.queryRefund(found.outRefundNo, sub)];
      } else {
        const tx = this.findTransaction(f);
        refunds = [...this.state.refunds.values()].filter((r) => r.outTradeNo === tx.outTradeNo).map((r) => this.queryRefund(r.outRefundNo, sub));
        if (refunds.length === 0) throw new V2ResultFail('REFUNDNOTEXIST', '退款单不存在');
      }
      const first = refunds[0];
      const out: Record<string, string | number> = {
        transaction_id: first.transactionId,
        out_trade_no: first.outTradeNo,
        total_fee: first.total,
        cash_fee: first.total,
        refund_count: refunds.length,
      };
      refunds.forEach((r, n) => {
        out[`out_refund_no_${n}`] = r.outRefundNo;
        out[`refund_id_${n}`] = r.refundId;
        out[`refund_channel_${n}`] = 'ORIGINAL';
        out[`refund_fee_${n}`] = r.refund;
        out[`refund_status_${n}`] = r.status === 'CLOSED' ? 'REFUNDCLOSE' : r.status === 'ABNORMAL' ? 'CHANGE' : r.status;
        out[`refund_recv_accout_${n}`] = '支付用户零钱';
        if (r.successTime) out[`refund_success_time_${n}`] = sandboxV2TimeOf(new Date(r.successTime).toISOString(), true)!;
      });
      return out;
    });
  }

  /** The bill file, unsigned (or WeChat's XML error: "No Bill Exist" for a day without trades). */
  @Post('pay/downloadbill')
  @HttpCode(200)
  async downloadBill(@Req() req: RawRequest, @Res() res: Response) {
    await this.sendBill(req, res, 'trade', this.fault('pay/downloadbill', res));
  }

  /**
   * The fund-flow bill: like WeChat, only with sign_type HMAC-SHA256, account_type Basic, Operation or
   * Fees, and the merchant certificate (the mutual-TLS port).
   */
  @Post('pay/downloadfundflow')
  @HttpCode(200)
  async downloadFundFlow(@Req() req: RawRequest, @Res() res: Response) {
    if (!this.overMutualTls(req, res)) return;
    await this.sendBill(req, res, 'fundflow', this.fault('pay/downloadfundflow', res));
  }

  private async sendBill(req: RawRequest, res: Response, kind: 'trade' | 'fundflow', fault: V2ResultFail | 'held' | undefined): Promise<void> {
    if (fault === 'held') return;
    const checked = await this.check(req, res);
    if (!checked) return;
    if (fault) {
      // the bills answer errors unsigned, at the communication level (return_code FAIL)
      this.sendXml(res, sandboxXml({ return_code: 'FAIL', return_msg: fault.errCode === 'SYSTEMERROR' ? '系统繁忙，请稍后再试' : '频率限制，请降低请求频率' }));
      return;
    }
    const { fields: f, signType } = checked;
    try {
      if (kind === 'fundflow' && signType !== 'HMAC-SHA256') throw new V2ReturnFail('sign_type参数格式错误（资金账单只支持 HMAC-SHA256）');
      const date = required(f, 'bill_date');
      if (!/^\d{8}$/.test(date)) throw new V2ReturnFail('bill_date 参数格式错误（yyyyMMdd）');
      const accounts: Record<string, string> = { Basic: 'BASIC', Operation: 'OPERATION', Fees: 'FEES' };
      if (kind === 'fundflow' && !accounts[required(f, 'account_type')]) throw new V2ReturnFail('account_type 参数格式错误（Basic、Operation 或 Fees）');
      const billDate = `${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}`;
      const apply = this.bills.applyBill(
        kind,
        kind === 'trade'
          ? { bill_date: billDate, bill_type: f.bill_type || 'ALL', tar_type: f.tar_type || undefined, ...(f.sub_mch_id ? { sub_mchid: f.sub_mch_id } : {}) }
          : { bill_date: billDate, account_type: accounts[f.account_type], tar_type: f.tar_type || undefined },
        `${req.protocol}://${req.get('host')}${sandboxPrefixOf(req)}`,
      );
      const token = new URL(apply.download_url as string).searchParams.get('token') ?? undefined;
      const file = this.bills.billFile(token);
      res.status(200).setHeader('Content-Type', f.tar_type === 'GZIP' ? 'application/x-gzip' : 'text/plain; charset=utf-8');
      if (Buffer.isBuffer(file)) res.end(file);
      else await pipeline(file as Readable, res);
    } catch (error) {
      if (error instanceof SandboxPayError && error.code === 'NO_STATEMENT_EXIST') {
        this.sendXml(res, sandboxXml({ return_code: 'FAIL', return_msg: 'No Bill Exist', error_code: '20002' }));
        return;
      }
      if (error instanceof SandboxPayError || error instanceof V2ReturnFail) {
        this.sendXml(res, sandboxXml({ return_code: 'FAIL', return_msg: error.message }));
        return;
      }
      this.logger.error(`download${kind === 'trade' ? 'bill' : 'fundflow'} failed: ${(error as Error).stack}`);
      this.sendXml(res, sandboxXml({ return_code: 'FAIL', return_msg: '系统繁忙，请稍后再试' }));
    }
  }

  // ------------------------------------------------------------------ plumbing

  /**
   * A call WeChat takes only with the merchant certificate must have come through the mutual-TLS port
   * (whose gate checked the certificate); on the http port it is refused before its body is read.
   */
  private overMutualTls(req: RawRequest, res: Response): boolean {
    if (secapiClientOf(req)) return true;
    const path = (req.originalUrl ?? req.url).split('?', 1)[0];
    this.sendXml(
      res,
      sandboxXml({
        return_code: 'FAIL',
        return_msg: `该接口需要商户API证书（双向TLS）：请带 apiclient_cert.pem 调用 ${this.secapi.origin}${path}`,
      }),
    );
    return false;
  }

  private queryRefund(outRefundNo: string, subMchid?: string): SandboxRefund {
    try {
      return this.refunds.queryRefund(outRefundNo, subMchid);
    } catch (error) {
      if (error instanceof SandboxPayError && error.code === 'RESOURCE_NOT_EXISTS') throw new V2ResultFail('REFUNDNOTEXIST', '退款单不存在');
      throw error;
    }
  }

  /** A trade by either number; a partner trade only under its own sub_mch_id (as WeChat finds a provider's). */
  private findTransaction(f: Fields): SandboxTransaction {
    let tx: SandboxTransaction;
    if (f.transaction_id) tx = this.pay.findByTransactionId(f.transaction_id, f.mch_id);
    else if (f.out_trade_no) tx = this.pay.findByOutTradeNo(f.out_trade_no, f.mch_id);
    else throw new V2ReturnFail('transaction_id 和 out_trade_no 必须二选一');
    checkRefundSubMchid(tx, f.sub_mch_id || undefined, 'body', this.settings.subMchids);
    return tx;
  }

  private transactionFields(tx: SandboxTransaction): Record<string, string | number | undefined> {
    const view = this.pay.transactionView(tx) as { trade_state_desc?: string; trade_type?: string; bank_type?: string; success_time?: string };
    const paid = tx.state === 'SUCCESS' || tx.state === 'REFUND';
    const partner = partnerOf(tx);
    return {
      // A provider's trade: its sub-merchant, and the payer under sub_appid (sub_openid) or appid (openid).
      ...(partner ? { sub_mch_id: partner.subMchid, sub_appid: partner.subAppid } : {}),
      ...(partner?.payerKind === 'sub' ? { sub_openid: tx.openid, ...(paid ? { sub_is_subscribe: 'N' } : {}) } : { openid: tx.openid }),
      trade_state: tx.state,
      trade_state_desc: view.trade_state_desc,
      out_trade_no: tx.outTradeNo,
      total_fee: tx.total,
      fee_type: tx.currency,
      attach: tx.attach || undefined,
      ...(paid
        ? {
            is_subscribe: 'N',
            trade_type: view.trade_type ?? 'JSAPI',
            bank_type: view.bank_type ?? 'OTHERS',
            cash_fee: tx.total,
            cash_fee_type: tx.currency,
            transaction_id: tx.transactionId,
            time_end: sandboxV2TimeOf(view.success_time),
          }
        : {}),
    };
  }

  /**
   * Reads and checks a request as WeChat does: XML (no DTD), appid and mch_id of our merchant,
   * nonce_str, sign_type MD5 (default) or HMAC-SHA256, sign with the merchant's APIv2 key. Answers
   * the refusal itself (return_code FAIL) and returns undefined when the request does not pass.
   */
  private async check(req: RawRequest, res: Response): Promise<{ fields: Fields; signType: SandboxV2SignType } | undefined> {
    try {
      const parsed = sandboxParseV2(await readBody(req));
      if ('error' in parsed) throw new V2ReturnFail(parsed.error === 'POST_DATA_EMPTY' ? 'post数据为空' : 'XML格式错误');
      const f = parsed.fields;
      const appid = required(f, 'appid');
      const mchid = required(f, 'mch_id');
      required(f, 'nonce_str');
      required(f, 'sign');
      const signType = (f.sign_type || 'MD5') as SandboxV2SignType;
      if (signType !== 'MD5' && signType !== 'HMAC-SHA256') throw new V2ReturnFail('sign_type参数格式错误');
      if (mchid !== this.pay.mchid) throw new V2ReturnFail('mch_id参数格式错误（商户号不存在）');
      if (appid !== this.pay.appid && appid !== this.settings.keystore.miniprogram?.appid) throw new V2ReturnFail('appid和mch_id不匹配');
      if (!sandboxV2SignOk(f, sandboxApiV2Key(this.settings.keystore), signType)) throw new V2ReturnFail('签名错误，请检查后再试');
      return { fields: f, signType };
    } catch (error) {
      if (!(error instanceof V2ReturnFail)) throw error;
      this.sendXml(res, sandboxXml({ return_code: 'FAIL', return_msg: error.message }));
      return undefined;
    }
  }

  /**
   * Counts the call and plays a fault due for it (control API failNext): a timeout holds the request;
   * 500 and 429 are answered as WeChat's APIv2 says them, a signed result_code FAIL with err_code
   * SYSTEMERROR or FREQUENCY_LIMITED (after the request itself was checked). Undefined: no fault;
   * 'held': the request is held.
   */
  private fault(endpoint: SandboxEndpoint, res: Response): V2ResultFail | 'held' | undefined {
    let kind: '500' | '429' | undefined;
    if (!this.http.fault(endpoint, res, (k) => (kind = k))) return undefined;
    if (!kind) return 'held';
    return kind === '500' ? new V2ResultFail('SYSTEMERROR', '系统超时，请稍后再试') : new V2ResultFail('FREQUENCY_LIMITED', '频率限制，请降低请求频率');
  }

  private async handle(
    endpoint: SandboxEndpoint,
    req: RawRequest,
    res: Response,
    handler: (f: Fields, signType: SandboxV2SignType) => Record<string, string | number | undefined>,
  ): Promise<void> {
    const fault = this.fault(endpoint, res);
    if (fault === 'held') return;
    const checked = await this.check(req, res);
    if (!checked) return;
    const { fields: f, signType } = checked;
    let result: Record<string, string | number | undefined>;
    try {
      if (fault) throw fault;
      if (f.sub_mch_id) checkBound(f.sub_mch_id, this.settings.subMchids);
      result = { result_code: 'SUCCESS', ...handler(f, signType) };
    } catch (error) {
      if (error instanceof V2ReturnFail) {
        this.sendXml(res, sandboxXml({ return_code: 'FAIL', return_msg: error.message }));
        return;
      }
      let failure: V2ResultFail;
      if (error instanceof V2ResultFail) failure = error;
      else if (error instanceof SandboxPayError) failure = new V2ResultFail(ERR_CODE_OF[error.code] ?? error.code, error.message);
      else {
        this.logger.error(`sandbox v2 ${req.path} failed: ${(error as Error).stack}`);
        failure = new V2ResultFail('SYSTEMERROR', '系统错误');
      }
      result = { result_code: 'FAIL', err_code: failure.errCode, err_code_des: failure.message };
    }
    const answer: Record<string, string | number | undefined> = {
      return_code: 'SUCCESS',
      return_msg: 'OK',
      appid: f.appid,
      mch_id: f.mch_id,
      // A provider's answers name the sub-merchant asked for (a trade's own, for orderquery).
      sub_appid: f.sub_appid || undefined,
      sub_mch_id: f.sub_mch_id || undefined,
      nonce_str: sandboxNonce(),
      ...result,
    };
    this.sendXml(res, sandboxXml({ ...answer, sign: sandboxV2Sign(answer, sandboxApiV2Key(this.settings.keystore), signType) }));
  }

  private sendXml(res: Response, xml: string): void {
    res.status(200).setHeader('Content-Type', 'text/xml; charset=utf-8');
    res.end(xml);
  }
}
