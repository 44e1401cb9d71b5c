/** How a session was made: WeChat web login (official account), mini-program login, or a guest. */
export type SessionKind = 'wechat' | 'miniprogram' | 'guest';

/**
 * The shopper behind a request, as SessionGuard attaches it and @CurrentUser() returns it.
 * `appid`/`openid` are those of the app the session was made through: WECHAT_APPID and the
 * official-account openid for `wechat`, WECHAT_MINIPROGRAM_APPID and the mini-program openid for
 * `miniprogram`, both null for a `guest`.
 */
export interface SessionUser {
  userId: number;
  openid: string | null;
  appid: string | null;
  scope: string;
  sessionId: string;
  kind: SessionKind;
}
