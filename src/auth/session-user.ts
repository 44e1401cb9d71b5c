/** The shopper behind a request, as SessionGuard attaches it and @CurrentUser() returns it. */
export interface SessionUser {
  userId: number;
  openid: string;
  appid: string;
  scope: string;
  sessionId: string;
}
