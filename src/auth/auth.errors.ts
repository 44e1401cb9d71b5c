import { HttpStatus } from '@nestjs/common';
import { AppError } from '../common/errors/app-error';

export class InvalidRedirectError extends AppError {
  constructor(redirect: string) {
    super(
      HttpStatus.BAD_REQUEST,
      'INVALID_REDIRECT',
      `redirect must be a path on this site starting with a single "/" (such as /orders), not ${JSON.stringify(redirect.slice(0, 100))}`,
    );
  }
}

export class InvalidStateError extends AppError {
  constructor(reason: string) {
    super(HttpStatus.BAD_REQUEST, 'INVALID_STATE', `OAuth state ${reason}; start again from /auth/wechat/authorize`);
  }
}

/**
 * The callback's state was not issued to this browser (no login cookie, another browser's, or forged):
 * a login CSRF attempt, or a login link opened elsewhere. Shown to the shopper as a page, in Chinese.
 */
export class LoginNotBoundError extends AppError {
  constructor() {
    super(
      HttpStatus.BAD_REQUEST,
      'LOGIN_NOT_STARTED_HERE',
      '登录未完成：这个登录链接不是在当前浏览器中发起的，或已失效。请重新登录。(OAuth state was not issued to this browser; start again from /auth/wechat/authorize)',
      { login: '/auth/wechat/authorize' },
    );
  }
}

/** LoginRequiredError reason for a session whose user row no longer exists. */
export const ACCOUNT_GONE = 'The account behind this session no longer exists; log in again';

export class LoginRequiredError extends AppError {
  constructor(reason = 'Log in with WeChat first') {
    super(HttpStatus.UNAUTHORIZED, 'LOGIN_REQUIRED', `${reason}: GET /auth/wechat/authorize?redirect=<page>`, {
      login: '/auth/wechat/authorize',
    });
  }
}

/** The user's WeChat authorization no longer works: send them through /auth/wechat/authorize again. */
export class ReauthRequiredError extends AppError {
  constructor(reason: string, redirect = '/') {
    super(HttpStatus.UNAUTHORIZED, 'REAUTH_REQUIRED', `${reason}; authorize again`, {
      reauth: `/auth/wechat/authorize?scope=snsapi_userinfo&redirect=${encodeURIComponent(redirect)}`,
    });
  }
}

/**
 * WeChat came back without a code: the user pressed 拒绝 on the authorize page (or the link is cut).
 * Carries where the login was going, so that the page can offer to authorize again.
 */
export class LoginDeclinedError extends AppError {
  constructor(
    readonly redirect: string,
    readonly scope: string,
  ) {
    super(HttpStatus.BAD_REQUEST, 'MISSING_CODE', 'WeChat returned no code: the user declined, or the link is incomplete');
  }
}
