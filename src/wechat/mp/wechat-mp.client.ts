import { Logger } from '@nestjs/common';
import { redactUrl } from '../../common/logging';
import type { WechatCallObserver } from '../http/call-observer';
import { TransportError, send } from '../http/transport';
import { WechatCredentials } from '../wechat-credentials';
import { WechatMpApiError, WechatMpNetworkError } from './errors';
import type { AccessToken, JsapiTicket, MiniprogramSession, OAuthAccessToken, OAuthScope, WechatUserInfo } from './types';

export interface WechatMpClientOptions {
  /** api.weixin.qq.com (sns/*, cgi-bin/*) */
  apiBase: string;
  /** open.weixin.qq.com (connect/oauth2/authorize) */
  openBase: string;
  timeoutMs: number;
  useStableToken: boolean;
  /** Told of every call (api name, HTTP status or errcode_<n>, timeout/network_error, latency): the metrics. */
  observe?: WechatCallObserver;
}

/**
 * Official-account (公众号) APIs: web OAuth, the basic access_token, the jsapi_ticket. Stateless: the
 * jssdk module owns token caching. Every `errcode != 0` becomes WechatMpApiError; secrets and tokens
 * travel in query strings that are redacted from every log line.
 */
export class WechatMpClient {
  private readonly logger = new Logger(WechatMpClient.name);

  /**
   * `credentials`: the official account shoppers log in through and wx.config is signed for — the
   * merchant's (WECHAT_APPID), or in service-provider mode with WECHAT_SUB_APPID the sub-merchant's
   * own (chosen once in WechatModule).
   */
  constructor(
    private readonly credentials: Pick<WechatCredentials, 'appid' | 'appsecret'>,
    private readonly options: WechatMpClientOptions,
  ) {}

  get appid(): string {
    return this.credentials.appid;
  }

  oauthAuthorizeUrl(redirectUri: string, scope: OAuthScope, state: string): string {
    // Parameter order as documented; WeChat is strict about it. connect_redirect=1 (as WxJava sends)
    // stops WeChat from calling the redirect twice, whose second use of the code fails with 40163.
    return (
      `${this.options.openBase}/connect/oauth2/authorize?appid=${encodeURIComponent(this.credentials.appid)}` +
      `&redirect_uri=${encodeURIComponent(redirectUri)}&response_type=code&scope=${scope}` +
      `&state=${encodeURIComponent(state)}&connect_redirect=1#wechat_redirect`
    );
  }

  exchangeCode(code: string): Promise<OAuthAccessToken> {
    return this.get<OAuthAccessToken>('sns/oauth2/access_token', {
      appid: this.credentials.appid,
      secret: this.credentials.appsecret,
      code,
      grant_type: 'authorization_code',
    });
  }

  refreshUserToken(refreshToken: string): Promise<OAuthAccessToken> {
    return this.get<OAuthAccessToken>('sns/oauth2/refresh_token', {
      appid: this.credentials.appid,
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
    });
  }

  getUserInfo(accessToken: string, openid: string, lang: 'zh_CN' | 'zh_TW' | 'en' = 'zh_CN'): Promise<WechatUserInfo> {
    return this.get<WechatUserInfo>('sns/userinfo', { access_token: accessToken, openid, lang });
  }

  /** Mini-program login: the wx.login code of the mini-program `app` for its openid (and unionid). */
  jscode2session(app: { appid: string; appsecret: string }, code: string): Promise<MiniprogramSession> {
    return this.get<MiniprogramSession>('sns/jscode2session', {
      appid: app.appid,
      secret: app.appsecret,
      js_code: code,
      grant_type: 'authorization_code',
    });
  }

  /** The basic access_token: POST cgi-bin/stable_token when configured (default), else GET cgi-bin/token. */
  getAccessToken(options: { forceRefresh?: boolean } = {}): Promise<AccessToken> {
    if (this.options.useStableToken) {
      return this.post<AccessToken>('cgi-bin/stable_token', {
        grant_type: 'client_credential',
        appid: this.credentials.appid,
        secret: this.credentials.appsecret,
        force_refresh: options.forceRefresh ?? false,
      });
    }
    return this.get<AccessToken>('cgi-bin/token', {
      grant_type: 'client_credential',
      appid: this.credentials.appid,
      secret: this.credentials.appsecret,
    });
  }

  getJsapiTicket(accessToken: string): Promise<JsapiTicket> {
    return this.get<JsapiTicket>('cgi-bin/ticket/getticket', { access_token: accessToken, type: 'jsapi' });
  }

  private get<T>(api: string, query: Record<string, string>): Promise<T> {
    const qs = Object.entries(query)
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
      .join('&');
    return this.call<T>('GET', api, new URL(`${this.options.apiBase}/${api}?${qs}`));
  }

  private post<T>(api: string, body: unknown): Promise<T> {
    return this.call<T>('POST', api, new URL(`${this.options.apiBase}/${api}`), Buffer.from(JSON.stringify(body), 'utf8'));
  }

  private async call<T>(method: string, api: string, url: URL, body?: Buffer): Promise<T> {
    const started = Date.now();
    let res;
    try {
      res = await send({
        method,
        url,
        headers: { Accept: 'application/json', ...(body ? { 'Content-Type': 'application/json' } : {}) },
        body,
        timeoutMs: this.options.timeoutMs,
      });
    } catch (error) {
      if (error instanceof TransportError) {
        this.report(api, error.timedOut ? 'timeout' : 'network_error', started);
        this.logger.warn(`${method} ${redactUrl(url.pathname + url.search)} failed: ${error.message}`);
        throw new WechatMpNetworkError(`WeChat ${api} ${error.timedOut ? 'timed out' : 'unreachable'}: ${error.message}`, error.timedOut);
      }
      throw error;
    }
    this.logger.log(`${method} ${redactUrl(url.pathname + url.search)} -> ${res.status} ${Date.now() - started}ms`);
    let parsed: (T & { errcode?: number; errmsg?: string }) | undefined;
    try {
      parsed = JSON.parse(res.body.toString('utf8'));
    } catch {
      this.report(api, String(res.status), started);
      throw new WechatMpApiError(-1, `HTTP ${res.status}, body is not JSON`, api);
    }
    const errcode = parsed && typeof parsed === 'object' && typeof parsed.errcode === 'number' && parsed.errcode !== 0 ? parsed.errcode : undefined;
    this.report(api, errcode !== undefined ? `errcode_${errcode}` : String(res.status), started);
    if (!parsed || typeof parsed !== 'object') throw new WechatMpApiError(-1, 'empty answer', api);
    if (typeof parsed.errcode === 'number' && parsed.errcode !== 0) {
      throw new WechatMpApiError(parsed.errcode, parsed.errmsg ?? '', api);
    }
    if (res.status >= 400) throw new WechatMpApiError(-1, `HTTP ${res.status}`, api);
    return parsed;
  }

  private report(endpoint: string, status: string, started: number): void {
    try {
      this.options.observe?.({ api: 'mp', endpoint, status, durationMs: Date.now() - started });
    } catch {
      // metrics must never break a login or a payment
    }
  }
}
