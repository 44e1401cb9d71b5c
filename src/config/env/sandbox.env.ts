import { IsIn, IsOptional, Matches } from 'class-validator';
import { IsBooleanString, IsDuration, IsIntString, IsNumberString } from './validators';

/** Settings of the built-in WeChat sandbox (ignored in live mode). Property names are the variable names. */
export class SandboxEnv {
  /** Port of `npm run sandbox` (the sandbox alone). Default 3100. */
  @IsOptional()
  @IsIntString(0, 65535)
  SANDBOX_PORT?: string = undefined;

  /** The sandbox's mutual-TLS port (/secapi/…, /pay/downloadfundflow). Default 0: a free port chosen at start-up. */
  @IsOptional()
  @IsIntString(0, 65535)
  SANDBOX_SECAPI_PORT?: string = undefined;

  /** Divides every sandbox delay (notification retries, refund completion). Default 1; tests use e.g. 1000. */
  @IsOptional()
  @IsNumberString(0.001, 1_000_000)
  SANDBOX_TIME_SCALE?: string = undefined;

  /** JSAPI payment directories registered with the sandbox merchant (comma-separated URL prefixes). */
  @IsOptional()
  SANDBOX_PAY_DIRECTORIES?: string = undefined;

  /**
   * Which key signs answers and notifications: the WeChat Pay public key (public_key, default; also
   * spelt publickey), the platform certificate (certificate), or migration: each answer with the key the
   * request's Wechatpay-Serial names (platform certificate when none), notifications with either at random.
   */
  @IsOptional()
  @IsIn(['public_key', 'publickey', 'certificate', 'migration'], { message: 'must be public_key (or publickey), certificate or migration' })
  SANDBOX_SIGN_MODE?: string = undefined;

  /**
   * Which sandbox merchant the app runs against: direct (default) or partner — the sandbox merchant as a
   * service provider, the app in service-provider mode with the sandbox's first sub-merchant
   * (1900000201) as WECHATPAY_SUB_MCHID unless that is set. The sandbox itself serves both kinds.
   */
  @IsOptional()
  @IsIn(['direct', 'partner'], { message: 'must be direct (the default) or partner' })
  SANDBOX_MERCHANT_TYPE?: string = undefined;

  /**
   * How many sub-merchants are bound to the sandbox provider: 1900000201, 1900000202, … (at most 50,
   * up to 1900000250). Default 2.
   */
  @IsOptional()
  @IsIntString(1, 50)
  SANDBOX_SUB_MERCHANTS?: string = undefined;

  /** JS-safe domains (wx.config page hosts). Default: the app's own host (standalone: localhost, 127.0.0.1). */
  @IsOptional()
  @Matches(/^[A-Za-z0-9.-]+(,[A-Za-z0-9.-]+)*$/, { message: 'must be a comma-separated list of host names' })
  SANDBOX_JS_DOMAINS?: string = undefined;

  /** H5 payment domains (H5支付域名): hosts whose pages may open an h5_url (checked on the Referer). Default: the app's own host (standalone: localhost, 127.0.0.1). */
  @IsOptional()
  @Matches(/^[A-Za-z0-9.-]+(,[A-Za-z0-9.-]+)*$/, { message: 'must be a comma-separated list of host names' })
  SANDBOX_H5_DOMAINS?: string = undefined;

  /** Web-authorization (OAuth redirect_uri) domains. Default: as SANDBOX_JS_DOMAINS. */
  @IsOptional()
  @Matches(/^[A-Za-z0-9.-]+(,[A-Za-z0-9.-]+)*$/, { message: 'must be a comma-separated list of host names' })
  SANDBOX_OAUTH_DOMAINS?: string = undefined;

  /** How long a refund stays PROCESSING before it succeeds (divided by SANDBOX_TIME_SCALE). Default 10s. */
  @IsOptional()
  @IsDuration({ minMs: 0 })
  SANDBOX_REFUND_DELAY?: string = undefined;

  /** Lifetime of a bill download_url (older docs: 30 s, current: 5 minutes). Default 30s. */
  @IsOptional()
  @IsDuration({ minMs: 1000 })
  SANDBOX_BILL_URL_TTL?: string = undefined;

  /** A notification not answered 200/204 within this is a failure. Default 5s (not scaled). */
  @IsOptional()
  @IsDuration({ minMs: 10 })
  SANDBOX_NOTIFY_TIMEOUT?: string = undefined;

  /**
   * What a refund beyond the order's refundable amount answers: NOT_ENOUGH (403, the default) or
   * INVALID_REQUEST (400, what the current WeChat error table lists for "amount exceeds refundable").
   */
  @IsOptional()
  @IsIn(['NOT_ENOUGH', 'INVALID_REQUEST'], { message: 'must be NOT_ENOUGH or INVALID_REQUEST' })
  SANDBOX_OVER_REFUND_ERROR?: string = undefined;

  /** Keep sandbox state (users, orders, refunds) under DATA_DIR/sandbox across restarts. Default true, false when NODE_ENV=test. */
  @IsOptional()
  @IsBooleanString()
  SANDBOX_PERSIST_STATE?: string = undefined;

  /**
   * An instance in sandbox mode that runs its own simulated WeChat holds a lease in the database, and a
   * second such instance on the same database refuses to start (each would simulate a different WeChat).
   * false turns the check off. Default true.
   */
  @IsOptional()
  @IsBooleanString()
  SANDBOX_INSTANCE_LOCK?: string = undefined;

  /** When set, /sandbox/control/* requires `Authorization: Bearer <token>` (401 otherwise). Default unset: open. */
  @IsOptional()
  @Matches(/^[\x21-\x7e]{16,}$/, { message: 'must be a token of at least 16 printable characters without spaces' })
  SANDBOX_CONTROL_TOKEN?: string = undefined;
}
