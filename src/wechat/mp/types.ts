export type OAuthScope = 'snsapi_base' | 'snsapi_userinfo';

export interface OAuthAccessToken {
  access_token: string;
  expires_in: number;
  refresh_token: string;
  openid: string;
  scope: string;
  unionid?: string;
  is_snapshotuser?: number;
}

export interface WechatUserInfo {
  openid: string;
  nickname: string;
  sex?: number;
  province?: string;
  city?: string;
  country?: string;
  headimgurl?: string;
  privilege?: string[];
  unionid?: string;
}

export interface AccessToken {
  access_token: string;
  expires_in: number;
}

export interface JsapiTicket {
  ticket: string;
  expires_in: number;
}

/** sns/jscode2session (mini-program login). session_key stays on the server and is never logged. */
export interface MiniprogramSession {
  openid: string;
  session_key: string;
  unionid?: string;
}
