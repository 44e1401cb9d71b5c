import { Logger } from '@nestjs/common';
import { KeyObject, X509Certificate } from 'node:crypto';
import { SharedStore } from '../../common/store/shared-store';
import { AesGcmCipher } from './cipher';
import { WechatPaySignatureError } from './errors';
import type { CertificatesResponse, PlatformCertificate } from './types';
import { SignedHeaders, VerificationKeySource, verifySigned } from './verifier';

export interface RawCertificatesResponse {
  headers: SignedHeaders;
  body: Buffer;
}

export interface CertificateManagerOptions {
  mchid: string;
  cipher: AesGcmCipher;
  /** Fetches GET /v3/certificates (signed request, response NOT yet verified). */
  download: () => Promise<RawCertificatesResponse>;
  /** Verifies a response signed with a key other than a platform certificate (public-key mode). */
  fallbackKeys?: VerificationKeySource;
  store?: SharedStore;
  now: () => number;
  /** Periodic refresh (default 12 h). */
  refreshIntervalMs?: number;
  /** An unknown serial triggers at most one download per this interval (default 60 s). */
  unknownSerialCooldownMs?: number;
}

interface CachedCert {
  serialNo: string;
  pem: string;
  effectiveTime: string;
  expireTime: string;
}

/**
 * Platform certificates: downloaded from /v3/certificates, decrypted with the APIv3 key, the
 * response verified with the certificates it carries, kept in memory (and in the shared store so
 * other instances skip the download), refreshed every 12 hours and — single-flight, rate limited —
 * when a response carries an unknown serial. Certificates stay until they expire, so a rotation
 * (old and new valid side by side) never breaks verification.
 */
export class CertificateManager implements VerificationKeySource {
  private readonly logger = new Logger(CertificateManager.name);
  private readonly certs = new Map<string, { key: KeyObject; cert: PlatformCertificate }>();
  private inflight?: Promise<void>;
  private lastUnknownRefresh = 0;
  private timer?: NodeJS.Timeout;
  /** Downloads performed by this instance (tests assert single-flight). */
  downloads = 0;

  constructor(private readonly options: CertificateManagerOptions) {}

  private get storeKey(): string {
    return `wechatpay:certificates:${this.options.mchid}`;
  }

  /** Starts the periodic refresh (timer does not keep the process alive). */
  startAutoRefresh(): void {
    const interval = this.options.refreshIntervalMs ?? 12 * 3600_000;
    this.timer = setInterval(() => {
      this.refresh().catch((error: Error) => this.logger.warn(`scheduled certificate refresh failed: ${error.message}`));
    }, interval);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  list(): PlatformCertificate[] {
    this.purgeExpired();
    return [...this.certs.values()].map((entry) => entry.cert);
  }

  async keyFor(serial: string): Promise<KeyObject | undefined> {
    this.purgeExpired();
    const known = this.certs.get(serial);
    if (known) return known.key;
    const now = this.options.now();
    const cooldown = this.options.unknownSerialCooldownMs ?? 60_000;
    if (this.inflight) {
      await this.inflight.catch(() => undefined);
    } else if (this.certs.size === 0 || now - this.lastUnknownRefresh >= cooldown) {
      this.lastUnknownRefresh = now;
      await this.refresh().catch((error: Error) => this.logger.warn(`certificate refresh for serial ${serial} failed: ${error.message}`));
    }
    return this.certs.get(serial)?.key;
  }

  /** Single-flight: concurrent callers share one download. Shared store first, then WeChat. */
  refresh(options: { skipStore?: boolean } = {}): Promise<void> {
    if (!this.inflight) {
      this.inflight = this.doRefresh(options.skipStore ?? false).finally(() => (this.inflight = undefined));
    }
    return this.inflight;
  }

  private async doRefresh(skipStore: boolean): Promise<void> {
    if (!skipStore && this.options.store) {
      const cached = await this.options.store.get(this.storeKey).catch(() => undefined);
      if (cached) {
        const before = this.certs.size;
        for (const entry of JSON.parse(cached) as CachedCert[]) this.add(entry);
        // The cache only helps when it brings something new; otherwise ask WeChat.
        if (this.certs.size > before) return;
      }
    }
    this.downloads++;
    const raw = await this.options.download();
    const parsed = JSON.parse(raw.body.toString('utf8')) as CertificatesResponse;
    if (!parsed || !Array.isArray(parsed.data)) throw new Error('/v3/certificates answered without a data array');
    const downloaded: CachedCert[] = parsed.data.map((entry) => ({
      serialNo: entry.serial_no.toUpperCase(),
      pem: this.options.cipher.decryptResource(entry.encrypt_certificate).toString('utf8'),
      effectiveTime: entry.effective_time,
      expireTime: entry.expire_time,
    }));
    // Verify the download with the certificates it carries (or the public key in a migration).
    const fresh = new Map(downloaded.map((c) => [c.serialNo, loadCert(c).key]));
    await verifySigned(
      raw.headers,
      raw.body,
      { keyFor: (serial) => fresh.get(serial.toUpperCase()) ?? this.options.fallbackKeys?.keyFor(serial) },
      Math.floor(this.options.now() / 1000),
    ).catch((error: unknown) => {
      if (error instanceof WechatPaySignatureError) {
        throw new WechatPaySignatureError(error.reason, `/v3/certificates response: ${error.message}`, error.serial);
      }
      throw error;
    });
    for (const entry of downloaded) this.add(entry);
    if (this.options.store) {
      const all: CachedCert[] = this.list().map((c) => ({
        serialNo: c.serialNo,
        pem: c.pem,
        effectiveTime: c.effectiveTime.toISOString(),
        expireTime: c.expireTime.toISOString(),
      }));
      await this.options.store.set(this.storeKey, JSON.stringify(all), 12 * 3600_000).catch(() => undefined);
    }
    this.logger.log(`platform certificates: ${[...this.certs.keys()].join(', ')}`);
  }

  private add(entry: CachedCert): void {
    const loaded = loadCert(entry);
    if (loaded.cert.expireTime.getTime() <= this.options.now()) return;
    this.certs.set(loaded.cert.serialNo, loaded);
  }

  private purgeExpired(): void {
    const now = this.options.now();
    for (const [serial, entry] of this.certs) {
      if (entry.cert.expireTime.getTime() <= now) this.certs.delete(serial);
    }
  }
}

function loadCert(entry: CachedCert): { key: KeyObject; cert: PlatformCertificate } {
  const x509 = new X509Certificate(entry.pem);
  const expireTime = new Date(entry.expireTime);
  const validTo = new Date(x509.validTo);
  return {
    key: x509.publicKey,
    cert: {
      serialNo: entry.serialNo.toUpperCase(),
      pem: entry.pem,
      effectiveTime: new Date(entry.effectiveTime),
      // The earlier of what WeChat announced and what the certificate itself says.
      expireTime: Number.isNaN(validTo.getTime()) || validTo > expireTime ? expireTime : validTo,
    },
  };
}
