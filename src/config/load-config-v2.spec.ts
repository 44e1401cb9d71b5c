import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomSerial, rsaKeyPair, selfSignedCertificate } from '../../test/helpers/keys';
import { loadLiveCredentials } from '../wechat/wechat-credentials';
import { problemsOf } from '../../test/helpers/config-problems';
import { loadConfig } from './load-config';

/* WECHATPAY_API_VERSION and the APIv2 variables (issue 14). */

function files() {
  const dir = mkdtempSync(join(tmpdir(), 'whp-cfg-v2-'));
  const key = join(dir, 'apiclient_key.pem');
  const cert = join(dir, 'apiclient_cert.pem');
  const notCert = join(dir, 'apiclient_key_again.pem');
  writeFileSync(key, '-----BEGIN PRIVATE KEY-----\nnot parsed\n-----END PRIVATE KEY-----\n');
  writeFileSync(cert, '-----BEGIN CERTIFICATE-----\nnot parsed\n-----END CERTIFICATE-----\n');
  writeFileSync(notCert, '-----BEGIN PRIVATE KEY-----\nnot parsed\n-----END PRIVATE KEY-----\n');
  return { key, cert, notCert };
}

function liveV3(): Record<string, string> {
  return {
    WECHAT_MODE: 'live',
    NODE_ENV: 'production',
    WECHAT_APPID: 'wx1234567890abcdef',
    WECHAT_APPSECRET: 'a'.repeat(32),
    WECHATPAY_MCHID: '1900007291',
    WECHATPAY_PRIVATE_KEY_PATH: files().key,
    WECHATPAY_CERT_SERIAL: '408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB',
    WECHATPAY_APIV3_KEY: 'k'.repeat(32),
    PUBLIC_BASE_URL: 'https://shop.example.com',
    SESSION_SECRET: 's'.repeat(40),
    ADMIN_TOKENS: 'admin-token-0123456789',
  };
}

/** A live v2 configuration without the certificate and its key (the test adds them). */
function liveV2Base(): Record<string, string> {
  const env: Record<string, string> = { ...liveV3(), WECHATPAY_API_VERSION: 'v2', WECHATPAY_API_V2_KEY: 'v'.repeat(32) };
  delete env.WECHATPAY_APIV3_KEY;
  delete env.WECHATPAY_CERT_SERIAL;
  delete env.WECHATPAY_PRIVATE_KEY_PATH;
  return env;
}

describe('loadConfig: WECHATPAY_API_VERSION and the APIv2 variables', () => {
  it('defaults to v3 with HMAC-SHA256 as the v2 sign type, and reads the v2 key and certificate path when given', () => {
    const config = loadConfig({});
    expect(config.wechat.apiVersion).toBe('v3');
    expect(config.wechat.v2SignType).toBe('HMAC-SHA256');
    const { cert } = files();
    const withV2 = loadConfig({ WECHATPAY_API_V2_KEY: 'v'.repeat(32), WECHATPAY_V2_SIGN_TYPE: 'MD5', WECHATPAY_CERT_PATH: cert });
    expect(withV2.wechat).toMatchObject({ apiV2Key: 'v'.repeat(32), v2SignType: 'MD5', certPath: cert });
  });

  it('refuses a malformed version, sign type or v2 key, naming each variable', () => {
    const message = problemsOf({ WECHATPAY_API_VERSION: 'v4', WECHATPAY_V2_SIGN_TYPE: 'SHA1', WECHATPAY_API_V2_KEY: 'short' });
    expect(message).toContain('WECHATPAY_API_VERSION: must be v3 (the default) or v2');
    expect(message).toContain('WECHATPAY_V2_SIGN_TYPE: must be HMAC-SHA256 (the default) or MD5');
    expect(message).toContain('WECHATPAY_API_V2_KEY: must be exactly 32 characters');
  });

  it('live v2 requires the v2 key, the certificate and its key, but not the APIv3 key or serial', () => {
    const env = liveV3();
    delete env.WECHATPAY_APIV3_KEY;
    delete env.WECHATPAY_CERT_SERIAL;
    delete env.WECHATPAY_PRIVATE_KEY_PATH;
    const message = problemsOf({ ...env, WECHATPAY_API_VERSION: 'v2' });
    expect(message).toContain('WECHATPAY_API_V2_KEY: is required when WECHAT_MODE=live');
    expect(message).toContain('WECHATPAY_CERT_PATH: is required when WECHAT_MODE=live');
    expect(message).toContain('WECHATPAY_PRIVATE_KEY_PATH: is required when WECHAT_MODE=live');
    expect(message).not.toContain('WECHATPAY_APIV3_KEY');
    expect(message).not.toContain('WECHATPAY_CERT_SERIAL');
  });

  it('refuses a WECHATPAY_CERT_PATH that is missing or not a certificate (the private key given twice)', () => {
    const { notCert } = files();
    expect(problemsOf({ ...liveV3(), WECHATPAY_CERT_PATH: '/nonexistent/apiclient_cert.pem' })).toContain('WECHATPAY_CERT_PATH: points to /nonexistent/apiclient_cert.pem, which does not exist');
    expect(problemsOf({ ...liveV3(), WECHATPAY_CERT_PATH: notCert })).toMatch(/WECHATPAY_CERT_PATH: points to .*, which is not a PEM certificate/);
  });

  it('a complete live v2 configuration starts without the APIv3 key or serial (refunds, bills and notifications are on the port)', async () => {
    const { key } = files();
    const serial = randomSerial();
    const cert = join(mkdtempSync(join(tmpdir(), 'whp-cfg-v2-')), 'apiclient_cert.pem');
    writeFileSync(cert, await selfSignedCertificate({ keys: rsaKeyPair(), serial, notBefore: new Date(Date.now() - 86_400_000), notAfter: new Date(Date.now() + 86_400_000) }));
    const env: Record<string, string> = { ...liveV3(), WECHATPAY_API_VERSION: 'v2', WECHATPAY_API_V2_KEY: 'v'.repeat(32), WECHATPAY_CERT_PATH: cert, WECHATPAY_PRIVATE_KEY_PATH: key };
    delete env.WECHATPAY_APIV3_KEY;
    delete env.WECHATPAY_CERT_SERIAL;
    const config = loadConfig(env);
    expect(config.wechat).toMatchObject({ apiVersion: 'v2', apiV2Key: 'v'.repeat(32), certPath: cert });
    // The merchant serial comes from apiclient_cert.pem; no APIv3 key is needed.
    const credentials = loadLiveCredentials(config);
    expect(credentials.merchantCertSerial).toBe(new X509Certificate(readFileSync(cert, 'utf8')).serialNumber.toUpperCase());
    expect(credentials.merchantCertSerial.replace(/^0+/, '')).toBe(serial.replace(/^0+/, ''));
    expect(credentials.apiv3Key).toBe('');
    expect(credentials.merchantCertPem).toContain('BEGIN CERTIFICATE');
  });

  it('sandbox mode accepts v2 (payments through the APIv2 gateway; the sandbox serves both APIs over one state)', () => {
    expect(loadConfig({ WECHATPAY_API_VERSION: 'v2', WECHATPAY_V2_SIGN_TYPE: 'MD5' }).wechat).toMatchObject({ apiVersion: 'v2', v2SignType: 'MD5' });
  });

  it('accepts v2 in service-provider mode (WECHATPAY_SUB_MCHID, WECHAT_SUB_APPID), in the sandbox and live', () => {
    expect(loadConfig({ WECHATPAY_API_VERSION: 'v2', WECHATPAY_SUB_MCHID: '1900000109' }).wechat).toMatchObject({ apiVersion: 'v2', partner: { subMchid: '1900000109' } });
    expect(loadConfig({ WECHATPAY_API_VERSION: 'v2', SANDBOX_MERCHANT_TYPE: 'partner' }).wechat).toMatchObject({ apiVersion: 'v2', partner: { subMchid: '1900000201' } });
    const { key, cert } = files();
    const live = loadConfig({
      ...liveV2Base(),
      WECHATPAY_CERT_PATH: cert,
      WECHATPAY_PRIVATE_KEY_PATH: key,
      WECHATPAY_SUB_MCHID: '1900000109',
      WECHAT_SUB_APPID: 'wx00112233445566bb',
      WECHAT_SUB_APPSECRET: 'c'.repeat(32),
    });
    expect(live.wechat).toMatchObject({ apiVersion: 'v2', partner: { subMchid: '1900000109', subApp: { appid: 'wx00112233445566bb' } } });
  });

  it('names each missing variable of a live v2 service provider, as the provider\'s', () => {
    const message = problemsOf({ WECHAT_MODE: 'live', NODE_ENV: 'production', WECHATPAY_API_VERSION: 'v2', WECHATPAY_SUB_MCHID: '1900000109' });
    for (const variable of ['WECHAT_APPID', 'WECHAT_APPSECRET', 'WECHATPAY_MCHID', 'WECHATPAY_API_V2_KEY', 'WECHATPAY_CERT_PATH', 'WECHATPAY_PRIVATE_KEY_PATH', 'PUBLIC_BASE_URL', 'SESSION_SECRET', 'ADMIN_TOKENS']) {
      expect(message).toContain(`${variable}: is required when WECHAT_MODE=live`);
    }
    expect(message).toContain("WECHATPAY_API_V2_KEY: is required when WECHAT_MODE=live (the service provider's 32-character APIv2 key");
    expect(message).toContain("WECHATPAY_MCHID: is required when WECHAT_MODE=live (the service provider's merchant id");
    expect(message).not.toContain('WECHATPAY_APIV3_KEY');
    expect(message).not.toContain('WECHATPAY_CERT_SERIAL');
    expect(problemsOf({ WECHATPAY_API_VERSION: 'v2', WECHATPAY_SUB_MCHID: '19000001x9' })).toMatch(/WECHATPAY_SUB_MCHID: must be the numeric mchid/);
  });

  it('v3 stays as it was: a live v3 configuration without any v2 variable starts', () => {
    expect(loadConfig(liveV3()).wechat.apiVersion).toBe('v3');
  });
});
