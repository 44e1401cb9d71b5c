import { HttpStatus } from '@nestjs/common';
import { AppError } from '../../common/errors/app-error';

/** An official-account API answered `errcode != 0`. Match on errcode, never on errmsg. */
export class WechatMpApiError extends AppError {
  constructor(
    readonly errcode: number,
    readonly errmsg: string,
    readonly api: string,
  ) {
    super(HttpStatus.BAD_GATEWAY, 'WECHAT_MP_ERROR', `WeChat ${api} answered errcode ${errcode}: ${errmsg}`, { errcode, errmsg });
  }

  /** The basic access_token is invalid or expired: drop it and fetch a new one. */
  get isTokenInvalid(): boolean {
    return this.errcode === 40001 || this.errcode === 42001 || this.errcode === 40014;
  }
}

export class WechatMpNetworkError extends AppError {
  constructor(message: string, readonly timedOut: boolean) {
    super(HttpStatus.BAD_GATEWAY, timedOut ? 'WECHAT_MP_TIMEOUT' : 'WECHAT_MP_UNREACHABLE', message);
  }
}
