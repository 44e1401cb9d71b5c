import Redis from 'ioredis';
import { SharedStore } from './shared-store';

const DELETE_IF_EQUALS = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

export class RedisStore extends SharedStore {
  readonly kind = 'redis' as const;
  readonly client: Redis;

  constructor(url: string, private readonly prefix = 'whp:') {
    super();
    this.client = new Redis(url, {
      lazyConnect: false,
      maxRetriesPerRequest: 2,
      enableOfflineQueue: true,
      connectTimeout: 5000,
      disconnectTimeout: 200,
      retryStrategy: (times) => Math.min(times * 100, 1000),
    });
    // Connection errors surface through the failing command and /health; avoid unhandled 'error' events.
    this.client.on('error', () => undefined);
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.client.get(this.prefix + key)) ?? undefined;
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    if (ttlMs !== undefined) await this.client.set(this.prefix + key, value, 'PX', Math.max(1, Math.round(ttlMs)));
    else await this.client.set(this.prefix + key, value);
  }

  async del(key: string): Promise<void> {
    await this.client.del(this.prefix + key);
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    return (await this.client.set(this.prefix + key, value, 'PX', Math.max(1, Math.round(ttlMs)), 'NX')) === 'OK';
  }

  async deleteIfEquals(key: string, value: string): Promise<boolean> {
    return (await this.client.eval(DELETE_IF_EQUALS, 1, this.prefix + key, value)) === 1;
  }

  async ttl(key: string): Promise<number | undefined> {
    const ms = await this.client.pttl(this.prefix + key);
    return ms >= 0 ? ms : undefined;
  }

  async ping(): Promise<void> {
    await this.client.ping();
  }

  async close(): Promise<void> {
    if (this.client.status === 'ready') await this.client.quit().catch(() => this.client.disconnect());
    else this.client.disconnect();
  }
}
