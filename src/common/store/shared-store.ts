/**
 * A small key-value store shared by every instance of the app: Redis when REDIS_URL is set,
 * process memory otherwise. Used for caches (access_token, jsapi_ticket, platform certificates)
 * and short locks (single-flight across instances).
 */
export abstract class SharedStore {
  abstract readonly kind: 'memory' | 'redis';
  abstract get(key: string): Promise<string | undefined>;
  /** ttlMs undefined = no expiry. */
  abstract set(key: string, value: string, ttlMs?: number): Promise<void>;
  abstract del(key: string): Promise<void>;
  /** Sets only when absent (SET NX PX). True when this caller set it: the basis of a lock. */
  abstract setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;
  /** Deletes only when the current value equals `value` (releasing a lock one still owns). */
  abstract deleteIfEquals(key: string, value: string): Promise<boolean>;
  /** Remaining time to live in ms; undefined when the key is absent or has no expiry. */
  abstract ttl(key: string): Promise<number | undefined>;
  abstract ping(): Promise<void>;
  abstract close(): Promise<void>;
}
