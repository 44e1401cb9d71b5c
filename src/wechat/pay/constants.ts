/** Wire constants of WeChat Pay APIv3 (../shared/wechatpay-protocol.md sections A–C). */
export const AUTH_SCHEME = 'WECHATPAY2-SHA256-RSA2048';
export const HEADER_TIMESTAMP = 'wechatpay-timestamp';
export const HEADER_NONCE = 'wechatpay-nonce';
export const HEADER_SIGNATURE = 'wechatpay-signature';
export const HEADER_SERIAL = 'wechatpay-serial';
export const HEADER_SIGNATURE_TYPE = 'wechatpay-signature-type';
export const HEADER_REQUEST_ID = 'request-id';
export const PUBLIC_KEY_ID_PREFIX = 'PUB_KEY_ID_';
/** Notifications WeChat sends deliberately unverifiable, to check the merchant verifies. */
export const SIGNATURE_PROBE_PREFIX = 'WECHATPAY/SIGNTEST/';
export const AEAD_AES_256_GCM = 'AEAD_AES_256_GCM';
/** |now - Wechatpay-Timestamp| must stay below this (the official SDKs reject at >= 5 minutes). */
export const MAX_CLOCK_SKEW_SECONDS = 300;
export const USER_AGENT = 'wechat-h5-pay/0.1 (node)';
