import { siteHosts } from '../common/loopback';
import { randomInt } from 'node:crypto';
import { dirname } from 'node:path';
import { AppConfig } from '../config/app-config';
import { SandboxKeystore, SandboxSignMode, SandboxTls, sandboxMiniprogram, sandboxSubOfficialAccount } from './keystore';
import { SandboxSigningKey } from './sandbox-crypto';
import { SANDBOX_SUB_MCHIDS, SandboxMerchantKind, sandboxSubMchids } from './sandbox-partner';

/**
 * The simulated merchant's registration at WeChat (what a real merchant configures in the portals),
 * plus the sandbox's own knobs. Built once from AppConfig and the keystore.
 */
export class SandboxSettings {
  /** Sub-merchants' own official accounts (sub_appid → its secret and the sub-merchants it is bound to). */
  private readonly subAccounts = new Map<string, { appid: string; appsecret: string; subMchids: Set<string> }>();

  /** WeChat Pay's platform certificate key (serial = the certificate's). */
  readonly certificateKey: SandboxSigningKey;
  /** The WeChat Pay public key's private half (serial = its PUB_KEY_ID_…). */
  readonly publicKeySigner: SandboxSigningKey;
  /** The app's DATA_DIR (the sandbox keeps its own files in DATA_DIR/sandbox). */
  readonly appDataDir: string;
  /** The CA, the mutual-TLS server certificate and the CA-issued merchant certificate (set by `from`). */
  tls!: SandboxTls;

  constructor(
    readonly keystore: SandboxKeystore,
    readonly signMode: SandboxSignMode,
    readonly timeScale: number,
    /** 网页授权域名 */
    readonly oauthDomains: string[],
    /** JS接口安全域名 */
    readonly jsDomains: string[],
    /** JSAPI支付授权目录 */
    readonly payDirectories: string[],
    readonly refundDelayMs: number,
    readonly billUrlTtlMs: number,
    readonly notifyTimeoutMs: number,
    readonly persistState: boolean,
    readonly dataDir: string,
    /** What a refund beyond the refundable amount answers: 403 NOT_ENOUGH (default) or 400 INVALID_REQUEST. */
    readonly overRefundError: 'NOT_ENOUGH' | 'INVALID_REQUEST' = 'INVALID_REQUEST',
    /** H5支付域名 (SANDBOX_H5_DOMAINS) */
    readonly h5Domains: string[] = [],
    /** The mini-program bound to the merchant: WECHAT_MINIPROGRAM_APPID/APPSECRET when set, else the keystore's. */
    readonly miniprogram: { appid: string; appsecret: string } = sandboxMiniprogram(keystore),
    /**
     * Service-provider mode: the official account of sub-merchant SANDBOX_SUB_MCHIDS[0] (sub_appid, bound
     * to that sub-merchant only): WECHAT_SUB_APPID/WECHAT_SUB_APPSECRET when set, else derived from the keystore.
     */
    readonly subOfficialAccount: { appid: string; appsecret: string; subMchid: string } = { ...sandboxSubOfficialAccount(keystore), subMchid: SANDBOX_SUB_MCHIDS[0] },
    /** The sub-merchants bound to the merchant as a provider (SANDBOX_SUB_MERCHANTS of them: 1900000201, …). */
    readonly subMchids: string[] = sandboxSubMchids(),
    /** Which kinds of merchant it is: in-process the app's, standalone both (see SandboxMerchantKind). */
    readonly merchantKind: SandboxMerchantKind = 'both',
  ) {
    // Every bound sub-merchant has its own official account: the first (subOfficialAccount), the
    // others derived; more are bound through the control API (bindSubAccount).
    this.subAccounts.set(subOfficialAccount.appid, { appid: subOfficialAccount.appid, appsecret: subOfficialAccount.appsecret, subMchids: new Set([subOfficialAccount.subMchid]) });
    for (const subMchid of subMchids) {
      if (subMchid === subOfficialAccount.subMchid) continue;
      const derived = sandboxSubOfficialAccount(keystore, subMchid);
      this.subAccounts.set(derived.appid, { ...derived, subMchids: new Set([subMchid]) });
    }
    this.appDataDir = dirname(dataDir);
    this.certificateKey = new SandboxSigningKey(keystore.platform.serial, keystore.platform.privateKeyPem);
    this.publicKeySigner = new SandboxSigningKey(keystore.publicKey.id, keystore.publicKey.privateKeyPem);
  }

  /** A sub-merchant's own official account by its appid (sub_appid), with the sub-merchants it is bound to. */
  subAccount(appid: unknown): { appid: string; appsecret: string; subMchids: ReadonlySet<string> } | undefined {
    return typeof appid === 'string' ? this.subAccounts.get(appid) : undefined;
  }

  /** Each bound sub-merchant with the appids of its own official accounts. */
  subMerchantAccounts(): Array<{ subMchid: string; officialAccounts: string[] }> {
    return this.subMchids.map((subMchid) => ({ subMchid, officialAccounts: [...this.subAccounts.values()].filter((a) => a.subMchids.has(subMchid)).map((a) => a.appid) }));
  }

  /**
   * Registers an official account (appid + AppSecret) at "WeChat" and binds it to a sub-merchant (服务商
   * 平台 → 特约商户 → 关联 APPID). An appid already known must come with its own secret; the merchant's
   * own official account and mini-program cannot be a sub_appid. Returns a problem, or undefined.
   */
  bindSubAccount(subMchid: string, appid: string, appsecret: string): string | undefined {
    if (!this.subMchids.includes(subMchid)) return `sub-merchant ${subMchid} is not bound to the provider (bound: ${this.subMchids.join(', ')})`;
    if (appid === this.keystore.appid || appid === this.miniprogram.appid) return `${appid} is the provider's own official account or mini-program`;
    const known = this.subAccounts.get(appid);
    if (known && known.appsecret !== appsecret) return `official account ${appid} already exists with another AppSecret`;
    if (known) known.subMchids.add(subMchid);
    else this.subAccounts.set(appid, { appid, appsecret, subMchids: new Set([subMchid]) });
    return undefined;
  }

  /**
   * The key an answer is signed with. Migration: the one the request's Wechatpay-Serial names — the
   * public key for its PUB_KEY_ID_…, the platform certificate for its serial and, as for a merchant
   * that has not started naming keys yet, when the header is absent or names neither.
   */
  answerKey(requestSerial: string | undefined): SandboxSigningKey {
    if (this.signMode === 'public_key') return this.publicKeySigner;
    if (this.signMode === 'certificate') return this.certificateKey;
    return requestSerial?.trim() === this.publicKeySigner.serial ? this.publicKeySigner : this.certificateKey;
  }

  /** The key a notification is signed with: in migration mode either, at random (Wechatpay-Serial says which). */
  notificationKey(): SandboxSigningKey {
    if (this.signMode === 'public_key') return this.publicKeySigner;
    if (this.signMode === 'certificate') return this.certificateKey;
    return randomInt(2) === 0 ? this.publicKeySigner : this.certificateKey;
  }

  /** Scaled delay: WeChat's schedule divided by SANDBOX_TIME_SCALE. */
  scaled(ms: number): number {
    return Math.max(1, Math.round(ms / this.timeScale));
  }

  static from(config: AppConfig, keystore: SandboxKeystore, standalone: boolean, tls: SandboxTls): SandboxSettings {
    const s = config.sandbox;
    const subMchids = sandboxSubMchids(s.subMerchants);
    // The app's own host (both loopback names when it is one: pages opened on 127.0.0.1 instead of localhost).
    const base = new URL(config.publicBaseUrl);
    const defaultHosts = standalone ? ['localhost', '127.0.0.1'] : siteHosts(config.publicBaseUrl);
    const defaultDirectories = standalone
      ? ['http://localhost/', 'http://127.0.0.1/']
      : defaultHosts.map((host) => `${base.protocol}//${host}${base.port ? `:${base.port}` : ''}/`);
    const settings = new SandboxSettings(
      keystore,
      s.signMode,
      s.timeScale,
      s.oauthDomains.length ? s.oauthDomains : defaultHosts,
      s.jsDomains.length ? s.jsDomains : defaultHosts,
      s.payDirectories.length ? s.payDirectories : defaultDirectories,
      s.refundDelayMs,
      s.billUrlTtlMs,
      s.notifyTimeoutMs,
      s.persistState,
      s.dataDir,
      s.overRefundError,
      s.h5Domains?.length ? s.h5Domains : defaultHosts,
      config.wechat.miniprogram ?? sandboxMiniprogram(keystore),
      {
        ...(config.wechat.partner?.subApp ?? sandboxSubOfficialAccount(keystore)),
        // Bound to the app's default sub-merchant when that is one of the sandbox's, else to the first.
        subMchid: subMchids.includes(config.wechat.partner?.subMchid ?? '') ? config.wechat.partner!.subMchid : subMchids[0],
      },
      subMchids,
      standalone ? 'both' : config.wechat.partner ? 'partner' : 'direct',
    );
    settings.tls = tls;
    return settings;
  }
}

/**
 * WeChat's JSAPI payment-directory rule: the page's directory (its path up to the last '/') must equal
 * a registered directory exactly — except that a bare domain (path '/') covers every page on it.
 * Registering https://a.com/x/y/ therefore rejects pages in /x/ and in /x/y/pay/. Hosts compare
 * without ports (WeChat registrations have none).
 */
export function pageUnderPayDirectory(pageUrl: string, directories: string[]): boolean {
  let page: URL;
  try {
    page = new URL(pageUrl);
  } catch {
    return false;
  }
  const pageDir = page.pathname.slice(0, page.pathname.lastIndexOf('/') + 1);
  return directories.some((entry) => {
    let dir: URL;
    try {
      dir = new URL(entry.endsWith('/') ? entry : `${entry}/`);
    } catch {
      return false;
    }
    if (dir.hostname.toLowerCase() !== page.hostname.toLowerCase() || dir.protocol !== page.protocol) return false;
    return dir.pathname === '/' || dir.pathname === pageDir;
  });
}

export function hostAllowed(url: string, hosts: string[]): boolean {
  try {
    const host = new URL(url).hostname.toLowerCase();
    return hosts.includes(host);
  } catch {
    return false;
  }
}
