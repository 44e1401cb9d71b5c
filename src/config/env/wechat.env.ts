import { IsIn, IsOptional, Length, Matches } from 'class-validator';
import { IsBaseUrl, IsBooleanString, IsDuration } from './validators';

/** WeChat official account and WeChat Pay merchant settings. Property names are the variable names. */
export class WechatEnv {
  @IsOptional()
  @IsIn(['sandbox', 'live'], { message: 'must be sandbox or live' })
  WECHAT_MODE?: string = undefined;

  @IsOptional()
  @Matches(/^wx[0-9a-zA-Z]{16}$/, { message: 'must be an official-account appid: "wx" followed by 16 letters or digits' })
  WECHAT_APPID?: string = undefined;

  @IsOptional()
  @Matches(/^[0-9a-zA-Z]{32}$/, { message: 'must be the 32-character AppSecret of the official account' })
  WECHAT_APPSECRET?: string = undefined;

  @IsOptional()
  @Matches(/^wx[0-9a-zA-Z]{16}$/, { message: 'must be the mini-program AppID (wx followed by 16 letters or digits)' })
  WECHAT_MINIPROGRAM_APPID?: string = undefined;

  @IsOptional()
  @Matches(/^[0-9a-zA-Z]{32}$/, { message: 'must be the 32-character AppSecret of the mini-program' })
  WECHAT_MINIPROGRAM_APPSECRET?: string = undefined;

  @IsOptional()
  @Matches(/^\d{8,12}$/, { message: 'must be the numeric merchant id (8 to 12 digits)' })
  WECHATPAY_MCHID?: string = undefined;

  /** Service-provider (服务商) mode: the default sub-merchant's mchid; unset = direct mode. */
  @IsOptional()
  @Matches(/^\d{8,12}$/, { message: 'must be the numeric mchid of the default sub-merchant (8 to 12 digits); unset it for direct mode' })
  WECHATPAY_SUB_MCHID?: string = undefined;

  /** Service-provider mode: the sub-merchant's own official account (with WECHAT_SUB_APPSECRET). */
  @IsOptional()
  @Matches(/^wx[0-9a-zA-Z]{16}$/, { message: "must be the sub-merchant's official-account appid: \"wx\" followed by 16 letters or digits" })
  WECHAT_SUB_APPID?: string = undefined;

  @IsOptional()
  @Matches(/^[0-9a-zA-Z]{32}$/, { message: "must be the 32-character AppSecret of the sub-merchant's official account" })
  WECHAT_SUB_APPSECRET?: string = undefined;

  @IsOptional()
  WECHATPAY_PRIVATE_KEY_PATH?: string = undefined;

  @IsOptional()
  @Matches(/^[0-9A-Fa-f]{8,64}$/, { message: 'must be the hexadecimal serial number of the merchant API certificate' })
  WECHATPAY_CERT_SERIAL?: string = undefined;

  @IsOptional()
  @Length(32, 32, { message: 'must be exactly 32 characters (the APIv3 key set in the merchant portal)' })
  WECHATPAY_APIV3_KEY?: string = undefined;

  @IsOptional()
  WECHATPAY_PUBLIC_KEY_PATH?: string = undefined;

  /** Which WeChat Pay API the shop speaks: v3 (default) or v2 (XML, signed with the APIv2 key). */
  @IsOptional()
  @IsIn(['v3', 'v2'], { message: 'must be v3 (the default) or v2' })
  WECHATPAY_API_VERSION?: string = undefined;

  @IsOptional()
  @Length(32, 32, { message: 'must be exactly 32 characters (the APIv2 key, API密钥, set in the merchant portal; not the APIv3 key)' })
  WECHATPAY_API_V2_KEY?: string = undefined;

  @IsOptional()
  @IsIn(['HMAC-SHA256', 'MD5'], { message: 'must be HMAC-SHA256 (the default) or MD5' })
  WECHATPAY_V2_SIGN_TYPE?: string = undefined;

  /** apiclient_cert.pem: the merchant API certificate APIv2 refunds present over mutual TLS. */
  @IsOptional()
  WECHATPAY_CERT_PATH?: string = undefined;

  @IsOptional()
  @Matches(/^PUB_KEY_ID_[0-9A-Za-z]+$/, { message: 'must start with PUB_KEY_ID_ (the id shown beside the WeChat Pay public key)' })
  WECHATPAY_PUBLIC_KEY_ID?: string = undefined;

  @IsOptional()
  @IsBaseUrl()
  WECHATPAY_API_BASE?: string = undefined;

  @IsOptional()
  @IsBaseUrl()
  WECHATPAY_API_BACKUP_BASE?: string = undefined;

  /**
   * Where the APIv2 calls needing the merchant certificate go (mutual TLS: /secapi/pay/refund,
   * /pay/downloadfundflow). Default WECHATPAY_API_BASE; a standalone sandbox's mutual-TLS port otherwise.
   */
  @IsOptional()
  @IsBaseUrl()
  WECHATPAY_SECAPI_BASE?: string = undefined;

  @IsOptional()
  @IsBaseUrl()
  WECHAT_API_BASE?: string = undefined;

  @IsOptional()
  @IsBaseUrl()
  WECHAT_OPEN_BASE?: string = undefined;

  /**
   * Path of the MP_verify_<code>.txt file the official account's 网页授权域名 setting asks for; served at
   * /MP_verify_<code>.txt so that WeChat can check the domain. Unset: not served.
   */
  @IsOptional()
  WECHAT_MP_VERIFY_FILE?: string = undefined;

  /** Use POST /cgi-bin/stable_token (does not invalidate tokens other instances hold). Default true. */
  @IsOptional()
  @IsBooleanString()
  WECHAT_USE_STABLE_TOKEN?: string = undefined;

  /** Per-call timeout for WeChat APIs. Default 10s. */
  @IsOptional()
  @IsDuration({ minMs: 100 })
  WECHAT_HTTP_TIMEOUT?: string = undefined;

  /** Beyond this offset between WeChat's clock and ours (measured from its answers) /health is degraded. Default 30s. */
  @IsOptional()
  @IsDuration({ minMs: 1000, message: 'must be a duration of at least 1s, such as 30s or 2m' })
  WECHATPAY_CLOCK_SKEW_MAX?: string = undefined;
}
