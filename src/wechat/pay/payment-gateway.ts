import type { Readable } from 'node:stream';
import type { Refund as V3Refund, Transaction } from './types';
import type { NativePrepayInput, WechatPayClient } from './wechat-pay.client';

/** The ways a shopper pays. */
export type GatewayChannel = 'jsapi' | 'h5' | 'native' | 'miniprogram';

/**
 * Which merchant a trade is for, protocol-neutral: in service-provider mode the order's sub-merchant
 * (the adapter sends it as sub_mchid / sub_mch_id); direct adapters ignore it. Business code passes
 * the order's own value and never asks which mode is on.
 */
export interface MerchantRef {
  subMchid: string;
  /**
   * The sub-merchant's own official account (sub_appid), when it has one registered: its shoppers log
   * in and pay under it (payer.sub_openid); without one they pay under the provider's (sp_openid).
   */
  subAppid?: string;
}

/** What a prepay needs to know about an order, protocol-neutral (amounts in fen, times as Date). */
export interface PrepayOrder {
  /** The attempt's out_trade_no. */
  outTradeNo: string;
  description: string;
  total: number;
  expiresAt: Date;
  notifyUrl: string;
  goods: Array<{ id: string; name: string; quantity: number; unitPrice: number }>;
  /** jsapi / miniprogram: who pays, under which appid. */
  payer?: { appid: string; openid: string };
  /** The shopper's IP (required for h5; passed on for the others when known). */
  clientIp?: string;
  /** h5: the site shown on WeChat's cashier. */
  site?: { appName: string; appUrl: string };
  /** The order's sub-merchant (service-provider mode). */
  merchant?: MerchantRef;
}

/** A prepay's answer, per channel. */
export type PrepayResult = { kind: 'prepay_id'; prepayId: string } | { kind: 'h5_url'; h5Url: string } | { kind: 'code_url'; codeUrl: string };

/** What the front end gets to start paying (channel-specific fields). */
export type InvokeParams = Record<string, string>;

/** A refund's state at WeChat, protocol-neutral (APIv2's REFUNDCLOSE is CLOSED, CHANGE is ABNORMAL). */
export type GatewayRefundStatus = 'PROCESSING' | 'SUCCESS' | 'CLOSED' | 'ABNORMAL';

/** A refund request, protocol-neutral: amounts in fen. The adapter adds its own notify_url. */
export interface RefundRequest {
  /** The attempt that was paid (its out_trade_no). */
  outTradeNo: string;
  outRefundNo: string;
  /** This refund, in fen. */
  amount: number;
  /** What the attempt was paid, in fen. */
  total: number;
  reason?: string;
  merchant?: MerchantRef;
  /** The appid the attempt was prepaid with, for an adapter whose request names it (APIv2: WeChat refuses a refund under another appid); others ignore it. */
  appid?: string;
}

/** WeChat's answer about a refund, protocol-neutral. */
export interface RefundResult {
  outRefundNo: string;
  refundId?: string;
  status: GatewayRefundStatus;
  successAt?: Date;
}

export type TradeBillKind = 'ALL' | 'SUCCESS' | 'REFUND';
export type FundFlowAccount = 'BASIC' | 'OPERATION' | 'FEES';

/** A v3 refund answer in the neutral shape. */
export function neutralRefund(r: V3Refund, outRefundNo = r.out_refund_no): RefundResult {
  const at = r.success_time ? new Date(r.success_time) : undefined;
  return {
    outRefundNo: r.out_refund_no ?? outRefundNo,
    ...(r.refund_id ? { refundId: r.refund_id } : {}),
    status: r.status,
    ...(at && !Number.isNaN(at.getTime()) ? { successAt: at } : {}),
  };
}

/**
 * The one port between the business modules and WeChat Pay for paying: prepay per channel, the
 * invoke parameters, query and close of a number. The adapter decides how (API version, request
 * shapes); callers never branch on it.
 */
export interface PaymentGateway {
  /**
   * The notify_url WeChat notifies payments at, when the adapter has its own (APIv2's XML route);
   * otherwise the one the caller gives in PrepayOrder.notifyUrl (the APIv3 route).
   */
  readonly paymentNotifyUrl?: string;
  /**
   * The appid a channel's prepay is made with (the payer's openid must be under it); undefined when the
   * channel is not configured. `merchant`: the order's sub-merchant (its own official account decides
   * for jsapi in service-provider mode; direct adapters ignore it).
   */
  appidFor(channel: GatewayChannel, merchant?: MerchantRef): string | undefined;
  prepay(channel: GatewayChannel, order: PrepayOrder): Promise<PrepayResult>;
  invokeParams(channel: GatewayChannel, prepay: PrepayResult, appid: string): InvokeParams;
  /**
   * The answer in the neutral Transaction shape (appid = the one prepaid with, mchid = ours, sub_mchid
   * when a sub-merchant's). `appid` is the one the attempt was prepaid with, for an adapter whose
   * request names it (APIv2 sends it, and its answer echoes it); others ignore it.
   */
  query(outTradeNo: string, merchant?: MerchantRef, appid?: string): Promise<Transaction>;
  close(outTradeNo: string, merchant?: MerchantRef, appid?: string): Promise<void>;
  /**
   * Asks WeChat to refund (same outRefundNo = the same refund: safe to send again). Refusals are the
   * typed WechatPayApiError (4xx: WeChat's definitive no; 5xx/429/network: outcome unknown).
   */
  refund(request: RefundRequest): Promise<RefundResult>;
  /** WeChat's view of a refund; unknown to WeChat = WechatPayApiError 404 RESOURCE_NOT_EXISTS. */
  queryRefund(outRefundNo: string, merchant?: MerchantRef): Promise<RefundResult>;
  /**
   * The trade bill of a Beijing day (yyyy-MM-dd) as plain CSV text in WeChat's layout (verified and
   * decompressed by the adapter); no trades that day = WechatPayApiError NO_STATEMENT_EXIST.
   * `merchant`: in service-provider mode, only that sub-merchant's trades (sub_mchid); without it the
   * provider's bill of every sub-merchant. Direct adapters ignore it.
   */
  tradeBill(date: string, type: TradeBillKind, merchant?: MerchantRef): Promise<Readable>;
  /** The fund-flow bill of a day, as tradeBill. */
  fundFlowBill(date: string, account: FundFlowAccount): Promise<Readable>;
  /**
   * Service-provider adapters only (absent from direct ones): a sub-merchant's fund-flow bill of a
   * day as plain CSV, every part downloaded, decrypted and hash-checked by the adapter (a tampered part
   * fails the stream); no movements that day = WechatPayApiError NO_STATEMENT_EXIST.
   */
  subMerchantFundFlowBill?(date: string, account: FundFlowAccount, merchant: MerchantRef): Promise<Readable>;
}

export const PAYMENT_GATEWAY = Symbol('PAYMENT_GATEWAY');

/** The fields every channel's prepay shares. */
export type PrepayBase = Omit<NativePrepayInput, 'scene_info'>;

interface ChannelAdapter {
  prepay(client: WechatPayClient, order: PrepayOrder, base: PrepayBase): Promise<PrepayResult>;
  invoke(client: WechatPayClient, prepay: PrepayResult, appid: string): InvokeParams;
}

/** RFC 3339 in Beijing time (+08:00), whole seconds: WeChat's time_expire. */
export function beijingRfc3339(date: Date): string {
  return new Date(date.getTime() + 8 * 3600_000).toISOString().replace(/\.\d{3}Z$/, '+08:00');
}

export const ipPattern = /^[0-9a-fA-F.:]{3,45}$/;

/** The APIv3 prepay fields every channel sends alike, for a direct merchant and a provider (partner) alike. */
export function prepayBase(order: PrepayOrder): PrepayBase {
  return {
    description: order.description,
    out_trade_no: order.outTradeNo,
    notify_url: order.notifyUrl,
    time_expire: beijingRfc3339(order.expiresAt),
    amount: { total: order.total, currency: 'CNY' },
    detail: {
      goods_detail: order.goods.map((g) => ({ merchant_goods_id: g.id, goods_name: g.name.slice(0, 256), quantity: g.quantity, unit_price: g.unitPrice })),
    },
  };
}

function prepayIdOf(prepay: PrepayResult): string {
  if (prepay.kind !== 'prepay_id') throw new Error(`a ${prepay.kind} prepay has no prepay_id`);
  return prepay.prepayId;
}

function jsapiLike(withAppId: boolean): ChannelAdapter {
  return {
    async prepay(client, order, base) {
      if (!order.payer) throw new Error('a JSAPI prepay needs the payer');
      const answer = await client.prepayJsapi(
        {
          ...base,
          payer: { openid: order.payer.openid },
          ...(order.clientIp && ipPattern.test(order.clientIp) ? { scene_info: { payer_client_ip: order.clientIp } } : {}),
        },
        order.payer.appid,
      );
      return { kind: 'prepay_id', prepayId: answer.prepay_id };
    },
    invoke(client, prepay, appid) {
      const params: InvokeParams = { ...client.buildJsapiInvokeParams(prepayIdOf(prepay), undefined, undefined, appid) };
      // wx.requestPayment takes no appId (the mini-program's own is implied); getBrandWCPayRequest does.
      if (!withAppId) delete params.appId;
      return params;
    },
  };
}

/** APIv3, direct merchant: the table of channel → (prepay, invoke builder). */
const V3_CHANNELS: Record<GatewayChannel, ChannelAdapter> = {
  jsapi: jsapiLike(true),
  miniprogram: jsapiLike(false),
  h5: {
    async prepay(client, order, base) {
      if (!order.clientIp) throw new Error('an H5 prepay needs the payer client ip');
      const answer = await client.prepayH5({
        ...base,
        scene_info: {
          payer_client_ip: order.clientIp,
          h5_info: { type: 'Wap', ...(order.site ? { app_name: order.site.appName.slice(0, 64), app_url: order.site.appUrl.slice(0, 128) } : {}) },
        },
      });
      return { kind: 'h5_url', h5Url: answer.h5_url };
    },
    invoke(_client, prepay) {
      if (prepay.kind !== 'h5_url') throw new Error('not an h5 prepay');
      return { h5Url: prepay.h5Url };
    },
  },
  native: {
    async prepay(client, order, base) {
      const answer = await client.prepayNative({
        ...base,
        ...(order.clientIp && ipPattern.test(order.clientIp) ? { scene_info: { payer_client_ip: order.clientIp } } : {}),
      });
      return { kind: 'code_url', codeUrl: answer.code_url };
    },
    invoke(_client, prepay) {
      if (prepay.kind !== 'code_url') throw new Error('not a native prepay');
      return { codeUrl: prepay.codeUrl };
    },
  },
};

/** Refunds and bills over APIv3, shared by the direct and the partner adapters. */
export class V3RefundsAndBills {
  constructor(
    private readonly client: WechatPayClient,
    /** PUBLIC_BASE_URL + /notify/wechatpay/refund. */
    private readonly refundNotifyUrl: string | undefined,
  ) {}

  /** `subMchid`: a service provider's refund names the trade's sub-merchant (body sub_mchid). */
  async refund(request: RefundRequest, subMchid?: string): Promise<RefundResult> {
    const answer = await this.client.createRefund({
      ...(subMchid ? { sub_mchid: subMchid } : {}),
      out_trade_no: request.outTradeNo,
      out_refund_no: request.outRefundNo,
      ...(request.reason ? { reason: request.reason } : {}),
      ...(this.refundNotifyUrl ? { notify_url: this.refundNotifyUrl } : {}),
      amount: { refund: request.amount, total: request.total, currency: 'CNY' },
    });
    return neutralRefund(answer, request.outRefundNo);
  }

  async queryRefund(outRefundNo: string, subMchid?: string): Promise<RefundResult> {
    return neutralRefund(await this.client.queryRefund(outRefundNo, subMchid), outRefundNo);
  }

  /** `subMchid`: a service provider's bill of one sub-merchant (?sub_mchid=). */
  async tradeBill(date: string, type: TradeBillKind, subMchid?: string): Promise<Readable> {
    return this.client.downloadBill(await this.client.applyTradeBill({ billDate: date, billType: type, tarType: 'GZIP', ...(subMchid ? { subMchid } : {}) }));
  }

  async fundFlowBill(date: string, account: FundFlowAccount): Promise<Readable> {
    return this.client.downloadBill(await this.client.applyFundFlowBill({ billDate: date, accountType: account, tarType: 'GZIP' }));
  }
}

/** PaymentGateway over Pay APIv3 (direct merchant). */
export class WechatPayV3Gateway implements PaymentGateway {
  private readonly refunds: V3RefundsAndBills;

  constructor(
    private readonly client: WechatPayClient,
    private readonly miniprogramAppid: string | undefined,
    refundNotifyUrl?: string,
  ) {
    this.refunds = new V3RefundsAndBills(client, refundNotifyUrl);
  }

  appidFor(channel: GatewayChannel): string | undefined {
    return channel === 'miniprogram' ? this.miniprogramAppid : this.client.appid;
  }

  prepay(channel: GatewayChannel, order: PrepayOrder): Promise<PrepayResult> {
    return V3_CHANNELS[channel].prepay(this.client, order, prepayBase(order));
  }

  invokeParams(channel: GatewayChannel, prepay: PrepayResult, appid: string): InvokeParams {
    return V3_CHANNELS[channel].invoke(this.client, prepay, appid);
  }

  query(outTradeNo: string): Promise<Transaction> {
    return this.client.queryByOutTradeNo(outTradeNo);
  }

  close(outTradeNo: string): Promise<void> {
    return this.client.closeOrder(outTradeNo);
  }

  refund(request: RefundRequest): Promise<RefundResult> {
    return this.refunds.refund(request);
  }

  queryRefund(outRefundNo: string): Promise<RefundResult> {
    return this.refunds.queryRefund(outRefundNo);
  }

  tradeBill(date: string, type: TradeBillKind): Promise<Readable> {
    return this.refunds.tradeBill(date, type);
  }

  fundFlowBill(date: string, account: FundFlowAccount): Promise<Readable> {
    return this.refunds.fundFlowBill(date, account);
  }
}
