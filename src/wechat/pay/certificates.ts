import { Logger } from '@nestjs/common';
import { KeyObject, X509Certificate } from 'node:crypto';
import { SharedStore } from '../../common/store/shared-store';
import { AesGcmCipher } from './cipher';
import { WechatPayApiError, WechatPaySignatureError } from './errors';
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
  /**
   * Unknown serials trigger at most one download per this interval (default 60 s), counted from the
   * last download of any kind, and also before any certificate is known.
   */
  unknownSerialCooldownMs?: number;
  /** Runs `tick` every `everyMs` and returns how to stop it (default: an unref'd setInterval). */
  schedule?: (tick: () => void, everyMs: number) => () => void;
}

/**
 * What a platform-certificate serial can look like: an X.509 serial in hex. Anything else — a
 * `PUB_KEY_ID_…` id, garbage sent to the public notify endpoint — is never looked up.
 */
const CERTIFICATE_SERIAL = /^[0-9A-Fa-f]{1,64}$/;

function everyInterval(tick: () => void, everyMs: number): () => void {
  const timer = setInterval(tick, everyMs);
  timer.unref();
  return () => clearInterval(timer);
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
 * when a response carries an unknown serial: the shared store is read first, and WeChat asked when
 * the serial is still unknown after it, at most once per cooldown (also while no certificate is
 * known, so bogus serials on the public notify endpoint cannot make us send a download each).
 * Certificates stay until they expire, so a rotation (old and new valid side by side) never breaks
 * verification.
 */
export class CertificateManager implements VerificationKeySource {
  private readonly logger = new Logger(CertificateManager.name);
  private readonly certs = new Map<string, { key: KeyObject; cert: PlatformCertificate }>();
  private inflight?: Promise<void>;
  /** When the last download was started (any reason); undefined before the first. */
  private lastDownloadAt?: number;
  private stopSchedule?: () => void;
  private publicKeyModeReported = false;
  /** Downloads performed by this instance (tests assert single-flight). */
  downloads = 0;

  constructor(private readonly options: CertificateManagerOptions) {}

  private get storeKey(): string {
    return `wechatpay:certificates:${this.options.mchid}`;
  }

  /** Starts the periodic refresh (the default timer does not keep the process alive). */
  startAutoRefresh(): void {
    this.stop();
    const interval = this.options.refreshIntervalMs ?? 12 * 3600_000;
    this.stopSchedule = (this.options.schedule ?? everyInterval)(() => {
      this.refresh().catch((error: Error) => this.reportFailure('scheduled certificate refresh', error));
    }, interval);
  }

  stop(): void {
    this.stopSchedule?.();
    this.stopSchedule = undefined;
  }

  list(): PlatformCertificate[] {
    this.purgeExpired();
    return [...this.certs.values()].map((entry) => entry.cert);
  }

  /**
   * The serial of the newest platform certificate already in effect (latest effective_time): the
   * one a request names in Wechatpay-Serial. Undefined while none is known.
   */
  newestSerial(): string | undefined {
    const now = this.options.now();
    let newest: PlatformCertificate | undefined;
    for (const cert of this.list()) {
      if (cert.effectiveTime.getTime() > now) continue;
      if (!newest || cert.effectiveTime > newest.effectiveTime) newest = cert;
    }
    return newest?.serialNo;
  }

  async keyFor(serial: string): Promise<KeyObject | undefined> {
    if (!CERTIFICATE_SERIAL.test(serial)) return undefined;
    const wanted = serial.toUpperCase();
    const known = this.known(wanted);
    if (known) return known;
    // A refresh already under way (another caller's) may bring it: share it rather than start one.
    if (this.inflight) await this.inflight.catch(() => undefined);
    if (!this.known(wanted)) {
      await this.run({ skipStore: false, wanted }).catch((error: Error) => this.reportFailure(`certificate refresh for serial ${wanted}`, error));
    }
    return this.known(wanted);
  }

  /**
   * Single-flight: concurrent callers share one refresh. Shared store first (unless skipStore),
   * then WeChat. Always downloads when the store brings nothing new (the cooldown of unknown
   * serials does not apply: this is the periodic refresh or an explicit call).
   */
  refresh(options: { skipStore?: boolean } = {}): Promise<void> {
    return this.run({ skipStore: options.skipStore ?? false });
  }

  /**
   * /v3/certificates answering 404 means the merchant has switched to WeChat Pay public-key mode (no
   * platform certificates any more). WeChat's answer is `404 RESOURCE_NOT_EXISTS` "无可用的平台证书，请在
   * 商户平台-API安全申请使用微信支付公钥…" (quoted in wechatpay-java #306/#400, wechatpay-go #251);
   * NOT_FOUND is accepted too. Said once, at warn, with what to configure — not again at every 12-hour
   * refresh. Other failures are logged each time.
   */
  private reportFailure(what: string, error: Error): void {
    if (error instanceof WechatPayApiError && (error.httpStatus === 404 || error.wechatCode === 'NOT_FOUND' || error.wechatCode === 'RESOURCE_NOT_EXISTS')) {
      if (this.publicKeyModeReported) return;
      this.publicKeyModeReported = true;
      this.logger.warn(
        `${what}: /v3/certificates answered ${error.httpStatus} ${error.wechatCode}: this merchant has switched to WeChat Pay public-key mode ` +
          `(no platform certificates). Configure WECHATPAY_PUBLIC_KEY_ID and WECHATPAY_PUBLIC_KEY_PATH. (Said once.)`,
      );
      return;
    }
    this.logger.warn(`${what} failed: ${error.message}`);
  }

  private run(options: { skipStore: boolean; wanted?: string }): Promise<void> {
    if (!this.inflight) {
      this.inflight = this.doRefresh(options).finally(() => (this.inflight = undefined));
    }
    return this.inflight;
  }

  private known(serial: string): KeyObject | undefined {
    this.purgeExpired();
    return this.certs.get(serial)?.key;
  }

  private async doRefresh({ skipStore, wanted }: { skipStore: boolean; wanted?: string }): Promise<void> {
    if (!skipStore && this.options.store) {
      const cached = await this.options.store.get(this.storeKey).catch(() => undefined);
      if (cached) {
        const before = this.certs.size;
        this.addAll(cached);
        // The cache settles a lookup when it holds the wanted serial (another instance already
        // downloaded it), and a periodic refresh when it brings something new; otherwise ask WeChat.
        if (wanted !== undefined ? this.certs.has(wanted) : this.certs.size > before) return;
      }
    }
    const now = this.options.now();
    if (wanted !== undefined && this.lastDownloadAt !== undefined) {
      const cooldown = this.options.unknownSerialCooldownMs ?? 60_000;
      // (A clock that went back does not block downloads.)
      if (now >= this.lastDownloadAt && now - this.lastDownloadAt < cooldown) return;
    }
    this.lastDownloadAt = now;
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

  /** Adds what the shared store holds; unreadable content is ignored (a download replaces it). */
  private addAll(cached: string): void {
    let entries: unknown;
    try {
      entries = JSON.parse(cached);
    } catch {
      return;
    }
    if (!Array.isArray(entries)) return;
    for (const entry of entries as CachedCert[]) {
      // Already known: skip parsing it again.
      if (this.certs.get(String(entry?.serialNo).toUpperCase())?.cert.pem === entry.pem) continue;
      try {
        this.add(entry);
      } catch (error) {
        this.logger.warn(`ignoring an unreadable cached certificate: ${(error as Error).message}`);
      }
    }
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
