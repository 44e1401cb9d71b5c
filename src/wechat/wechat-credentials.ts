import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AppConfig } from '../config/app-config';

/**
 * Everything the WeChat clients need to act as our merchant and official account. In live mode it
 * comes from the environment and the PEM files it names (loadLiveCredentials); in sandbox mode from
 * the sandbox keystore generated under DATA_DIR/sandbox. Injectable as `WechatCredentials`.
 */
export abstract class WechatCredentials {
  /** Official-account appid (also the `appid` of JSAPI prepay and the invoke parameters). */
  appid: string;
  appsecret: string;
  mchid: string;
  /** Merchant API private key, PEM (PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1 `BEGIN RSA PRIVATE KEY`). */
  merchantPrivateKeyPem: string;
  /** Serial number of the merchant API certificate, upper-case hex. */
  merchantCertSerial: string;
  /** The 32-character APIv3 key (AES-256-GCM key, used as its UTF-8 bytes); '' for an APIv2-only merchant. */
  apiv3Key: string;
  /** WeChat Pay public key (public-key verification mode); absent = platform-certificate mode only. */
  wechatpayPublicKey?: { id: string; pem: string };
  /**
   * The mini-program (WECHAT_MINIPROGRAM_APPID/APPSECRET; in sandbox mode the keystore's, unless those
   * are set). Absent = no mini-program login or pay (400 CHANNEL_UNAVAILABLE).
   */
  miniprogram?: { appid: string; appsecret: string };
  /** The 32-character APIv2 key (WECHATPAY_API_V2_KEY; sandbox: the keystore's). */
  apiV2Key?: string;
  /** apiclient_cert.pem (WECHATPAY_CERT_PATH): presented with the private key on APIv2 /secapi calls. */
  merchantCertPem?: string;
  /**
   * Sandbox mode only: the sandbox's CA (it signs the certificate of its mutual-TLS /secapi endpoint),
   * trusted beside Node's default CA store for the /secapi calls. Never set in live mode, where WeChat's
   * server is checked against Node's default store (NODE_EXTRA_CA_CERTS honoured).
   */
  trustedCaPem?: string;
}

export function loadLiveCredentials(config: AppConfig): WechatCredentials {
  const w = config.wechat;
  const v2 = w.apiVersion === 'v2';
  // APIv2 needs the API key and apiclient_cert.pem (+ its private key) instead of the APIv3 key and serial.
  const complete = v2 ? w.apiV2Key && w.certPath : w.certSerial && w.apiv3Key;
  if (!w.appid || !w.appsecret || !w.mchid || !w.privateKeyPath || !complete) {
    throw new Error('live WeChat credentials are incomplete (loadConfig should have refused to start)');
  }
  const certPem = w.certPath ? readFileSync(w.certPath, 'utf8') : undefined;
  // The serial of apiclient_cert.pem when WECHATPAY_CERT_SERIAL is not given (APIv2 mode).
  const serial = w.certSerial ?? (certPem ? new X509Certificate(certPem).serialNumber : '');
  return {
    appid: w.appid,
    appsecret: w.appsecret,
    mchid: w.mchid,
    merchantPrivateKeyPem: readFileSync(w.privateKeyPath, 'utf8'),
    merchantCertSerial: serial.toUpperCase(),
    apiv3Key: w.apiv3Key ?? '',
    wechatpayPublicKey:
      w.publicKeyPath && w.publicKeyId
        ? { id: w.publicKeyId, pem: readFileSync(w.publicKeyPath, 'utf8') }
        : undefined,
    miniprogram: w.miniprogram ? { ...w.miniprogram } : undefined,
    apiV2Key: w.apiV2Key,
    merchantCertPem: certPem,
  };
}
