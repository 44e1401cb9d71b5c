import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rsaKeyPair } from './keys';
import { tempDir } from './test-app';

const keyDirs: string[] = [];

/**
 * A live-mode configuration that reaches nothing: the API bases point at a closed port, and
 * public-key mode downloads no certificates at start-up. The merchant key and WeChat Pay public
 * key are fresh, written to a temporary directory that removeLiveEnvKeys() deletes (afterAll).
 */
export function liveEnv(extra: Record<string, string> = {}): Record<string, string> {
  const dir = tempDir('whp-live-');
  keyDirs.push(dir);
  writeFileSync(join(dir, 'apiclient_key.pem'), rsaKeyPair().privateKeyPem);
  writeFileSync(join(dir, 'pub_key.pem'), rsaKeyPair().publicKeyPem);
  return {
    WECHAT_MODE: 'live',
    WECHAT_APPID: 'wx1234567890abcdef',
    WECHAT_APPSECRET: 'a'.repeat(32),
    WECHATPAY_MCHID: '1900007291',
    WECHATPAY_PRIVATE_KEY_PATH: join(dir, 'apiclient_key.pem'),
    WECHATPAY_CERT_SERIAL: '408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB',
    WECHATPAY_APIV3_KEY: 'k'.repeat(32),
    WECHATPAY_PUBLIC_KEY_PATH: join(dir, 'pub_key.pem'),
    WECHATPAY_PUBLIC_KEY_ID: 'PUB_KEY_ID_0112345678',
    WECHAT_API_BASE: 'http://127.0.0.1:9',
    WECHATPAY_API_BASE: 'http://127.0.0.1:9',
    WECHATPAY_API_BACKUP_BASE: 'http://127.0.0.1:9',
    PUBLIC_BASE_URL: 'https://shop.example.com',
    SESSION_SECRET: 's'.repeat(40),
    ADMIN_TOKENS: 'a-live-admin-token-of-some-length',
    ...extra,
  };
}

/** Deletes the key directories liveEnv() wrote. */
export function removeLiveEnvKeys(): void {
  for (const dir of keyDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}
