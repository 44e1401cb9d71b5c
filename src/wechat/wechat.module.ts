import { DynamicModule, Global, Injectable, Module, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { Clock } from '../common/clock';
import { SharedStore } from '../common/store/shared-store';
import { AppConfig } from '../config/app-config';
import { Metrics } from '../metrics/metrics.service';
import { WechatMpClient } from './mp/wechat-mp.client';
import { CertificateManager } from './pay/certificates';
import { AesGcmCipher } from './pay/cipher';
import { WechatPayNotificationParser } from './pay/notification-parser';
import { loadPrivateKey } from './pay/rsa';
import { WechatPaySigner } from './pay/signer';
import { CombinedKeySource, PublicKeySource, VerificationKeySource } from './pay/verifier';
import { WechatPayClient } from './pay/wechat-pay.client';
import { PAYMENT_GATEWAY, WechatPayV3Gateway } from './pay/payment-gateway';
import { WechatPayV2Gateway } from './pay-v2/payment-gateway-v2';
import { WechatPayV2Client } from './pay-v2/wechat-pay-v2.client';
import { WechatPayV3PartnerGateway } from './pay/partner-gateway';

/** The APIv2 client of the credentials and configuration (also what `npm run check:live` probes with in v2 mode). */
export function v2Client(c: WechatCredentials, config: AppConfig, clock: Clock, metrics: Metrics | undefined, options: WechatModuleOptions = {}): WechatPayV2Client {
  if (!c.apiV2Key) throw new Error('WECHATPAY_API_VERSION=v2 without an APIv2 key (loadConfig should have refused to start)');
  return new WechatPayV2Client({
    appid: c.appid,
    mchid: c.mchid,
    apiKey: c.apiV2Key,
    signType: config.wechat.v2SignType,
    baseUrl: config.wechat.payApiBase,
    backupBaseUrl: config.wechat.payApiBackupBase,
    secureBaseUrl: options.secapiBase ?? config.wechat.secapiBase,
    timeoutMs: config.wechat.httpTimeoutMs,
    clientCert: c.merchantCertPem ? { certPem: c.merchantCertPem, keyPem: c.merchantPrivateKeyPem, trustedCaPem: c.trustedCaPem } : undefined,
    now: () => clock.nowMs(),
    observe: metrics && ((call) => metrics.wechatCall(call)),
  });
}

/**
 * The official account shoppers log in through (OAuth), whose openid pays in JSAPI and whose
 * access_token/jsapi_ticket sign wx.config: the merchant's (the provider's sp_appid in
 * service-provider mode), or the sub-merchant's own (WECHAT_SUB_APPID + WECHAT_SUB_APPSECRET, whose
 * openids are sub_openids). Decided here once; auth, jssdk and the payment port follow it.
 */
export function shopperAccount(c: WechatCredentials, config: AppConfig): { appid: string; appsecret: string } {
  return config.wechat.partner?.subApp ?? { appid: c.appid, appsecret: c.appsecret };
}

/** An official-account client for `account` (the shoppers' default one, or a sub-merchant's own: see ShopperAccounts). */
export function mpClientFor(account: { appid: string; appsecret: string }, config: AppConfig, metrics?: Metrics): WechatMpClient {
  return new WechatMpClient(account, {
    apiBase: config.wechat.mpApiBase,
    openBase: config.wechat.openBase,
    timeoutMs: config.wechat.httpTimeoutMs,
    useStableToken: config.wechat.useStableToken,
    observe: metrics && ((call) => metrics.wechatCall(call)),
  });
}

/** The mini-program bound to the merchant (WECHAT_MINIPROGRAM_APPID, or the sandbox's own); undefined = not configured. */
export function miniprogramAppid(credentials: WechatCredentials): string | undefined {
  return credentials.miniprogram?.appid;
}
import { WechatPayHttp, signedHeadersOf } from './pay/wechat-pay.http';
import { ClockSkew } from './clock-skew';
import { WechatCredentials } from './wechat-credentials';

export type CredentialsFactory = (config: AppConfig) => WechatCredentials | Promise<WechatCredentials>;

export interface WechatModuleOptions {
  /**
   * Where the APIv2 calls needing the merchant certificate go, when only known once the app runs (the
   * in-process sandbox's mutual-TLS port); default WECHATPAY_SECAPI_BASE, else WECHATPAY_API_BASE.
   */
  secapiBase?: () => string;
}

/** Injection token of the verification keys (public key and/or platform certificates). */
export const WECHATPAY_KEYS = Symbol('WECHATPAY_KEYS');

@Injectable()
class CertificateLifecycle implements OnModuleInit, OnModuleDestroy {
  constructor(
    private readonly certificates: CertificateManager,
    private readonly credentials: WechatCredentials,
  ) {}

  onModuleInit(): void {
    // Platform-certificate mode keeps them fresh every 12 h; public-key mode only downloads on
    // demand (an unknown serial during a migration). An APIv2 merchant without an APIv3 key has
    // no platform certificates to keep (v2 answers are signed with the API key).
    if (!this.credentials.wechatpayPublicKey && this.credentials.apiv3Key) this.certificates.startAutoRefresh();
  }

  onModuleDestroy(): void {
    this.certificates.stop();
  }
}

/**
 * What every APIv3 request names in Wechatpay-Serial (the key WeChat should sign its answer with):
 * the public key id in public-key mode, else the newest platform certificate's serial.
 */
function requestSerialFor(c: WechatCredentials, certificates: CertificateManager): () => string | undefined {
  const publicKeyId = c.wechatpayPublicKey?.id;
  return () => publicKeyId ?? certificates.newestSerial();
}

/**
 * The low-level WeChat clients, knowing nothing of our orders or users: Pay APIv3 (signer, verifier,
 * cipher, certificates, HTTP, typed API, notification parser) and the official-account API. Keys are
 * parsed once here.
 */
@Global()
@Module({})
export class WechatModule {
  static forRoot(credentialsFactory: CredentialsFactory, options: WechatModuleOptions = {}): DynamicModule {
    return {
      module: WechatModule,
      providers: [
        { provide: ClockSkew, inject: [AppConfig], useFactory: (config: AppConfig) => new ClockSkew(config.wechat.clockSkewMaxMs) },
        { provide: WechatCredentials, inject: [AppConfig], useFactory: credentialsFactory },
        {
          provide: WechatPaySigner,
          inject: [WechatCredentials],
          useFactory: (c: WechatCredentials) =>
            new WechatPaySigner(c.mchid, c.merchantCertSerial, loadPrivateKey(c.merchantPrivateKeyPem)),
        },
        {
          provide: AesGcmCipher,
          inject: [WechatCredentials],
          // An APIv2-only merchant (live, WECHATPAY_API_VERSION=v2) has no APIv3 key: every APIv3
          // decryption (v3 notifications, platform certificates) is then refused, nothing else changes.
          useFactory: (c: WechatCredentials) => (c.apiv3Key ? new AesGcmCipher(c.apiv3Key) : AesGcmCipher.disabled('WECHATPAY_APIV3_KEY is not set (APIv2 mode)')),
        },
        {
          provide: PublicKeySource,
          inject: [WechatCredentials],
          useFactory: (c: WechatCredentials) =>
            c.wechatpayPublicKey ? new PublicKeySource(c.wechatpayPublicKey.id, c.wechatpayPublicKey.pem) : undefined,
        },
        {
          provide: WechatPayHttp,
          inject: [AppConfig, WechatPaySigner, Clock, WECHATPAY_KEYS, WechatCredentials, CertificateManager, ClockSkew, { token: Metrics, optional: true }],
          useFactory: (
            config: AppConfig,
            signer: WechatPaySigner,
            clock: Clock,
            keys: VerificationKeySource,
            c: WechatCredentials,
            certificates: CertificateManager,
            clockSkew: ClockSkew,
            metrics: Metrics | undefined,
          ) =>
            new WechatPayHttp({
              signer,
              keys,
              clockSkew,
              requestSerial: requestSerialFor(c, certificates),
              baseUrl: config.wechat.payApiBase,
              backupBaseUrl: config.wechat.payApiBackupBase,
              timeoutMs: config.wechat.httpTimeoutMs,
              now: () => clock.nowMs(),
              observe: metrics && ((call) => metrics.wechatCall(call)),
            }),
        },
        {
          // The key source is built first; the certificate manager inside it reaches WeChat through
          // WechatPayHttp lazily (the download itself is verified by the manager, not by the HTTP layer).
          provide: CertificateManager,
          inject: [WechatCredentials, AesGcmCipher, PublicKeySource, SharedStore, Clock, AppConfig, WechatPaySigner, ClockSkew, { token: Metrics, optional: true }],
          useFactory: (
            c: WechatCredentials,
            cipher: AesGcmCipher,
            publicKey: PublicKeySource | undefined,
            store: SharedStore,
            clock: Clock,
            config: AppConfig,
            signer: WechatPaySigner,
            clockSkew: ClockSkew,
            metrics: Metrics | undefined,
          ) => {
            const built: { manager?: CertificateManager } = {};
            const downloader = new WechatPayHttp({
              signer,
              clockSkew,
              keys: { keyFor: () => undefined },
              requestSerial: () => c.wechatpayPublicKey?.id ?? built.manager?.newestSerial(),
              baseUrl: config.wechat.payApiBase,
              backupBaseUrl: config.wechat.payApiBackupBase,
              timeoutMs: config.wechat.httpTimeoutMs,
              now: () => clock.nowMs(),
              observe: metrics && ((call) => metrics.wechatCall(call)),
            });
            const manager = new CertificateManager({
              mchid: c.mchid,
              cipher,
              fallbackKeys: publicKey,
              store,
              now: () => clock.nowMs(),
              download: async () => {
                try {
                  const res = await downloader.request({ method: 'GET', path: '/v3/certificates', query: { algorithm_type: 'RSA' }, verify: false });
                  metrics?.tokenRefresh('platform_certificates', 'success');
                  return { headers: signedHeadersOf(res.headers), body: res.rawBody };
                } catch (error) {
                  metrics?.tokenRefresh('platform_certificates', 'failure');
                  throw error;
                }
              },
            });
            built.manager = manager;
            return manager;
          },
        },
        {
          provide: WECHATPAY_KEYS,
          inject: [PublicKeySource, CertificateManager],
          useFactory: (publicKey: PublicKeySource | undefined, certificates: CertificateManager) =>
            new CombinedKeySource(publicKey, certificates),
        },
        {
          provide: WechatPayClient,
          inject: [WechatPayHttp, WechatCredentials, WechatPaySigner, CertificateManager, Clock],
          useFactory: (http: WechatPayHttp, c: WechatCredentials, signer: WechatPaySigner, certs: CertificateManager, clock: Clock) =>
            new WechatPayClient(http, c, signer, certs, () => clock.nowSeconds()),
        },
        {
          // The one place the API version is chosen (WECHATPAY_API_VERSION); nothing downstream asks.
          provide: PAYMENT_GATEWAY,
          inject: [WechatPayClient, WechatCredentials, AppConfig, Clock, WechatPayHttp, { token: Metrics, optional: true }],
          // ... and the merchant kind: direct, or service provider (WECHATPAY_SUB_MCHID set), on either version.
          useFactory: (client: WechatPayClient, c: WechatCredentials, config: AppConfig, clock: Clock, http: WechatPayHttp, metrics: Metrics | undefined) =>
            config.wechat.apiVersion === 'v2'
              ? new WechatPayV2Gateway(v2Client(c, config, clock, metrics, options), {
                  miniprogramAppid: miniprogramAppid(c),
                  notifyUrl: `${config.publicBaseUrl}/notify/wechatpay/v2/transaction`,
                  refundNotifyUrl: `${config.publicBaseUrl}/notify/wechatpay/v2/refund`,
                  ...(config.wechat.partner ? { partner: { subMchid: config.wechat.partner.subMchid, shopperAppid: shopperAccount(c, config).appid } } : {}),
                })
              : config.wechat.partner
                ? new WechatPayV3PartnerGateway(http, client, c, { subMchid: config.wechat.partner.subMchid, shopperAppid: shopperAccount(c, config).appid }, miniprogramAppid(c), `${config.publicBaseUrl}/notify/wechatpay/refund`)
                : new WechatPayV3Gateway(client, miniprogramAppid(c), `${config.publicBaseUrl}/notify/wechatpay/refund`),
        },
        {
          provide: WechatPayNotificationParser,
          inject: [WECHATPAY_KEYS, AesGcmCipher, Clock],
          useFactory: (keys: VerificationKeySource, cipher: AesGcmCipher, clock: Clock) =>
            new WechatPayNotificationParser(keys, cipher, () => clock.nowSeconds()),
        },
        {
          provide: WechatMpClient,
          inject: [WechatCredentials, AppConfig, { token: Metrics, optional: true }],
          useFactory: (c: WechatCredentials, config: AppConfig, metrics: Metrics | undefined) => mpClientFor(shopperAccount(c, config), config, metrics),
        },
        CertificateLifecycle,
      ],
      exports: [
        ClockSkew,
        WechatCredentials,
        WechatPaySigner,
        AesGcmCipher,
        CertificateManager,
        WECHATPAY_KEYS,
        WechatPayHttp,
        WechatPayClient,
        PAYMENT_GATEWAY,
        WechatPayNotificationParser,
        WechatMpClient,
      ],
    };
  }
}
