import { Injectable } from '@nestjs/common';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { AppConfig } from '../config/app-config';
import { SandboxMpError } from './sandbox-errors';
import { SandboxClock } from './sandbox-clock';
import { SandboxSettings, hostAllowed } from './sandbox.settings';
import { AppTokens, SandboxMiniprogramUser, SandboxState, SandboxUser, UserToken } from './sandbox.state';

const CODE_LIFETIME_MS = 5 * 60_000;
const TOKEN_LIFETIME_MS = 7200_000;
const REFRESH_LIFETIME_MS = 30 * 24 * 3600_000;
const TOKEN_GRACE_MS = 5 * 60_000;

function rid(): string {
  return `${randomBytes(4).toString('hex')}-${randomBytes(4).toString('hex')}-${randomBytes(4).toString('hex')}`;
}

/** WeChat appends a trace to every errmsg; clients must match on errcode only. */
function mpError(errcode: number, errmsg: string): SandboxMpError {
  return new SandboxMpError(errcode, `${errmsg} rid: ${rid()}`);
}

const NICKNAMES = ['微信用户', '小明', '小红', '阿强', '沙箱测试员', 'Sandbox Tester'];

/**
 * The official account's side: web authorization (codes, user tokens, user info), the basic
 * access_token (token and stable_token), and the jsapi_ticket, with WeChat's error codes.
 */
@Injectable()
export class SandboxMpService {
  /** The mini-program bound to the sandbox merchant: WECHAT_MINIPROGRAM_APPID/APPSECRET when set, else the keystore's. */
  readonly miniprogram: { appid: string; appsecret: string };

  constructor(
    private readonly state: SandboxState,
    private readonly settings: SandboxSettings,
    private readonly clock: SandboxClock,
    private readonly config: AppConfig,
  ) {
    this.miniprogram = settings.miniprogram;
  }

  get appid(): string {
    return this.settings.keystore.appid;
  }

  /**
   * The official accounts a shopper can authorize: the merchant's own (the provider's sp_appid in
   * service-provider mode) and the sub-merchants' own (their sub_appids). Each has its own secret, codes,
   * basic token and jsapi_ticket.
   */
  accountOf(appid: string | undefined): { appid: string; appsecret: string } | undefined {
    if (appid === this.appid) return { appid, appsecret: this.settings.keystore.appsecret };
    return this.settings.subAccount(appid);
  }

  /** Whether `openid` has authorized the official account `appid` (the merchant's own: every test user). */
  openidOf(appid: string, openid: string): boolean {
    const user = this.state.users.get(openid);
    if (!user) return false;
    return appid === this.appid || (user.appids ?? []).includes(appid);
  }

  /** Whether `openid` is a user of the mini-program (has logged in with wx.login). */
  miniprogramUser(openid: string): boolean {
    return this.state.miniprogramUsers.has(openid);
  }

  private tokensOf(appid: string | undefined): AppTokens {
    if (appid === undefined || appid === this.appid) return this.state;
    let tokens = this.state.otherAppTokens.get(appid);
    if (!tokens) {
      tokens = {};
      this.state.otherAppTokens.set(appid, tokens);
    }
    return tokens;
  }

  // ---------------------------------------------------------------- users

  listUsers(): SandboxUser[] {
    return [...this.state.users.values()].sort((a, b) => a.createdAt - b.createdAt).map((u) => this.withAvatar(u));
  }

  /**
   * The user's headimgurl: the one a test set, else a generated PNG the sandbox serves, at an http(s)
   * URL like WeChat's (…/mmopen/vi_32/{id}/132; 132 is the size). Built from PUBLIC_BASE_URL when asked,
   * so it follows the sandbox to another address; a data: URI kept by an older sandbox is replaced.
   */
  avatarUrlOf(user: SandboxUser): string {
    if (user.avatarUrl && !user.avatarUrl.startsWith('data:')) return user.avatarUrl;
    const id = createHash('sha256').update(user.openid).digest('hex').slice(0, 32);
    return `${this.config.publicBaseUrl.replace(/\/$/, '')}/sandbox/mmopen/vi_32/${id}/132`;
  }

  private withAvatar(user: SandboxUser): SandboxUser {
    return { ...user, avatarUrl: this.avatarUrlOf(user) };
  }

  /** Finds or creates a test user; a new openid is generated when none is given. */
  upsertUser(input: { openid?: string; nickname?: string; avatarUrl?: string }): SandboxUser {
    const openid = input.openid?.trim() || `o${randomBytes(14).toString('base64url')}`;
    if (!/^[A-Za-z0-9_-]{6,64}$/.test(openid)) {
      throw mpError(40003, 'invalid openid (6-64 letters, digits, _ or -)');
    }
    const existing = this.state.users.get(openid);
    if (existing) {
      if (input.nickname) existing.nickname = input.nickname.slice(0, 32);
      if (input.avatarUrl) existing.avatarUrl = input.avatarUrl;
      this.state.changed();
      return this.withAvatar(existing);
    }
    const hash = createHash('md5').update(openid).digest('hex');
    const user: SandboxUser = {
      openid,
      nickname: (input.nickname?.trim() || `${NICKNAMES[randomInt(NICKNAMES.length)]}${hash.slice(0, 4)}`).slice(0, 32),
      // Empty: the generated avatar (avatarUrlOf).
      avatarUrl: input.avatarUrl || '',
      unionid: `o6_${hash.slice(0, 25)}`,
      sex: 0,
      createdAt: this.clock.now(),
    };
    this.state.users.set(openid, user);
    this.state.changed();
    return this.withAvatar(user);
  }

  // ---------------------------------------------------------------- web authorization

  /** Checks an authorize request as WeChat does before showing anything. Returns an error text or undefined. */
  authorizeProblem(query: { appid?: string; redirect_uri?: string; response_type?: string; scope?: string }): { errcode: number; errmsg: string } | undefined {
    if (!this.accountOf(query.appid)) return { errcode: 40013, errmsg: 'invalid appid' };
    if (!query.redirect_uri) return { errcode: 10003, errmsg: 'redirect_uri 参数错误' };
    if (!hostAllowed(query.redirect_uri, this.settings.oauthDomains)) {
      return { errcode: 10003, errmsg: `redirect_uri 参数错误：${safeHost(query.redirect_uri)} 不是已配置的网页授权域名` };
    }
    if (query.response_type !== 'code') return { errcode: 10004, errmsg: 'response_type 参数错误' };
    if (query.scope !== 'snsapi_base' && query.scope !== 'snsapi_userinfo') return { errcode: 10005, errmsg: 'scope 参数错误或没有 scope 权限' };
    return undefined;
  }

  issueCode(openid: string, scope: string, appid: string = this.appid): string {
    const code = randomBytes(16).toString('hex');
    const other = appid !== this.appid ? appid : undefined;
    this.state.codes.set(code, { code, openid, scope, expiresAt: this.clock.now() + CODE_LIFETIME_MS, used: false, ...(other ? { appid: other } : {}) });
    const user = this.state.users.get(openid);
    if (other && user && !(user.appids ?? []).includes(other)) {
      user.appids = [...(user.appids ?? []), other];
      this.state.changed();
    }
    return code;
  }

  private checkApp(appid: string | undefined, secret: string | undefined): string {
    const account = this.accountOf(appid);
    if (!account) throw mpError(40013, 'invalid appid');
    if (secret !== account.appsecret) throw mpError(40125, 'invalid appsecret');
    return account.appid;
  }

  exchangeCode(query: { appid?: string; secret?: string; code?: string; grant_type?: string }) {
    this.checkApp(query.appid, query.secret);
    if (query.grant_type !== 'authorization_code') throw mpError(40002, 'invalid grant_type');
    if (!query.code) throw mpError(41008, 'missing code');
    const entry = this.state.codes.get(query.code);
    if (!entry) throw mpError(40029, 'invalid code');
    // A code is exchanged by the official account it was issued for only.
    if ((entry.appid ?? this.appid) !== query.appid) throw mpError(40029, 'invalid code (issued for another appid)');
    if (entry.used) throw mpError(40163, 'code been used');
    if (this.clock.now() > entry.expiresAt) throw mpError(40029, 'invalid code (expired after 5 minutes)');
    entry.used = true;
    const token = this.newUserToken(entry.openid, entry.scope);
    return this.userTokenView(token);
  }

  refreshUserToken(query: { appid?: string; grant_type?: string; refresh_token?: string }) {
    if (!this.accountOf(query.appid)) throw mpError(40013, 'invalid appid');
    if (query.grant_type !== 'refresh_token') throw mpError(40002, 'invalid grant_type');
    const old = query.refresh_token ? this.state.refreshTokens.get(query.refresh_token) : undefined;
    if (!old) throw mpError(40030, 'invalid refresh_token');
    if (this.clock.now() > old.refreshExpiresAt) throw mpError(42002, 'refresh_token timeout');
    const token: UserToken = { ...old, accessToken: randomBytes(32).toString('base64url'), expiresAt: this.clock.now() + TOKEN_LIFETIME_MS };
    this.state.userTokens.set(token.accessToken, token);
    this.state.refreshTokens.set(token.refreshToken, token);
    return this.userTokenView(token);
  }

  userInfo(query: { access_token?: string; openid?: string }) {
    const token = query.access_token ? this.state.userTokens.get(query.access_token) : undefined;
    if (!token) throw mpError(40001, 'invalid credential, access_token is invalid or not latest');
    if (this.clock.now() > token.expiresAt) throw mpError(42001, 'access_token expired');
    if (query.openid !== token.openid) throw mpError(40003, 'invalid openid');
    if (token.scope !== 'snsapi_userinfo') throw mpError(48001, 'api unauthorized (snsapi_base tokens cannot read user info)');
    const user = this.state.users.get(token.openid)!;
    return {
      openid: user.openid,
      nickname: user.nickname,
      sex: user.sex,
      province: '',
      city: '',
      country: '',
      headimgurl: this.avatarUrlOf(user),
      privilege: [],
      unionid: user.unionid,
    };
  }

  /**
   * GET sns/auth: whether a web-authorization access_token is (still) valid for that openid.
   * {errcode:0,errmsg:"ok"}; 40001 for an unknown token, 42001 once it has expired, 40003 for another openid.
   */
  checkUserToken(query: { access_token?: string; openid?: string }) {
    const token = query.access_token ? this.state.userTokens.get(query.access_token) : undefined;
    if (!token) throw mpError(40001, 'invalid credential, access_token is invalid or not latest');
    if (this.clock.now() > token.expiresAt) throw mpError(42001, 'access_token expired');
    if (query.openid !== token.openid) throw mpError(40003, 'invalid openid');
    return { errcode: 0, errmsg: 'ok' };
  }

  private newUserToken(openid: string, scope: string): UserToken {
    const now = this.clock.now();
    const token: UserToken = {
      accessToken: randomBytes(32).toString('base64url'),
      refreshToken: randomBytes(32).toString('base64url'),
      openid,
      scope,
      expiresAt: now + TOKEN_LIFETIME_MS,
      refreshExpiresAt: now + REFRESH_LIFETIME_MS,
    };
    this.state.userTokens.set(token.accessToken, token);
    this.state.refreshTokens.set(token.refreshToken, token);
    return token;
  }

  private userTokenView(token: UserToken) {
    const user = this.state.users.get(token.openid);
    return {
      access_token: token.accessToken,
      expires_in: Math.round((token.expiresAt - this.clock.now()) / 1000),
      refresh_token: token.refreshToken,
      openid: token.openid,
      scope: token.scope,
      ...(user?.unionid ? { unionid: user.unionid } : {}),
    };
  }

  // ---------------------------------------------------------------- mini-program login

  /**
   * Finds or creates a mini-program user (by its mini-program openid). `unionid` links it to the
   * official-account user with that unionid; `officialAccountOpenid` takes that user's unionid.
   */
  upsertMiniprogramUser(input: { openid?: string; unionid?: string; officialAccountOpenid?: string }): SandboxMiniprogramUser {
    const openid = input.openid?.trim() || `o${randomBytes(14).toString('base64url')}`;
    if (!/^[A-Za-z0-9_-]{6,64}$/.test(openid)) throw mpError(40003, 'invalid openid (6-64 letters, digits, _ or -)');
    let unionid = input.unionid?.trim() || undefined;
    if (input.officialAccountOpenid !== undefined) {
      const official = this.state.users.get(input.officialAccountOpenid);
      if (!official) throw mpError(40003, `no official-account test user ${input.officialAccountOpenid.slice(0, 64)}`);
      unionid = official.unionid;
    }
    if (unionid !== undefined && !/^[A-Za-z0-9_-]{6,64}$/.test(unionid)) throw mpError(40003, 'invalid unionid (6-64 letters, digits, _ or -)');
    const existing = this.state.miniprogramUsers.get(openid);
    if (existing) {
      if (unionid) existing.unionid = unionid;
      return existing;
    }
    const user: SandboxMiniprogramUser = { openid, unionid, createdAt: this.clock.now() };
    this.state.miniprogramUsers.set(openid, user);
    return user;
  }

  /** What wx.login gives the mini-program: a code for that user, single use, 5 minutes. */
  issueMiniprogramCode(openid: string): string {
    const code = randomBytes(16).toString('base64url');
    this.state.miniprogramCodes.set(code, { code, openid, expiresAt: this.clock.now() + CODE_LIFETIME_MS, used: false });
    return code;
  }

  /** GET sns/jscode2session: the mini-program's appid/secret and a wx.login code → openid, session_key (and unionid). */
  jscode2session(query: { appid?: string; secret?: string; js_code?: string; grant_type?: string }) {
    if (query.appid !== this.miniprogram.appid) throw mpError(40013, 'invalid appid');
    if (query.secret !== this.miniprogram.appsecret) throw mpError(40125, 'invalid appsecret');
    if (query.grant_type !== 'authorization_code') throw mpError(40002, 'invalid grant_type');
    if (!query.js_code) throw mpError(41008, 'missing code');
    const entry = this.state.miniprogramCodes.get(query.js_code);
    if (!entry) throw mpError(40029, 'invalid code');
    if (entry.used) throw mpError(40163, 'code been used');
    if (this.clock.now() > entry.expiresAt) throw mpError(40029, 'invalid code (expired after 5 minutes)');
    entry.used = true;
    const user = this.state.miniprogramUsers.get(entry.openid);
    return {
      session_key: randomBytes(16).toString('base64'),
      openid: entry.openid,
      ...(user?.unionid ? { unionid: user.unionid } : {}),
    };
  }

  // ---------------------------------------------------------------- basic access_token and ticket

  /** GET cgi-bin/token: a new token each call; the previous one keeps working for 5 more minutes. */
  token(query: { grant_type?: string; appid?: string; secret?: string }) {
    if (query.grant_type !== 'client_credential') throw mpError(40002, 'invalid grant_type');
    const appid = this.checkApp(query.appid, query.secret);
    const now = this.clock.now();
    const own = this.tokensOf(appid);
    const other = appid !== this.appid ? appid : undefined;
    for (const t of this.state.basicTokens.values()) {
      if (t.appid === other && !t.graceUntil && t !== own.stableToken) t.graceUntil = Math.min(t.expiresAt, now + TOKEN_GRACE_MS);
    }
    const token = { token: randomBytes(48).toString('base64url'), expiresAt: now + TOKEN_LIFETIME_MS, ...(other ? { appid: other } : {}) };
    this.state.basicTokens.set(token.token, token);
    return { access_token: token.token, expires_in: 7200 };
  }

  /** POST cgi-bin/stable_token: the same token until it expires, unless force_refresh. */
  stableToken(body: { grant_type?: string; appid?: string; secret?: string; force_refresh?: boolean } | undefined) {
    if (!body || body.grant_type !== 'client_credential') throw mpError(40002, 'invalid grant_type');
    const appid = this.checkApp(body.appid, body.secret);
    const now = this.clock.now();
    const own = this.tokensOf(appid);
    const current = own.stableToken;
    if (current && !body.force_refresh && current.expiresAt > now && !current.invalidated) {
      return { access_token: current.token, expires_in: Math.round((current.expiresAt - now) / 1000) };
    }
    const token = { token: randomBytes(48).toString('base64url'), expiresAt: now + TOKEN_LIFETIME_MS, ...(appid !== this.appid ? { appid } : {}) };
    if (current) current.graceUntil = Math.min(current.expiresAt, now + TOKEN_GRACE_MS);
    own.stableToken = token;
    this.state.basicTokens.set(token.token, token);
    return { access_token: token.token, expires_in: 7200 };
  }

  /** Validates a basic access_token as every cgi-bin API does. */
  requireToken(accessToken: string | undefined): string {
    if (!accessToken) throw mpError(41001, 'access_token missing');
    const token = this.state.basicTokens.get(accessToken);
    if (!token || token.invalidated) throw mpError(40001, 'invalid credential, access_token is invalid or not latest');
    const now = this.clock.now();
    if (now > token.expiresAt) throw mpError(42001, 'access_token expired');
    // Replaced by a newer token and past its grace period: no longer the latest, which WeChat
    // reports as an invalid credential (40001), not as an expiry.
    if (token.graceUntil !== undefined && now > token.graceUntil) throw mpError(40001, 'invalid credential, access_token is invalid or not latest');
    return token.appid ?? this.appid;
  }

  ticket(query: { access_token?: string; type?: string }) {
    // Each official account has its own ticket, fetched with its own token.
    const own = this.tokensOf(this.requireToken(query.access_token));
    if (query.type !== 'jsapi') throw mpError(40097, 'invalid args (type must be jsapi)');
    const now = this.clock.now();
    if (!own.ticket || own.ticket.expiresAt <= now) {
      own.ticket = { ticket: randomBytes(40).toString('base64url'), expiresAt: now + TOKEN_LIFETIME_MS };
    }
    return { errcode: 0, errmsg: 'ok', ticket: own.ticket.ticket, expires_in: Math.round((own.ticket.expiresAt - now) / 1000) };
  }

  /** The current jsapi_ticket of the official account `appid` (default: the merchant's own). */
  currentTicket(appid: string = this.appid): string | undefined {
    const t = this.tokensOf(appid).ticket;
    return t && t.expiresAt > this.clock.now() ? t.ticket : undefined;
  }

  /** Control API: every basic token becomes invalid (40001), as when another party reset the secret. */
  invalidateTokens(): number {
    let n = 0;
    for (const t of this.state.basicTokens.values()) {
      t.invalidated = true;
      n++;
    }
    return n;
  }
}

function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url.slice(0, 64);
  }
}
