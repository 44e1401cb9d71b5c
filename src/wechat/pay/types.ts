/* Request and response shapes of WeChat Pay APIv3, with the official snake_case field names. */

export interface EncryptedResource {
  algorithm: string;
  ciphertext: string;
  nonce: string;
  associated_data?: string;
  original_type?: string;
}

export interface Amount {
  total: number;
  currency?: string;
}

/** `limit_pay` values: restrict the payment methods the payer may use. */
export type LimitPay = 'no_balance' | 'no_credit' | 'no_debit' | 'balance_only';

/** `scene_info.store_info`: the merchant's store where the payment happens. */
export interface StoreInfo {
  /** Merchant-side store id. */
  id: string;
  name?: string;
  /** Administrative region code of the store (行政区划码). */
  area_code?: string;
  address?: string;
}

export interface JsapiPrepayRequest {
  appid: string;
  mchid: string;
  description: string;
  out_trade_no: string;
  time_expire?: string;
  attach?: string;
  notify_url: string;
  goods_tag?: string;
  limit_pay?: LimitPay[];
  support_fapiao?: boolean;
  amount: Amount;
  payer: { openid: string };
  detail?: {
    cost_price?: number;
    invoice_id?: string;
    goods_detail?: Array<{
      merchant_goods_id: string;
      wechatpay_goods_id?: string;
      goods_name?: string;
      quantity: number;
      unit_price: number;
    }>;
  };
  scene_info?: { payer_client_ip: string; device_id?: string; store_info?: StoreInfo };
  settle_info?: { profit_sharing?: boolean };
}

/** `scene_info.h5_info` of an H5 prepay (`type` Wap for a mobile web site). */
export interface H5Info {
  type: 'Wap' | 'iOS' | 'Android';
  app_name?: string;
  app_url?: string;
  bundle_id?: string;
  package_name?: string;
}

/** POST /v3/pay/transactions/h5: like JSAPI without `payer`, and `scene_info` (with the payer's IP and h5_info) required. */
export interface H5PrepayRequest extends Omit<JsapiPrepayRequest, 'payer' | 'scene_info'> {
  scene_info: { payer_client_ip: string; device_id?: string; store_info?: StoreInfo; h5_info: H5Info };
}

export interface H5PrepayResponse {
  /** The cashier URL (valid 5 minutes); the shop appends `&redirect_url=…`. */
  h5_url: string;
}

/** POST /v3/pay/transactions/native: like JSAPI without `payer`. */
export type NativePrepayRequest = Omit<JsapiPrepayRequest, 'payer'>;

export interface NativePrepayResponse {
  /** `weixin://wxpay/bizpayurl?pr=…`, shown as a QR code (valid 2 hours). */
  code_url: string;
}

export interface JsapiPrepayResponse {
  prepay_id: string;
}

/** Parameters for WeixinJSBridge.invoke('getBrandWCPayRequest', …). */
export interface JsapiInvokeParams {
  appId: string;
  timeStamp: string;
  nonceStr: string;
  package: string;
  signType: 'RSA';
  paySign: string;
}

export type TradeState = 'SUCCESS' | 'REFUND' | 'NOTPAY' | 'CLOSED' | 'REVOKED' | 'USERPAYING' | 'PAYERROR';

export interface Transaction {
  appid: string;
  mchid: string;
  out_trade_no: string;
  transaction_id?: string;
  trade_type?: string;
  trade_state: TradeState;
  trade_state_desc?: string;
  bank_type?: string;
  attach?: string;
  success_time?: string;
  payer?: { openid?: string };
  amount?: { total?: number; payer_total?: number; currency?: string; payer_currency?: string };
  scene_info?: { device_id?: string };
  promotion_detail?: unknown[];
  /**
   * Service-provider mode: the sub-merchant the trade belongs to (partner answers and notifications
   * are normalised by neutralTransaction: mchid = sp_mchid, appid = sub_appid ?? sp_appid,
   * payer.openid = sub_openid ?? sp_openid). Absent for a direct merchant's trade.
   */
  sub_mchid?: string;
}

/** A partner (服务商) trade as WeChat sends it: queries of /v3/pay/partner/transactions and partner notifications. */
export interface PartnerTransaction extends Omit<Transaction, 'appid' | 'mchid' | 'payer'> {
  sp_appid: string;
  sp_mchid: string;
  sub_appid?: string;
  sub_mchid: string;
  payer?: { sp_openid?: string; sub_openid?: string };
}

export interface CreateRefundRequest {
  /** Service provider (服务商): the trade's sub-merchant. */
  sub_mchid?: string;
  transaction_id?: string;
  out_trade_no?: string;
  out_refund_no: string;
  reason?: string;
  notify_url?: string;
  funds_account?: string;
  amount: { refund: number; total: number; currency: string; from?: Array<{ account: string; amount: number }> };
  goods_detail?: Array<{
    merchant_goods_id: string;
    wechatpay_goods_id?: string;
    goods_name?: string;
    unit_price: number;
    refund_amount: number;
    refund_quantity: number;
  }>;
}

export type RefundStatus = 'SUCCESS' | 'CLOSED' | 'PROCESSING' | 'ABNORMAL';

export interface Refund {
  refund_id: string;
  out_refund_no: string;
  transaction_id: string;
  out_trade_no: string;
  channel?: string;
  user_received_account?: string;
  success_time?: string;
  create_time?: string;
  status: RefundStatus;
  funds_account?: string;
  amount: {
    total: number;
    refund: number;
    payer_total?: number;
    payer_refund?: number;
    settlement_refund?: number;
    settlement_total?: number;
    discount_refund?: number;
    currency?: string;
    refund_fee?: number;
    from?: Array<{ account: string; amount: number }>;
  };
  promotion_detail?: unknown[];
}

/** Decrypted resource of a REFUND.* notification (note `refund_status`, not `status`). */
export interface RefundNotificationResource {
  /** Direct merchant; a service provider's notification has sp_mchid + sub_mchid instead. */
  mchid?: string;
  sp_mchid?: string;
  sub_mchid?: string;
  transaction_id: string;
  out_trade_no: string;
  refund_id: string;
  out_refund_no: string;
  refund_status: RefundStatus;
  success_time?: string;
  user_received_account?: string;
  amount: { total: number; refund: number; payer_total: number; payer_refund: number };
}

export interface NotificationEnvelope {
  id: string;
  create_time: string;
  resource_type: string;
  event_type: string;
  summary?: string;
  resource: EncryptedResource;
}

export type TradeBillType = 'ALL' | 'SUCCESS' | 'REFUND';
export type FundFlowAccountType = 'BASIC' | 'OPERATION' | 'FEES';

export interface BillApplyResponse {
  hash_type: string;
  hash_value: string;
  download_url: string;
}

/** One part of an encrypted bill (申请单个子商户资金账单): download it, decrypt it, check its hash. */
export interface EncryptedBillPart {
  /** From 1: the parts, decrypted, are joined in this order. */
  bill_sequence: number;
  download_url: string;
  /** The part's AES-256-GCM key, RSA-OAEP-encrypted with the merchant's API public key, base64. */
  encrypt_key: string;
  hash_type: string;
  /** Of the part's plain text (decrypted, and gunzipped when applied for as GZIP). */
  hash_value: string;
  /** The GCM nonce (IV), as its UTF-8 bytes. */
  nonce: string;
}

export interface EncryptedBillList {
  download_bill_count: number;
  download_bill_list: EncryptedBillPart[];
}

export interface CertificateEntry {
  serial_no: string;
  effective_time: string;
  expire_time: string;
  encrypt_certificate: EncryptedResource;
}

export interface CertificatesResponse {
  data: CertificateEntry[];
}

/** A platform certificate after decryption and parsing. */
export interface PlatformCertificate {
  serialNo: string;
  pem: string;
  effectiveTime: Date;
  expireTime: Date;
}
