import type { WechatCredentials } from '../wechat-credentials';
import { WechatPayApiError } from './errors';
import type { Readable } from 'node:stream';
import {
  FundFlowAccount,
  GatewayChannel,
  InvokeParams,
  ipPattern,
  MerchantRef,
  PaymentGateway,
  PrepayOrder,
  PrepayResult,
  prepayBase,
  RefundRequest,
  RefundResult,
  TradeBillKind,
  V3RefundsAndBills,
} from './payment-gateway';
import type { PartnerTransaction, Transaction } from './types';
import type { WechatPayClient } from './wechat-pay.client';
import type { WechatPayHttp } from './wechat-pay.http';

/**
 * A partner trade (sp_* / sub_* fields) in the neutral Transaction shape the business modules read:
 * mchid = sp_mchid, appid = the appid the payer was named under (sub_appid when given, else sp_appid),
 * payer.openid = sub_openid ?? sp_openid, sub_mchid kept. A direct trade is returned as it is. Decided
 * by the shape, not by the mode, so a partner-shaped notification reaching a direct deployment keeps
 * its sub_mchid and fails the order's check.
 */
export function neutralTransaction(raw: Transaction | PartnerTransaction): Transaction {
  const tx = raw as Partial<PartnerTransaction> & Partial<Transaction>;
  if (typeof tx.sp_mchid !== 'string') return raw as Transaction;
  const { sp_appid, sp_mchid, sub_appid, sub_mchid, payer, ...rest } = tx as PartnerTransaction;
  const openid = payer?.sub_openid ?? payer?.sp_openid;
  return {
    ...(rest as Omit<Transaction, 'appid' | 'mchid'>),
    appid: sub_appid ?? sp_appid,
    mchid: sp_mchid,
    sub_mchid,
    ...(openid !== undefined ? { payer: { openid } } : {}),
  } as Transaction;
}

const PARTNER_PATH: Record<GatewayChannel, string> = {
  jsapi: '/v3/pay/partner/transactions/jsapi',
  miniprogram: '/v3/pay/partner/transactions/jsapi',
  h5: '/v3/pay/partner/transactions/h5',
  native: '/v3/pay/partner/transactions/native',
};

/**
 * PaymentGateway over Pay APIv3 for a service provider (服务商): every trade names the provider
 * (sp_appid, sp_mchid: WECHAT_APPID, WECHATPAY_MCHID) and the order's sub-merchant (sub_mchid; the
 * default one, WECHATPAY_SUB_MCHID, when an order carries none). A payer under the provider's appid
 * is payer.sp_openid; under any other appid (the sub-merchant's own official account or
 * mini-program) it is sub_appid + payer.sub_openid. paySign is the provider's, over the appId the
 * payer pays in. Selected once in WechatModule when WECHATPAY_SUB_MCHID is set.
 */
export class WechatPayV3PartnerGateway implements PaymentGateway {
  constructor(
    private readonly http: WechatPayHttp,
    private readonly client: WechatPayClient,
    private readonly credentials: WechatCredentials,
    /** subMchid: the default sub-merchant; shopperAppid: the official account shoppers log in through (sp_appid, or WECHAT_SUB_APPID). */
    private readonly partner: { subMchid: string; shopperAppid?: string },
    private readonly miniprogramAppid: string | undefined,
    refundNotifyUrl?: string,
  ) {
    this.refunds = new V3RefundsAndBills(client, refundNotifyUrl);
  }

  /** Refunds (with the trade's sub_mchid) and bills (the trade bill per sub_mchid; the provider's own fund-flow bill) on the direct adapter's calls. */
  private readonly refunds: V3RefundsAndBills;

  private subMchid(merchant?: MerchantRef): string {
    return merchant?.subMchid ?? this.partner.subMchid;
  }

  appidFor(channel: GatewayChannel, merchant?: MerchantRef): string | undefined {
    // Shoppers of a sub-merchant with its own official account log in and pay through it (prepay:
    // sub_appid + payer.sub_openid; paySign over it), else through the provider's (payer.sp_openid).
    // Without a sub-merchant named: the default one's (WECHAT_SUB_APPID, else sp_appid). H5 and Native
    // name no payer: their prepay (and so the trade and its notification) carries sp_appid only.
    if (channel === 'miniprogram') return this.miniprogramAppid;
    if (channel !== 'jsapi') return this.credentials.appid;
    if (merchant) return merchant.subAppid ?? this.credentials.appid;
    return this.partner.shopperAppid ?? this.credentials.appid;
  }

  async prepay(channel: GatewayChannel, order: PrepayOrder): Promise<PrepayResult> {
    const body: Record<string, unknown> = {
      sp_appid: this.credentials.appid,
      sp_mchid: this.credentials.mchid,
      sub_mchid: this.subMchid(order.merchant),
      ...prepayBase(order),
    };
    const ip = order.clientIp && ipPattern.test(order.clientIp) ? order.clientIp : undefined;
    if (channel === 'jsapi' || channel === 'miniprogram') {
      if (!order.payer) throw new Error('a JSAPI prepay needs the payer');
      if (order.payer.appid === this.credentials.appid) {
        body.payer = { sp_openid: order.payer.openid };
      } else {
        body.sub_appid = order.payer.appid;
        body.payer = { sub_openid: order.payer.openid };
      }
      if (ip) body.scene_info = { payer_client_ip: ip };
    } else if (channel === 'h5') {
      if (!order.clientIp) throw new Error('an H5 prepay needs the payer client ip');
      body.scene_info = {
        payer_client_ip: order.clientIp,
        h5_info: { type: 'Wap', ...(order.site ? { app_name: order.site.appName.slice(0, 64), app_url: order.site.appUrl.slice(0, 128) } : {}) },
      };
    } else if (ip) {
      body.scene_info = { payer_client_ip: ip };
    }
    const res = await this.http.request<Record<string, unknown>>({ method: 'POST', path: PARTNER_PATH[channel], body });
    const field = channel === 'h5' ? 'h5_url' : channel === 'native' ? 'code_url' : 'prepay_id';
    const value = res.body?.[field];
    if (typeof value !== 'string') throw new WechatPayApiError(200, 'INVALID_RESPONSE', `response lacks ${field}`, res.requestId);
    if (channel === 'h5') return { kind: 'h5_url', h5Url: value };
    if (channel === 'native') return { kind: 'code_url', codeUrl: value };
    return { kind: 'prepay_id', prepayId: value };
  }

  invokeParams(channel: GatewayChannel, prepay: PrepayResult, appid: string): InvokeParams {
    if (channel === 'h5') {
      if (prepay.kind !== 'h5_url') throw new Error('not an h5 prepay');
      return { h5Url: prepay.h5Url };
    }
    if (channel === 'native') {
      if (prepay.kind !== 'code_url') throw new Error('not a native prepay');
      return { codeUrl: prepay.codeUrl };
    }
    if (prepay.kind !== 'prepay_id') throw new Error(`a ${prepay.kind} prepay has no prepay_id`);
    const params: InvokeParams = { ...this.client.buildJsapiInvokeParams(prepay.prepayId, undefined, undefined, appid) };
    if (channel === 'miniprogram') delete params.appId;
    return params;
  }

  async query(outTradeNo: string, merchant?: MerchantRef): Promise<Transaction> {
    const res = await this.http.request<PartnerTransaction>({
      method: 'GET',
      path: `/v3/pay/partner/transactions/out-trade-no/${encodeURIComponent(outTradeNo)}`,
      query: { sp_mchid: this.credentials.mchid, sub_mchid: this.subMchid(merchant) },
    });
    if (!res.body || typeof res.body !== 'object' || !('trade_state' in res.body)) {
      throw new WechatPayApiError(200, 'INVALID_RESPONSE', 'response lacks trade_state', res.requestId);
    }
    return neutralTransaction(res.body);
  }

  async close(outTradeNo: string, merchant?: MerchantRef): Promise<void> {
    await this.http.request({
      method: 'POST',
      path: `/v3/pay/partner/transactions/out-trade-no/${encodeURIComponent(outTradeNo)}/close`,
      body: { sp_mchid: this.credentials.mchid, sub_mchid: this.subMchid(merchant) },
    });
  }

  /** POST /v3/refund/domestic/refunds with the order's sub_mchid (the default sub-merchant when none). */
  refund(request: RefundRequest): Promise<RefundResult> {
    return this.refunds.refund(request, this.subMchid(request.merchant));
  }

  /** GET /v3/refund/domestic/refunds/{no}?sub_mchid=… */
  queryRefund(outRefundNo: string, merchant?: MerchantRef): Promise<RefundResult> {
    return this.refunds.queryRefund(outRefundNo, this.subMchid(merchant));
  }

  /** GET /v3/bill/tradebill?sub_mchid=… for one sub-merchant; without `merchant`, the provider's bill of every sub-merchant. */
  tradeBill(date: string, type: TradeBillKind, merchant?: MerchantRef): Promise<Readable> {
    return this.refunds.tradeBill(date, type, merchant?.subMchid);
  }

  fundFlowBill(date: string, account: FundFlowAccount): Promise<Readable> {
    return this.refunds.fundFlowBill(date, account);
  }

  /** GET /v3/bill/sub-merchant-fundflowbill (AEAD_AES_256_GCM, GZIP), then every part downloaded, decrypted, gunzipped and hash-checked. */
  async subMerchantFundFlowBill(date: string, account: FundFlowAccount, merchant: MerchantRef): Promise<Readable> {
    const list = await this.client.applySubMerchantFundFlowBill({ subMchid: merchant.subMchid, billDate: date, accountType: account, tarType: 'GZIP' });
    return this.client.downloadEncryptedBill(list);
  }
}
