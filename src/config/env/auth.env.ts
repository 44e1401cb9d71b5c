import { IsOptional, Matches } from 'class-validator';
import { IsDuration, IsIntString } from './validators';

/** Sessions, OAuth and JS-SDK settings. Property names are the variable names. */
export class AuthEnv {
  /** Lifetime of a shopper's session (cookie and bearer token). Default 7d. */
  @IsOptional()
  @IsDuration({ minMs: 60_000, message: 'must be a duration of at least 1m, such as 12h or 7d' })
  SESSION_TTL?: string = undefined;

  /** Refresh the access_token / jsapi_ticket this long before they expire. Default 5m. */
  @IsOptional()
  @IsDuration({ minMs: 0 })
  WECHAT_TOKEN_REFRESH_AHEAD?: string = undefined;

  /** APIs listed in wx.config (comma-separated). Default chooseWXPay. */
  @IsOptional()
  @Matches(/^[A-Za-z]+(,[A-Za-z]+)*$/, { message: 'must be a comma-separated list of JS-SDK API names, e.g. chooseWXPay,updateAppMessageShareData' })
  JSSDK_API_LIST?: string = undefined;

  /** GET /auth/wechat/authorize requests allowed per client IP per minute; past it 429 with Retry-After. Default 30. */
  @IsOptional()
  @IsIntString(1, 1_000_000)
  AUTH_AUTHORIZE_RATE_LIMIT?: string = undefined;
}
