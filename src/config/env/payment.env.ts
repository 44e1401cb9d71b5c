import { IsIn, IsOptional, IsUrl, Length } from 'class-validator';
import { IsBooleanString, IsDuration, IsIntString } from './validators';

/** Orders, payment jobs and notification handling. Property names are the variable names. */
export class PaymentEnv {
  /** How often the reconcile job queries WeChat for unpaid orders with a prepay (lost notifications). Default 10s. */
  @IsOptional()
  @IsDuration({ minMs: 100 })
  PAYMENT_RECONCILE_INTERVAL?: string = undefined;

  /** A prepay older than this without a notification is queried by the reconcile job. Default 60s. */
  @IsOptional()
  @IsDuration({ minMs: 0 })
  PAYMENT_RECONCILE_AFTER?: string = undefined;

  /** A payment after close still unresolved this long after its last change is pursued again (its follow-up event was lost). Default 20s. */
  @IsOptional()
  @IsDuration({ minMs: 0 })
  PAYMENT_AFTER_CLOSE_RETRY_AFTER?: string = undefined;

  /** How often the auto-close job looks for orders past ORDER_CLOSE_AFTER. Default 10s. */
  @IsOptional()
  @IsDuration({ minMs: 100 })
  PAYMENT_CLOSE_INTERVAL?: string = undefined;

  /** Orders per job batch. Default 100. */
  @IsOptional()
  @IsIntString(1, 10_000)
  PAYMENT_JOB_BATCH?: string = undefined;

  /** Concurrent WeChat calls of one job. Default 8. */
  @IsOptional()
  @IsIntString(1, 256)
  PAYMENT_WECHAT_CONCURRENCY?: string = undefined;

  /** GET /orders/:no asks WeChat when the order is unpaid and its prepay is older than this. Default 5s. */
  @IsOptional()
  @IsDuration({ minMs: 0 })
  PAYMENT_QUERY_ON_READ_AFTER?: string = undefined;

  /** A prepay WeChat answers with SYSTEM_ERROR / 5xx / 429, or that fails on the network, is sent again this many times (same out_trade_no, same body). Default 2. */
  @IsOptional()
  @IsIntString(0, 10)
  PAYMENT_PREPAY_RETRIES?: string = undefined;

  /** Wait before the first prepay retry; doubled for each further one. Default 200ms. */
  @IsOptional()
  @IsDuration({ minMs: 0 })
  PAYMENT_PREPAY_RETRY_BACKOFF?: string = undefined;

  /** What to do with a payment for an order already closed: refund (default), reinstate (if stock allows), hold. */
  @IsOptional()
  @IsIn(['refund', 'reinstate', 'hold'], { message: 'must be refund, reinstate or hold' })
  PAID_AFTER_CLOSE_ACTION?: string = undefined;

  /** Largest group of payments applied in one database transaction. Default 64. */
  @IsOptional()
  @IsIntString(1, 1000)
  NOTIFY_BATCH_MAX?: string = undefined;

  /** Answer POST /notify/wechatpay/transaction before Express (see NotifyFastPath). Default true. */
  @IsOptional()
  @IsBooleanString()
  NOTIFY_FAST_PATH?: string = undefined;

  /** Notifications failing verification allowed per client IP per minute; past it 429 with Retry-After. Default 30. */
  @IsOptional()
  @IsIntString(1, 1_000_000)
  NOTIFY_REJECT_RATE_LIMIT?: string = undefined;

  /** A notification body not fully received this long after the request started is cut off (408). Default 10s. */
  @IsOptional()
  @IsDuration({ minMs: 100 })
  NOTIFY_BODY_TIMEOUT?: string = undefined;

  /** How long POST /orders may price and permit orders from an in-process copy of a product (0 = off; at most 60s). Default 1s. */
  @IsOptional()
  @IsDuration({ minMs: 0, maxMs: 60_000 })
  CATALOG_CACHE_TTL?: string = undefined;

  /** Unpaid orders one shopper may hold at once; past it POST /orders answers 429 TOO_MANY_OPEN_ORDERS. 0 = no limit. Default 5. */
  @IsOptional()
  @IsIntString(0, 1_000_000)
  ORDER_MAX_OPEN_PER_USER?: string = undefined;

  /** Units of one stocked product one shopper may hold in unpaid orders at once (429 TOO_MANY_RESERVED_UNITS). 0 = no limit. Default 20. */
  @IsOptional()
  @IsIntString(0, 1_000_000)
  ORDER_MAX_RESERVED_PER_PRODUCT?: string = undefined;

  /** POST /orders per shopper per minute; past it 429 with Retry-After. Default 10. */
  @IsOptional()
  @IsIntString(1, 1_000_000)
  ORDER_CREATE_RATE_LIMIT?: string = undefined;

  /** POST /orders/:no/pay per shopper per minute; past it 429 with Retry-After. Default 20. */
  @IsOptional()
  @IsIntString(1, 1_000_000)
  ORDER_PAY_RATE_LIMIT?: string = undefined;

  /** GET /orders and GET /orders/:no per shopper per minute; past it 429 with Retry-After. Default 120. */
  @IsOptional()
  @IsIntString(1, 1_000_000)
  ORDER_READ_RATE_LIMIT?: string = undefined;

  /** WeChat queries that a shopper's reads may cause per minute; past it reads answer what we know. Default 10. */
  @IsOptional()
  @IsIntString(0, 1_000_000)
  ORDER_QUERY_ON_READ_RATE_LIMIT?: string = undefined;

  /** Rejected (unverified) notification rows older than this are deleted by a job. Default 7d. */
  @IsOptional()
  @IsDuration({ minMs: 60_000 })
  PAYMENT_EVENTS_REJECTED_RETENTION?: string = undefined;

  /** Seed demo products on first start (sandbox mode only). Default true. */
  @IsOptional()
  @IsBooleanString()
  SEED_DEMO_PRODUCTS?: string = undefined;

  /** Serve the demo H5 shop at / (the admin console at /admin/ is always served). Default: true in sandbox mode, false in live mode. */
  @IsOptional()
  @IsBooleanString()
  DEMO_SHOP?: string = undefined;

  /** H5 pay: the site name shown on WeChat's H5 cashier (scene_info.h5_info.app_name). Default: the shop's name. */
  @IsOptional()
  @Length(1, 64, { message: 'must be 1 to 64 characters' })
  WECHATPAY_H5_APP_NAME?: string = undefined;

  /** H5 pay: the site's URL (scene_info.h5_info.app_url). Default: PUBLIC_BASE_URL. */
  @IsOptional()
  @IsUrl({ require_tld: false, require_protocol: true, protocols: ['http', 'https'] }, { message: 'must be an http(s) URL' })
  WECHATPAY_H5_APP_URL?: string = undefined;
}
