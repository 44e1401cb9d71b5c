import { HttpStatus, Injectable, Logger } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { InjectRepository } from '@nestjs/typeorm';
import { randomBytes } from 'node:crypto';
import { In, IsNull, LessThan, Repository } from 'typeorm';
import { Clock } from '../common/clock';
import { AppError } from '../common/errors/app-error';
import { AppConfig } from '../config/app-config';
import { resolveSessionSecret } from '../config/session-secret';
import { WechatMpApiError } from '../wechat/mp/errors';
import type { OAuthAccessToken, OAuthScope } from '../wechat/mp/types';
import { WechatMpClient } from '../wechat/mp/wechat-mp.client';
import { WechatCredentials } from '../wechat/wechat-credentials';
import { AuthCrypto, TokenDecryptionError, randomId } from './auth-crypto';
import { ACCOUNT_GONE, InvalidRedirectError, InvalidStateError, LoginDeclinedError, LoginNotBoundError, LoginRequiredError, ReauthRequiredError } from './auth.errors';
import { OAuthState } from './entities/oauth-state.entity';
import { Session } from './entities/session.entity';
import { UserIdentity } from './entities/user-identity.entity';
import { User } from './entities/user.entity';
import { GUEST_ORDERS_MERGER, GuestOrdersMerger } from './guest-orders-merger';
import { isSafeRedirect } from './redirect';
import { allowedRequestOrigin, siteHosts } from '../common/loopback';
import { SessionKind, SessionUser } from './session-user';
import { ShopperAccount, ShopperAccounts } from './shopper-accounts';

const STATE_LIFETIME_MS = 10 * 60_000;

/** A session and its user by session id (SQLite and MySQL alike: plain identifiers, one `?`). */
const SESSION_LOOKUP_SQL =
  'SELECT s.id AS sid, s.expires_at AS expires_at, s.revoked_at AS revoked_at, s.kind AS kind, s.appid AS s_appid, s.openid AS s_openid, ' +
  'u.id AS uid, u.openid AS openid, u.appid AS appid, u.scope AS scope FROM sessions s INNER JOIN users u ON u.id = s.user_id WHERE s.id = ?';
const REFRESH_TOKEN_LIFETIME_MS = 30 * 24 * 3600_000;

export interface UserProfile {
  id: number;
  /** The official account's appid/openid; null for a guest or a shopper known only through the mini-program. */
  appid: string | null;
  openid: string | null;
  unionid: string | null;
  nickname: string | null;
  avatarUrl: string | null;
  scope: string;
}

/**
 * WeChat web authorization (OAuth2) and shopper sessions. OAuth tokens live only here, encrypted at
 * rest; the browser gets an opaque signed session token and nothing else.
 */
@Injectable()
export class AuthService {
  private readonly logger = new Logger(AuthService.name);
  readonly crypto: AuthCrypto;

  constructor(
    @InjectRepository(User) private readonly users: Repository<User>,
    @InjectRepository(Session) private readonly sessions: Repository<Session>,
    @InjectRepository(OAuthState) private readonly states: Repository<OAuthState>,
    @InjectRepository(UserIdentity) private readonly identities: Repository<UserIdentity>,
    private readonly mp: WechatMpClient,
    private readonly credentials: WechatCredentials,
    private readonly config: AppConfig,
    private readonly clock: Clock,
    private readonly moduleRef: ModuleRef,
    private readonly accounts: ShopperAccounts,
  ) {
    this.crypto = new AuthCrypto(resolveSessionSecret(config));
  }

  get callbackUrl(): string {
    return `${this.config.publicBaseUrl}/auth/wechat/callback`;
  }

  /**
   * Where WeChat returns the shopper: the host the login started on, when it is this site under another
   * name we allow (sandbox mode on a loopback PUBLIC_BASE_URL: localhost and 127.0.0.1), so that the
   * login cookie set at authorize comes back and the session cookie lands where the shopper is; else
   * PUBLIC_BASE_URL.
   */
  callbackUrlFor(requestOrigin: string | undefined): string {
    const hosts = this.config.wechatMode === 'sandbox' ? siteHosts(this.config.publicBaseUrl) : [new URL(this.config.publicBaseUrl).hostname];
    return `${allowedRequestOrigin(this.config.publicBaseUrl, requestOrigin, hosts)}/auth/wechat/callback`;
  }

  /** Records a single-use state and returns WeChat's authorize URL. */
  async beginAuthorize(redirect = '/', scope: OAuthScope = 'snsapi_base', binding: string, requestOrigin?: string, subMchid?: string): Promise<string> {
    if (!isSafeRedirect(redirect, this.config.publicBaseUrl)) throw new InvalidRedirectError(redirect);
    // The official account to log in through: the default one, or the sub-merchant's (`?subMchid=`).
    const account = await this.accounts.forSubMerchant(subMchid);
    const now = this.clock.now();
    const nonce = randomId(16);
    await this.states.insert({
      id: nonce,
      redirect,
      scope,
      appid: account === this.accounts.default ? null : account.appid,
      createdAt: now,
      expiresAt: new Date(now.getTime() + STATE_LIFETIME_MS),
      usedAt: null,
    });
    return account.mp.oauthAuthorizeUrl(this.callbackUrlFor(requestOrigin), scope, this.crypto.signState(nonce, binding));
  }

  /**
   * Checks the state (signed, unexpired, unused — the use is recorded by a guarded UPDATE, so a replay
   * loses even when two arrive at once), exchanges the code, stores the user and starts a session.
   */
  async completeCallback(
    code: string | undefined,
    state: string | undefined,
    binding: string | undefined,
    /** The browser's current session cookie: a guest's orders move to the account logged in with. */
    previousSessionToken?: string,
  ): Promise<{ token: string; redirect: string; user: UserProfile }> {
    if (!state) throw new InvalidStateError('is missing');
    // Checked before anything is read or written: a state issued to another browser (an attacker's
    // callback URL) or a forged one changes nothing.
    const nonce = this.crypto.verifyState(state, binding ?? '');
    if (!nonce) throw new LoginNotBoundError();
    const record = await this.states.findOneBy({ id: nonce });
    if (!record) throw new InvalidStateError('is unknown');
    const now = this.clock.now();
    if (record.expiresAt.getTime() < now.getTime()) throw new InvalidStateError('has expired (10 minutes)');
    if (record.usedAt) throw new InvalidStateError('was already used');
    if (!code) throw new LoginDeclinedError(record.redirect, record.scope);
    const used = await this.states.update({ id: nonce, usedAt: IsNull() }, { usedAt: now });
    if (!used.affected) throw new InvalidStateError('was already used');

    // The code is the account's the login started with (the state names it; none: the default).
    const account = await this.accounts.byAppid(record.appid);
    let token: OAuthAccessToken;
    try {
      token = await account.mp.exchangeCode(code);
    } catch (error) {
      if (error instanceof WechatMpApiError && [40029, 40163, 42003].includes(error.errcode)) {
        const reason = error.errcode === 40163 ? 'the code was already used' : error.errcode === 42003 ? 'the code expired' : 'the code is invalid';
        throw new AppError(HttpStatus.UNAUTHORIZED, 'WECHAT_CODE_REJECTED', `WeChat rejected the login: ${reason} (errcode ${error.errcode})`, {
          errcode: error.errcode,
        });
      }
      throw error;
    }
    const user = await this.upsertUser(token, account);
    await this.adoptGuest(previousSessionToken, user.id);
    const sessionToken = await this.startSession(user.id, 'wechat', user.appid, user.openid);
    return { token: sessionToken, redirect: record.redirect, user };
  }

  /**
   * A guest who logs in keeps what they ordered as a guest: the guest's orders move to `userId` and
   * the guest session ends. Anything but a live guest session is left alone.
   */
  private async adoptGuest(previousSessionToken: string | undefined, userId: number): Promise<void> {
    const previous = await this.resolveSession(previousSessionToken);
    if (!previous || previous.kind !== 'guest' || previous.userId === userId) return;
    await this.moduleRef.get<GuestOrdersMerger>(GUEST_ORDERS_MERGER, { strict: false }).reassignUser(previous.userId, userId);
    await this.logout(previous.sessionId);
    this.logger.log(`guest user ${previous.userId} logged in as user ${userId}: orders moved`);
  }

  /** A session for a shopper outside WeChat: a user with no WeChat identity (h5/native pay only). */
  async startGuest(): Promise<string> {
    const now = this.clock.now();
    const inserted = await this.users.insert({ appid: null, openid: null, unionid: null, nickname: null, avatarUrl: null, scope: 'guest', createdAt: now, updatedAt: now });
    return this.startSession(Number(inserted.identifiers[0].id), 'guest', null, null);
  }

  /**
   * Mini-program login: the code of wx.login → sns/jscode2session with WECHAT_MINIPROGRAM_APPID/APPSECRET
   * → a session (bearer token) for that mini-program openid, linked by unionid to the same shopper's
   * official-account identity. WeChat's session_key is dropped here: it is neither stored, answered nor logged.
   */
  async loginMiniprogram(code: string): Promise<{ token: string; userId: number }> {
    const app = this.credentials.miniprogram;
    if (!app) {
      throw new AppError(
        HttpStatus.BAD_REQUEST,
        'CHANNEL_UNAVAILABLE',
        'mini-program login is not configured on this shop (WECHAT_MINIPROGRAM_APPID and WECHAT_MINIPROGRAM_APPSECRET are not set)',
      );
    }
    let openid: string;
    let unionid: string | null;
    try {
      const answer = await this.mp.jscode2session(app, code);
      openid = answer.openid;
      unionid = answer.unionid ?? null;
    } catch (error) {
      if (error instanceof WechatMpApiError && [40029, 40163].includes(error.errcode)) {
        const reason = error.errcode === 40163 ? 'the code was already used' : 'the code is invalid or expired';
        throw new AppError(HttpStatus.UNAUTHORIZED, 'WECHAT_CODE_REJECTED', `WeChat rejected the mini-program login: ${reason} (errcode ${error.errcode}); call wx.login again`, {
          errcode: error.errcode,
        });
      }
      throw error;
    }
    if (typeof openid !== 'string' || !openid) throw new WechatMpApiError(-1, 'no openid in the answer', 'sns/jscode2session');
    const userId = await this.linkIdentity(app.appid, openid, unionid);
    return { token: await this.startSession(userId, 'miniprogram', app.appid, openid), userId };
  }

  /**
   * The user behind (appid, openid): the one this identity already belongs to, else the one another
   * identity with the same unionid belongs to, else a new user (no official-account openid). Records
   * the identity, and its unionid once WeChat tells it.
   */
  private async linkIdentity(appid: string, openid: string, unionid: string | null): Promise<number> {
    const known = await this.identities.findOneBy({ appid, openid });
    if (known) {
      if (unionid && known.unionid !== unionid) await this.identities.update({ id: known.id }, { unionid });
      return Number(known.userId);
    }
    let userId = unionid ? await this.userIdByUnionid(unionid) : undefined;
    if (userId === undefined) {
      const now = this.clock.now();
      const inserted = await this.users.insert({ appid: null, openid: null, unionid, nickname: null, avatarUrl: null, scope: 'miniprogram', createdAt: now, updatedAt: now });
      userId = Number(inserted.identifiers[0].id);
    }
    return this.recordIdentity(userId, appid, openid, unionid);
  }

  private async userIdByUnionid(unionid: string): Promise<number | undefined> {
    const linked = await this.identities.findOne({ where: { unionid }, order: { id: 'ASC' } });
    return linked ? Number(linked.userId) : undefined;
  }

  /** Inserts the identity; when a concurrent login inserted it first, the user it names wins. */
  private async recordIdentity(userId: number, appid: string, openid: string, unionid: string | null): Promise<number> {
    try {
      await this.identities.insert({ userId: String(userId), appid, openid, unionid, createdAt: this.clock.now() });
      return userId;
    } catch (error) {
      const existing = await this.identities.findOneBy({ appid, openid });
      if (!existing) throw error;
      return Number(existing.userId);
    }
  }

  /**
   * Deletes OAuth states that expired more than a day ago (nobody came back for them), `batch` rows per
   * statement; returns how many. Run by AuthJobs, not by requests.
   */
  async purgeExpiredStates(batch = 1000): Promise<number> {
    const cutoff = new Date(this.clock.nowMs() - 24 * 3600_000);
    let total = 0;
    for (;;) {
      const rows = await this.states.find({ select: ['id'], where: { expiresAt: LessThan(cutoff) }, take: batch });
      if (rows.length === 0) return total;
      await this.states.delete({ id: In(rows.map((r) => r.id)) });
      total += rows.length;
      if (rows.length < batch) return total;
    }
  }

  /** The user of (account's appid, openid): a sub-merchant's own official account's openid is another identity than the provider's. */
  private async upsertUser(token: OAuthAccessToken, account: ShopperAccount): Promise<UserProfile> {
    const now = this.clock.now();
    let profile: { nickname?: string; headimgurl?: string; unionid?: string } = {};
    if (token.scope.split(',').includes('snsapi_userinfo')) {
      profile = await account.mp.getUserInfo(token.access_token, token.openid);
    }
    const appid = account.appid;
    const values: Partial<User> = {
      appid,
      openid: token.openid,
      scope: token.scope.includes('snsapi_userinfo') ? 'snsapi_userinfo' : 'snsapi_base',
      accessTokenEnc: this.crypto.encrypt(token.access_token),
      refreshTokenEnc: this.crypto.encrypt(token.refresh_token),
      accessExpiresAt: new Date(now.getTime() + token.expires_in * 1000),
      refreshExpiresAt: new Date(now.getTime() + REFRESH_TOKEN_LIFETIME_MS),
      updatedAt: now,
      ...(token.unionid || profile.unionid ? { unionid: token.unionid ?? profile.unionid } : {}),
      ...(profile.nickname !== undefined ? { nickname: profile.nickname, avatarUrl: profile.headimgurl ?? null } : {}),
    };
    const unionid = token.unionid ?? profile.unionid ?? null;
    let existing = await this.users.findOneBy({ appid, openid: token.openid });
    if (!existing) {
      // Known through the mini-program with the same unionid: that user now has an official-account openid too.
      const linkedId = (await this.identities.findOneBy({ appid, openid: token.openid }))?.userId ?? (unionid ? await this.userIdByUnionid(unionid) : undefined);
      const linked = linkedId !== undefined ? await this.users.findOneBy({ id: String(linkedId) }) : null;
      if (linked && linked.openid === null) existing = linked;
    }
    if (existing) {
      // A silent (base) login must not downgrade a user who once granted userinfo.
      if (existing.scope === 'snsapi_userinfo' && values.scope === 'snsapi_base') {
        delete values.scope;
        delete values.accessTokenEnc;
        delete values.refreshTokenEnc;
        delete values.accessExpiresAt;
        delete values.refreshExpiresAt;
      }
      await this.users.update({ id: existing.id }, values);
    } else {
      try {
        await this.users.insert({ ...values, createdAt: now } as User);
      } catch {
        // Two first logins of one user racing: the other insert won; update it instead.
        await this.users.update({ appid, openid: token.openid }, values);
      }
    }
    const user = await this.users.findOneByOrFail({ appid, openid: token.openid });
    const identity = await this.identities.findOneBy({ appid, openid: token.openid });
    if (!identity) await this.recordIdentity(Number(user.id), appid, token.openid, unionid);
    else if (unionid && identity.unionid !== unionid) await this.identities.update({ id: identity.id }, { unionid });
    return toProfile(user);
  }

  private async startSession(userId: number, kind: SessionKind, appid: string | null, openid: string | null): Promise<string> {
    const now = this.clock.now();
    const id = randomBytes(32).toString('base64url');
    await this.sessions.insert({
      id,
      userId: String(userId),
      kind,
      appid,
      openid,
      createdAt: now,
      expiresAt: new Date(now.getTime() + this.config.session.ttlMs),
      revokedAt: null,
    });
    return this.crypto.signSession(id);
  }

  /** The shopper for a session token, or undefined when it is forged, expired, revoked or unknown. */
  async resolveSession(token: string | undefined): Promise<SessionUser | undefined> {
    if (!token) return undefined;
    const id = this.crypto.verifySession(token);
    if (!id) return undefined;
    // Every authenticated request runs this: one fixed statement, no query building (issue 16).
    const rows = (await this.sessions.query(SESSION_LOOKUP_SQL, [id])) as Array<{
      sid: string;
      expires_at: Date | string;
      revoked_at: Date | string | null;
      kind: string | null;
      s_appid: string | null;
      s_openid: string | null;
      uid: number | string;
      openid: string | null;
      appid: string | null;
      scope: string;
    }>;
    const row = rows[0];
    if (!row || row.revoked_at) return undefined;
    if (toDate(row.expires_at).getTime() <= this.clock.nowMs()) return undefined;
    const kind: SessionKind = row.kind === 'guest' || row.kind === 'miniprogram' ? row.kind : 'wechat';
    if (kind === 'wechat') {
      // Sessions from before kinds existed name no app: they were made through the official account.
      const appid = row.s_appid ?? row.appid;
      const openid = row.s_openid ?? row.openid;
      return { userId: Number(row.uid), openid, appid, scope: row.scope, sessionId: row.sid, kind };
    }
    return { userId: Number(row.uid), openid: row.s_openid, appid: row.s_appid, scope: kind, sessionId: row.sid, kind };
  }

  async logout(sessionId: string): Promise<void> {
    await this.sessions.update({ id: sessionId, revokedAt: IsNull() }, { revokedAt: this.clock.now() });
  }

  async findUserById(id: number): Promise<UserProfile | undefined> {
    const user = await this.users.findOneBy({ id: String(id) });
    return user ? toProfile(user) : undefined;
  }

  async findUserByOpenid(openid: string): Promise<UserProfile | undefined> {
    const user = await this.users.findOneBy({ appid: this.mp.appid, openid });
    return user ? toProfile(user) : undefined;
  }

  /**
   * Re-reads the profile from WeChat with the user's own token, refreshing it when it expired. When the
   * refresh token is gone too, the answer is 401 REAUTH_REQUIRED with the URL that fixes it.
   */
  async refreshProfile(userId: number): Promise<UserProfile> {
    const user = await this.users.createQueryBuilder('u').addSelect(['u.accessTokenEnc', 'u.refreshTokenEnc']).where('u.id = :id', { id: userId }).getOne();
    if (!user) throw new LoginRequiredError(ACCOUNT_GONE);
    if (user.scope !== 'snsapi_userinfo' || !user.openid) throw new ReauthRequiredError('this login did not grant access to the WeChat profile');
    // The official account the user logged in through (a sub-merchant's own, or the default).
    const mp = (await this.accounts.byAppid(user.appid)).mp;
    const now = this.clock.nowMs();
    let accessToken = user.accessTokenEnc ? this.safeDecrypt(user.accessTokenEnc) : undefined;
    if (!accessToken || !user.accessExpiresAt || user.accessExpiresAt.getTime() - 60_000 <= now) {
      const refreshToken = user.refreshTokenEnc ? this.safeDecrypt(user.refreshTokenEnc) : undefined;
      if (!refreshToken || !user.refreshExpiresAt || user.refreshExpiresAt.getTime() <= now) {
        throw new ReauthRequiredError('the WeChat authorization has expired (refresh tokens last 30 days)');
      }
      try {
        const fresh = await mp.refreshUserToken(refreshToken);
        accessToken = fresh.access_token;
        await this.users.update(
          { id: user.id },
          {
            accessTokenEnc: this.crypto.encrypt(fresh.access_token),
            refreshTokenEnc: this.crypto.encrypt(fresh.refresh_token),
            accessExpiresAt: new Date(now + fresh.expires_in * 1000),
            updatedAt: new Date(now),
          },
        );
      } catch (error) {
        if (error instanceof WechatMpApiError) {
          throw new ReauthRequiredError(`WeChat refused to refresh the authorization (errcode ${error.errcode})`);
        }
        throw error;
      }
    }
    try {
      const info = await mp.getUserInfo(accessToken, user.openid);
      await this.users.update({ id: user.id }, { nickname: info.nickname, avatarUrl: info.headimgurl ?? null, updatedAt: new Date(now) });
    } catch (error) {
      if (error instanceof WechatMpApiError && [40001, 42001, 48001].includes(error.errcode)) {
        throw new ReauthRequiredError(`WeChat refused the profile request (errcode ${error.errcode})`);
      }
      throw error;
    }
    const updated = await this.users.findOneBy({ id: user.id });
    if (!updated) throw new LoginRequiredError(ACCOUNT_GONE);
    return toProfile(updated);
  }

  private safeDecrypt(value: string): string | undefined {
    try {
      return this.crypto.decrypt(value);
    } catch (error) {
      if (!(error instanceof TokenDecryptionError)) throw error;
      this.logger.warn('a stored OAuth token could not be decrypted (SESSION_SECRET changed?)');
      return undefined;
    }
  }
}

function toDate(value: Date | string): Date {
  if (value instanceof Date) return value;
  return new Date(value.includes('T') ? value : value.replace(' ', 'T') + 'Z');
}

function toProfile(user: User): UserProfile {
  return {
    id: Number(user.id),
    appid: user.appid,
    openid: user.openid,
    unionid: user.unionid,
    nickname: user.nickname,
    avatarUrl: user.avatarUrl,
    scope: user.scope,
  };
}
