import { IsBooleanString, IsIn, IsOptional, Matches, MinLength } from 'class-validator';
import { IsBaseUrl, IsDuration, IsIntString, IsMysqlUrl, IsRedisUrl } from './validators';

/** Process, HTTP, storage and shop-wide settings. Property names are the variable names. */
export class CoreEnv {
  @IsOptional()
  @IsIntString(0, 65535)
  PORT?: string = undefined;

  /** Address to bind. Default 127.0.0.1 in sandbox mode (its control API is open by design), all interfaces in live mode. */
  @IsOptional()
  @Matches(/^[A-Za-z0-9.:_-]{1,255}$/, { message: 'must be a host name or an IP address, e.g. 127.0.0.1 or 0.0.0.0' })
  HOST?: string = undefined;

  /** Serve the OpenAPI docs at /docs and /docs-json. Default: true in sandbox mode, false in live mode. */
  @IsOptional()
  @IsBooleanString()
  API_DOCS?: string = undefined;

  @IsOptional()
  @IsIn(['development', 'production', 'test'], { message: 'must be development, production or test' })
  NODE_ENV?: string = undefined;

  @IsOptional()
  @IsBaseUrl()
  PUBLIC_BASE_URL?: string = undefined;

  /** Where the embedded database, the sandbox keystore and other local state live (default ./data). */
  @IsOptional()
  DATA_DIR?: string = undefined;

  @IsOptional()
  @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
    message: 'must be one of fatal, error, warn, info, debug, trace, silent',
  })
  LOG_LEVEL?: string = undefined;

  @IsOptional()
  @IsMysqlUrl()
  DATABASE_URL?: string = undefined;

  @IsOptional()
  @IsRedisUrl()
  REDIS_URL?: string = undefined;

  /** Prefix of every key this app writes to Redis (lets several apps or test runs share one server). */
  @IsOptional()
  @Matches(/^[A-Za-z0-9:_-]{1,64}$/, { message: 'must be 1-64 characters of letters, digits, ":", "_" or "-"' })
  REDIS_PREFIX?: string = undefined;

  @IsOptional()
  @Matches(/^[\x21-\x7e]{16,}(,[\x21-\x7e]{16,})*$/, {
    message: 'must be a comma-separated list of tokens, each at least 16 printable characters without spaces',
  })
  ADMIN_TOKENS?: string = undefined;

  /** Requests per minute allowed to /admin/* per client (token, else IP). Default 300. */
  @IsOptional()
  @IsIntString(1, 1_000_000)
  ADMIN_RATE_LIMIT?: string = undefined;

  @IsOptional()
  @MinLength(32, { message: 'must be at least 32 characters' })
  SESSION_SECRET?: string = undefined;

  @IsOptional()
  @IsDuration({ minMs: 1000, message: 'must be a duration of at least 1s, such as 90s, 5m or 2h' })
  ORDER_CLOSE_AFTER?: string = undefined;

  @IsOptional()
  @Matches(/^[A-Za-z0-9.-]+(:\d+)?(,[A-Za-z0-9.-]+(:\d+)?)*$/, {
    message: 'must be a comma-separated list of host names (no scheme, no path), e.g. shop.example.com,m.example.com',
  })
  JSSDK_ALLOWED_DOMAINS?: string = undefined;

  /** Node server: time allowed to receive a request's headers. Default 20s. */
  @IsOptional()
  @IsDuration({ minMs: 1000 })
  HTTP_HEADERS_TIMEOUT?: string = undefined;

  /** Node server: time allowed to receive a whole request (headers and body). Default 60s. */
  @IsOptional()
  @IsDuration({ minMs: 1000 })
  HTTP_REQUEST_TIMEOUT?: string = undefined;

  /** Node server: idle keep-alive connections are closed after this. Default 5s. */
  @IsOptional()
  @IsDuration({ minMs: 100 })
  HTTP_KEEP_ALIVE_TIMEOUT?: string = undefined;

  /** Which proxies' X-Forwarded-* headers to believe (Express forms); checked in loadConfig. Default none. */
  @IsOptional()
  TRUST_PROXY?: string = undefined;

  /** true lets WECHAT_MODE=live run with an http PUBLIC_BASE_URL (local tests only). */
  @IsOptional()
  @IsIn(['true', 'false'], { message: 'must be true or false' })
  ALLOW_INSECURE_PUBLIC_URL?: string = undefined;
}
