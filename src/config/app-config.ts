export type WechatMode = 'sandbox' | 'live';

export type DatabaseConfig =
  | { type: 'sqlite'; path: string }
  | {
      type: 'mysql';
      url: string;
      host: string;
      port: number;
      username: string;
      password: string;
      database: string;
    };

export interface WechatConfig {
  /** Official-account appid. In sandbox mode filled from the sandbox keystore at start-up. */
  appid?: string;
  appsecret?: string;
  mchid?: string;
  privateKeyPath?: string;
  certSerial?: string;
  apiv3Key?: string;
  publicKeyPath?: string;
  publicKeyId?: string;
  /** WECHATPAY_API_VERSION: v3 (default) or v2. */
  apiVersion: 'v3' | 'v2';
  /** WECHATPAY_API_V2_KEY: the 32-character APIv2 key (v2 only; sandbox: the keystore's). */
  apiV2Key?: string;
  /** WECHATPAY_V2_SIGN_TYPE: the APIv2 sign algorithm (default HMAC-SHA256). */
  v2SignType: 'HMAC-SHA256' | 'MD5';
  /** WECHATPAY_CERT_PATH: apiclient_cert.pem, for APIv2 refunds over mutual TLS. */
  certPath?: string;
  /**
   * The mini-program (WECHAT_MINIPROGRAM_APPID + WECHAT_MINIPROGRAM_APPSECRET, both or neither).
   * Undefined = no mini-program login or pay, except in sandbox mode, where the sandbox keystore
   * registers one (read it from WechatCredentials.miniprogram, which covers both modes).
   */
  miniprogram?: { appid: string; appsecret: string };
  /**
   * Service-provider (服务商) mode, on when WECHATPAY_SUB_MCHID is set: mchid/appid/keys above are then
   * the provider's (sp_mchid, sp_appid); subMchid is the default sub-merchant, subApp its own
   * official account (WECHAT_SUB_APPID + WECHAT_SUB_APPSECRET, both or neither). Undefined = direct mode.
   */
  partner?: { subMchid: string; subApp?: { appid: string; appsecret: string } };
  /** Base of the Pay APIv3 (no trailing slash). */
  payApiBase: string;
  /** Undefined: no failover (the primary is not WeChat's own domain and no backup was configured). */
  payApiBackupBase?: string;
  /**
   * WECHATPAY_SECAPI_BASE: where the APIv2 calls that need the merchant certificate (mutual TLS:
   * /secapi/pay/refund, /pay/downloadfundflow) go. Undefined = payApiBase (with its backup), except in
   * sandbox mode with the app's own sandbox, whose mutual-TLS endpoint is on a port of its own.
   */
  secapiBase?: string;
  /** Base of api.weixin.qq.com (sns/*, cgi-bin/*). */
  mpApiBase: string;
  /** Base of open.weixin.qq.com (connect/oauth2/authorize). */
  openBase: string;
  useStableToken: boolean;
  /** WECHAT_MP_VERIFY_FILE: the domain-verification file served at /<name> (name MP_verify_<code>.txt). */
  mpVerifyFile?: { name: string; content: string };
  httpTimeoutMs: number;
  /** WECHATPAY_CLOCK_SKEW_MAX: past this offset from WeChat's clock /health reports "degraded". */
  clockSkewMaxMs: number;
}

export interface SandboxConfig {
  port: number;
  /**
   * SANDBOX_SECAPI_PORT: the sandbox's mutual-TLS port for /secapi/… and /pay/downloadfundflow (the
   * calls WeChat takes only with the merchant certificate); 0 (default) = a free port chosen at start-up.
   */
  secapiPort: number;
  /** ./data/sandbox by default: keystore and persisted sandbox state. */
  dataDir: string;
  timeScale: number;
  /** Registered JSAPI payment directories; empty = the app's own origin + '/' (standalone: localhost). */
  payDirectories: string[];
  /**
   * Which key the sandbox signs with: the WeChat Pay public key (public_key), the platform certificate
   * (certificate), or — like WeChat during a merchant's certificate → public-key migration — the key each
   * request's Wechatpay-Serial names, and either at random for notifications (migration).
   */
  signMode: 'public_key' | 'certificate' | 'migration';
  /** Empty = the app's own host (standalone: localhost, 127.0.0.1). */
  jsDomains: string[];
  /** H5 payment domains; empty = as jsDomains' default (the app's own host). */
  h5Domains: string[];
  oauthDomains: string[];
  refundDelayMs: number;
  billUrlTtlMs: number;
  notifyTimeoutMs: number;
  persistState: boolean;
  /** Answer to a refund beyond the refundable amount: 403 NOT_ENOUGH (default) or 400 INVALID_REQUEST. */
  overRefundError: 'NOT_ENOUGH' | 'INVALID_REQUEST';
  /** SANDBOX_INSTANCE_LOCK: one instance using its own sandbox per database (see SandboxInstanceLock). */
  instanceLock: boolean;
  /** SANDBOX_CONTROL_TOKEN: when set, /sandbox/control/* requires it as a bearer token. */
  controlToken?: string;
  /** SANDBOX_SUB_MERCHANTS: how many sub-merchants are bound to the sandbox provider (1900000201, …). */
  subMerchants: number;
}

/**
 * The validated, typed configuration. Built once by `loadConfig(env)`; services inject it
 * (`constructor(private readonly config: AppConfig)`) and never read `process.env`.
 * It is an abstract class only so that it can serve as its own injection token.
 */
export abstract class AppConfig {
  port: number;
  /** Address to bind; undefined = all interfaces (live mode's default). Sandbox mode defaults to 127.0.0.1. */
  host?: string;
  /** Serve /docs and /docs-json (API_DOCS). */
  apiDocs: boolean;
  nodeEnv: 'development' | 'production' | 'test';
  /** Externally visible base URL, no trailing slash. */
  publicBaseUrl: string;
  /** Express 'trust proxy' value: false (none), a hop count, or a list of addresses/CIDRs/names. */
  trustProxy: false | number | string[];
  dataDir: string;
  logLevel: string;
  database: DatabaseConfig;
  redisUrl?: string;
  redisPrefix: string;
  wechatMode: WechatMode;
  wechat: WechatConfig;
  admin: { tokens: string[]; rateLimitPerMinute: number };
  /** Undefined outside live mode means: generate one and keep it under dataDir (see resolveSessionSecret). */
  session: { secret?: string; ttlMs: number; authorizeRatePerMinute: number };
  /** Node HTTP server timeouts (slow clients). */
  http: { headersTimeoutMs: number; requestTimeoutMs: number; keepAliveTimeoutMs: number };
  orders: {
    closeAfterMs: number;
    reconcileIntervalMs: number;
    reconcileAfterMs: number;
    closeIntervalMs: number;
    jobBatch: number;
    wechatConcurrency: number;
    queryOnReadAfterMs: number;
    /** PAYMENT_PREPAY_RETRIES / PAYMENT_PREPAY_RETRY_BACKOFF: retries of a prepay that failed for a passing reason. */
    prepayRetries: number;
    prepayRetryBackoffMs: number;
    paidAfterCloseAction: 'refund' | 'reinstate' | 'hold';
    /** PAYMENT_AFTER_CLOSE_RETRY_AFTER: a payment after close still unresolved this long after its last change is pursued again. */
    afterCloseRetryAfterMs: number;
    notifyBatchMax: number;
    seedDemoProducts: boolean;
    notifyFastPath: boolean;
    notifyRejectRatePerMinute: number;
    notifyBodyTimeoutMs: number;
    rejectedEventsRetentionMs: number;
    /** H5 pay: the site WeChat's cashier names (WECHATPAY_H5_APP_NAME, WECHATPAY_H5_APP_URL). */
    h5: { appName: string; appUrl: string };
    /** CATALOG_CACHE_TTL: how old the in-process product copy POST /orders prices from may be (0 = off). */
    catalogCacheTtlMs: number;
    /** Per-shopper limits against stock hoarding and WeChat call floods (0 = no limit where allowed). */
    limits: {
      maxOpenPerUser: number;
      maxReservedPerProduct: number;
      createPerMinute: number;
      payPerMinute: number;
      readPerMinute: number;
      queryOnReadPerMinute: number;
    };
  };
  /** The demo H5 shop page at / (static files under public/). */
  shop: { demo: boolean };
  billing: { refundQueryAfterMs: number; refundQueryIntervalMs: number; reconcileCron: string };
  jssdk: { allowedDomains: string[]; apiList: string[]; refreshAheadMs: number };
  /**
   * GET /metrics: `token` (METRICS_TOKEN) required as a bearer token when set; unset = open in sandbox
   * mode, 404 in live mode. The backlog gauges count what is older than the two thresholds.
   */
  metrics: { token?: string; unpaidOverdueAfterMs: number; refundProcessingAfterMs: number };
  sandbox: SandboxConfig;
}

export const SANDBOX_ADMIN_TOKEN = 'sandbox-admin-token-change-me';
