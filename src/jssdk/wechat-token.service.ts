import { Injectable, Logger, Optional } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { Clock } from '../common/clock';
import { SharedStore } from '../common/store/shared-store';
import { AppConfig } from '../config/app-config';
import { Metrics } from '../metrics/metrics.service';
import { WechatMpApiError } from '../wechat/mp/errors';
import { WechatMpClient } from '../wechat/mp/wechat-mp.client';

interface Cached {
  value: string;
  /** ms since epoch */
  expiresAt: number;
  /**
   * When to fetch again (ms since epoch): normally WECHAT_TOKEN_REFRESH_AHEAD before expiry. A value
   * WeChat hands out already inside that window (a ticket with 4 minutes left) is used for half of
   * what remains instead, or every request would fetch it again until it expired.
   */
  refreshAt?: number;
}

const LOCK_TTL_MS = 10_000;
const WAIT_FOR_WINNER_MS = 10_000;
/** How long an instance trusts its in-process copy before asking the shared store again. */
const LOCAL_TTL_MS = 30_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The official account's basic access_token and jsapi_ticket, cached in the shared store (Redis when
 * configured, so every instance uses one token) behind a short in-process copy, refreshed ahead of
 * expiry, and fetched single-flight: concurrent callers in one process share one promise, and across
 * processes a Redis lock lets one instance fetch while the others wait for its value. A token WeChat
 * calls invalid (40001/42001) is dropped and fetched again, once.
 */
@Injectable()
export class WechatTokenService {
  private readonly logger = new Logger(WechatTokenService.name);
  private readonly local = new Map<string, Cached & { checkedAt: number }>();
  private readonly inflight = new Map<string, Promise<Cached>>();
  private readonly owner = randomBytes(8).toString('hex');

  constructor(
    private readonly mp: WechatMpClient,
    private readonly store: SharedStore,
    private readonly config: AppConfig,
    private readonly clock: Clock,
    @Optional() private readonly metrics?: Metrics,
  ) {}

  /** A fetch from WeChat (not a cache hit), counted by kind and outcome. */
  private counted(kind: 'access_token' | 'jsapi_ticket', fetch: () => Promise<Cached>): () => Promise<Cached> {
    return () =>
      fetch().then(
        (value) => {
          this.metrics?.tokenRefresh(kind, 'success');
          return value;
        },
        (error: unknown) => {
          this.metrics?.tokenRefresh(kind, 'failure');
          throw error;
        },
      );
  }

  /** The official account these tokens are of (the one shoppers log in through; see WechatModule). */
  get appid(): string {
    return this.mp.appid;
  }

  private key(kind: 'access_token' | 'jsapi_ticket'): string {
    return `wechat:${kind}:${this.mp.appid}`;
  }

  async getAccessToken(): Promise<string> {
    return this.accessToken(false);
  }

  /**
   * The cached token, or a fetched one. `forceRefresh` travels with this one fetch (it is only used if
   * this caller is the one that fetches): a caller joining a fetch already under way, or finding a
   * token someone else has just replaced, leaves nothing behind to force a later, natural refresh.
   */
  private async accessToken(forceRefresh: boolean): Promise<string> {
    return (await this.get(this.key('access_token'), this.counted('access_token', () => this.fetchAccessToken(forceRefresh)))).value;
  }

  async getJsapiTicket(): Promise<string> {
    return (
      await this.get(
        this.key('jsapi_ticket'),
        this.counted('jsapi_ticket', async () => {
          const ticket = await this.withAccessToken((token) => this.mp.getJsapiTicket(token));
          return { value: ticket.ticket, expiresAt: this.clock.nowMs() + ticket.expires_in * 1000 };
        }),
      )
    ).value;
  }

  /** Forgets `token` (only if it is still the cached one: another caller may have replaced it). */
  async invalidateAccessToken(token: string): Promise<void> {
    const key = this.key('access_token');
    if (this.local.get(key)?.value === token) this.local.delete(key);
    const shared = await this.store.get(key);
    if (shared && (JSON.parse(shared) as Cached).value === token) await this.store.del(key);
  }

  /**
   * Runs an official-account call with the current access_token; on 40001/42001 the token is dropped,
   * a fresh one fetched, and the call retried once.
   */
  async withAccessToken<T>(call: (accessToken: string) => Promise<T>): Promise<T> {
    const token = await this.getAccessToken();
    try {
      return await call(token);
    } catch (error) {
      if (!(error instanceof WechatMpApiError) || !error.isTokenInvalid) throw error;
      this.logger.warn(`access_token rejected by WeChat (errcode ${error.errcode}); fetching a new one`);
      await this.invalidateAccessToken(token);
      // stable_token would hand back the token WeChat just refused, so this fetch (if it is ours) forces a new one.
      return call(await this.accessToken(true));
    }
  }

  private async fetchAccessToken(force: boolean): Promise<Cached> {
    let res = await this.mp.getAccessToken({ forceRefresh: force });
    // stable_token hands back the current token with its remaining life; if that is nearly over, ask
    // for a new one rather than caching something about to expire.
    if (res.expires_in * 1000 <= this.config.jssdk.refreshAheadMs && this.config.wechat.useStableToken && !force) {
      res = await this.mp.getAccessToken({ forceRefresh: true });
    }
    return { value: res.access_token, expiresAt: this.clock.nowMs() + res.expires_in * 1000 };
  }

  private fresh(entry: Cached | undefined): entry is Cached {
    return !!entry && (entry.refreshAt ?? entry.expiresAt - this.config.jssdk.refreshAheadMs) > this.clock.nowMs();
  }

  private scheduled(entry: Cached): Cached {
    const remaining = entry.expiresAt - this.clock.nowMs();
    return { ...entry, refreshAt: entry.expiresAt - Math.min(this.config.jssdk.refreshAheadMs, Math.max(0, remaining) / 2) };
  }

  private async get(key: string, fetch: () => Promise<Cached>): Promise<Cached> {
    const now = this.clock.nowMs();
    const local = this.local.get(key);
    if (this.fresh(local) && now - local.checkedAt < LOCAL_TTL_MS) return local;
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.load(key, fetch).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return pending;
  }

  private async load(key: string, fetch: () => Promise<Cached>): Promise<Cached> {
    const shared = await this.readShared(key);
    if (shared) return this.remember(key, shared);
    const lockKey = `lock:${key}`;
    if (await this.store.setIfAbsent(lockKey, this.owner, LOCK_TTL_MS)) {
      try {
        // Another instance may have finished between our read and our lock.
        const again = await this.readShared(key);
        if (again) return this.remember(key, again);
        const fetched = this.scheduled(await fetch());
        const ttl = fetched.expiresAt - this.clock.nowMs();
        await this.store.set(key, JSON.stringify(fetched), Math.max(1000, ttl));
        return this.remember(key, fetched);
      } finally {
        await this.store.deleteIfEquals(lockKey, this.owner);
      }
    }
    // Another instance holds the lock: wait for its value rather than fetching (and invalidating) our own.
    const deadline = Date.now() + WAIT_FOR_WINNER_MS;
    while (Date.now() < deadline) {
      await sleep(25);
      const value = await this.readShared(key);
      if (value) return this.remember(key, value);
      if (!(await this.store.get(lockKey))) break;
    }
    const fetched = this.scheduled(await fetch());
    await this.store.set(key, JSON.stringify(fetched), Math.max(1000, fetched.expiresAt - this.clock.nowMs()));
    return this.remember(key, fetched);
  }

  private async readShared(key: string): Promise<Cached | undefined> {
    const raw = await this.store.get(key);
    if (!raw) return undefined;
    const entry = JSON.parse(raw) as Cached;
    return this.fresh(entry) ? entry : undefined;
  }

  private remember(key: string, entry: Cached): Cached {
    this.local.set(key, { ...entry, checkedAt: this.clock.nowMs() });
    return entry;
  }
}
