import { HttpStatus } from '@nestjs/common';
import type { Readable } from 'node:stream';
import { AppError } from '../../common/errors/app-error';
import { neutralRefund } from '../pay/payment-gateway';
import type {
  FundFlowAccount,
  GatewayChannel,
  InvokeParams,
  MerchantRef,
  PaymentGateway,
  PrepayOrder,
  PrepayResult,
  RefundRequest,
  RefundResult,
  TradeBillKind,
} from '../pay/payment-gateway';
import type { Transaction } from '../pay/types';
import { V2SubMerchant, V2UnifiedOrderInput, WechatPayV2Client } from './wechat-pay-v2.client';

const IP = /^[0-9a-fA-F.:]{3,45}$/;

/** `body` is at most 128 characters in APIv2. */
function body(description: string): string {
  return [...description].slice(0, 128).join('');
}

/**
 * PaymentGateway over Pay APIv2: every channel is one unifiedorder with its trade_type — JSAPI for
 * jsapi and the mini-program (its appid), MWEB for h5, NATIVE for native — and the invoke parameters
 * carry the v2 paySign. Answers and errors come out as the APIv3 adapter's.
 *
 * Service provider (服务商, `partner` set: WECHATPAY_SUB_MCHID): every call names the provider
 * (appid, mch_id: WECHAT_APPID, WECHATPAY_MCHID) and the order's sub-merchant (sub_mch_id; the
 * default one when an order carries none). A payer under the provider's appid is `openid`; under any
 * other (the sub-merchant's own official account or mini-program) it is sub_appid + sub_openid, and
 * paySign is over that appId (WeChat: appId is the account the payment is invoked in), signed with
 * the provider's API key.
 */
export class WechatPayV2Gateway implements PaymentGateway {
  constructor(
    private readonly client: WechatPayV2Client,
    private readonly options: {
      miniprogramAppid?: string;
      /** PUBLIC_BASE_URL + /notify/wechatpay/v2/transaction: v2 notifications are XML, not the v3 route's JSON. */
      notifyUrl: string;
      /** PUBLIC_BASE_URL + /notify/wechatpay/v2/refund (req_info XML). */
      refundNotifyUrl?: string;
      /** spbill_create_ip when the shopper's is unknown (APIv2 requires one on every unifiedorder). */
      fallbackClientIp?: string;
      /**
       * Service-provider mode: subMchid = the default sub-merchant; shopperAppid = the official
       * account shoppers log in through (the provider's, or WECHAT_SUB_APPID).
       */
      partner?: { subMchid: string; shopperAppid?: string };
    },
  ) {}

  /** /notify/wechatpay/v2/transaction: what unifiedorder sends as notify_url. */
  get paymentNotifyUrl(): string {
    return this.options.notifyUrl;
  }

  /**
   * The sub-merchant a call names (service-provider mode), else none; `payerAppid`: the appid the
   * trade was prepaid with, named as sub_appid when it is not the provider's.
   */
  private merchant(ref?: MerchantRef, payerAppid?: string): V2SubMerchant | undefined {
    const partner = this.options.partner;
    if (!partner) return undefined;
    const subAppid = payerAppid && payerAppid !== this.client.appid ? payerAppid : undefined;
    return { subMchid: ref?.subMchid ?? partner.subMchid, ...(subAppid ? { subAppid } : {}) };
  }

  appidFor(channel: GatewayChannel, merchant?: MerchantRef): string | undefined {
    if (channel === 'miniprogram') return this.options.miniprogramAppid;
    const partner = this.options.partner;
    // A provider's JSAPI shopper pays under the sub-merchant's own account when it has one (sub_appid +
    // sub_openid), else under the provider's (openid); without a sub-merchant named, the default one's.
    // MWEB and NATIVE name no payer: their trade (and its notification) carries the provider's appid only.
    if (!partner || channel !== 'jsapi') return this.client.appid;
    if (merchant) return merchant.subAppid ?? this.client.appid;
    return partner.shopperAppid ?? this.client.appid;
  }

  async prepay(channel: GatewayChannel, order: PrepayOrder): Promise<PrepayResult> {
    const clientIp = order.clientIp && IP.test(order.clientIp) ? order.clientIp : (this.options.fallbackClientIp ?? '127.0.0.1');
    const merchant = this.merchant(order.merchant);
    const base = {
      description: body(order.description),
      outTradeNo: order.outTradeNo,
      totalFee: order.total,
      notifyUrl: this.options.notifyUrl,
      clientIp,
      timeExpire: order.expiresAt,
      ...(merchant ? { merchant } : {}),
    };
    let input: V2UnifiedOrderInput;
    switch (channel) {
      case 'jsapi':
      case 'miniprogram':
        if (!order.payer) throw new Error('a JSAPI prepay needs the payer');
        if (!merchant) input = { ...base, tradeType: 'JSAPI', openid: order.payer.openid, appid: order.payer.appid };
        else if (order.payer.appid === this.client.appid) input = { ...base, tradeType: 'JSAPI', openid: order.payer.openid };
        else input = { ...base, tradeType: 'JSAPI', subAppid: order.payer.appid, subOpenid: order.payer.openid };
        break;
      case 'h5':
        if (!order.clientIp) throw new Error('an H5 prepay needs the payer client ip');
        input = {
          ...base,
          tradeType: 'MWEB',
          sceneInfo: { h5_info: { type: 'Wap', ...(order.site ? { wap_url: order.site.appUrl.slice(0, 128), wap_name: order.site.appName.slice(0, 64) } : {}) } },
        };
        break;
      case 'native':
        input = { ...base, tradeType: 'NATIVE', productId: (order.goods[0]?.id ?? order.outTradeNo).slice(0, 32) };
        break;
    }
    const answer = await this.client.unifiedOrder(input);
    if (channel === 'h5') return { kind: 'h5_url', h5Url: answer.mwebUrl! };
    if (channel === 'native') return { kind: 'code_url', codeUrl: answer.codeUrl! };
    return { kind: 'prepay_id', prepayId: answer.prepayId };
  }

  invokeParams(channel: GatewayChannel, prepay: PrepayResult, appid: string): InvokeParams {
    if (prepay.kind === 'h5_url') return { h5Url: prepay.h5Url };
    if (prepay.kind === 'code_url') return { codeUrl: prepay.codeUrl };
    const params: InvokeParams = { ...this.client.buildJsapiInvokeParams(prepay.prepayId, undefined, undefined, appid) };
    // wx.requestPayment takes no appId (the mini-program's is implied) but it is signed over it.
    if (channel === 'miniprogram') delete params.appId;
    return params;
  }

  /**
   * orderquery / closeorder with the appid the attempt was prepaid with (the mini-program's for
   * miniprogram): v2 names the appid in the request and its answer echoes it, and the business
   * modules read the answer's appid as the one prepaid with. A service provider always asks as its
   * own appid, naming the order's sub-merchant and, when the payer was under another appid (the
   * sub-merchant's account or the mini-program), that one as sub_appid.
   */
  query(outTradeNo: string, merchant?: MerchantRef, appid?: string): Promise<Transaction> {
    const sub = this.merchant(merchant, appid);
    return this.client.queryByOutTradeNo(outTradeNo, sub ? undefined : this.ours(appid), sub);
  }

  close(outTradeNo: string, merchant?: MerchantRef, appid?: string): Promise<void> {
    const sub = this.merchant(merchant, appid);
    return this.client.closeOrder(outTradeNo, sub ? undefined : this.ours(appid), sub);
  }

  /** One of our own appids (the official account's or the mini-program's), else the configured one. */
  private ours(appid: string | undefined): string | undefined {
    return appid && (appid === this.client.appid || appid === this.options.miniprogramAppid) ? appid : undefined;
  }

  /** secapi/pay/refund over mutual TLS with the merchant certificate, under the appid the attempt was prepaid with. */
  async refund(request: RefundRequest): Promise<RefundResult> {
    const answer = await this.client.createRefund({
      outTradeNo: request.outTradeNo,
      outRefundNo: request.outRefundNo,
      totalFee: request.total,
      refundFee: request.amount,
      ...(request.reason ? { reason: [...request.reason].slice(0, 80).join('') } : {}),
      ...(this.options.refundNotifyUrl ? { notifyUrl: this.options.refundNotifyUrl } : {}),
      // A provider refunds as its own appid, naming the sub-merchant (and the payer's sub_appid when it had one).
      ...(this.options.partner ? { merchant: this.merchant(request.merchant, request.appid) } : { appid: this.ours(request.appid) }),
    });
    return neutralRefund(answer, request.outRefundNo);
  }

  async queryRefund(outRefundNo: string, merchant?: MerchantRef): Promise<RefundResult> {
    return neutralRefund(await this.client.queryRefund(outRefundNo, this.merchant(merchant)), outRefundNo);
  }

  /** APIv2 has no sub-merchant fund-flow bill: it is an APIv3 API (/v3/bill/sub-merchant-fundflowbill). */
  subMerchantFundFlowBill(): Promise<Readable> {
    return Promise.reject(
      new AppError(HttpStatus.NOT_FOUND, 'NOT_ON_APIV2', 'GET /admin/bills/sub-merchant-fundflow: the sub-merchant fund-flow bill is an APIv3 API (/v3/bill/sub-merchant-fundflowbill); this deployment uses WECHATPAY_API_VERSION=v2'),
    );
  }

  /**
   * downloadbill (GZIP, gunzipped by the client): the same layout as the APIv3 trade bill. A
   * provider's bill of one sub-merchant when `merchant` is given (sub_mch_id); without, the
   * provider's bill of every sub-merchant (as the APIv3 partner adapter's).
   */
  tradeBill(date: string, type: TradeBillKind, merchant?: MerchantRef): Promise<Readable> {
    const sub = merchant && this.options.partner ? { merchant: { subMchid: merchant.subMchid } } : {};
    return this.client.downloadBill({ billDate: date, billType: type, tarType: 'GZIP', ...sub });
  }

  /** downloadfundflow (HMAC-SHA256, mutual TLS), gunzipped by the client. */
  fundFlowBill(date: string, account: FundFlowAccount): Promise<Readable> {
    return this.client.downloadFundFlow({ billDate: date, accountType: account, tarType: 'GZIP' });
  }
}
