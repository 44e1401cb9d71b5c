import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { rsaKeyPair } from '../helpers/keys';
import { TestApp, startTestApp, tempDir } from '../helpers/test-app';

/**
 * Live mode (no sandbox): JSSDK_ALLOWED_DOMAINS is the only source of allowed page hosts. Nothing
 * here reaches WeChat: the API bases point at a closed port, and public-key mode downloads no
 * certificates at start-up.
 */
const keyDirs: string[] = [];
afterAll(() => keyDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function liveEnv(extra: Record<string, string> = {}): Record<string, string> {
  const dir = tempDir('whp-live-');
  keyDirs.push(dir);
  const merchant = rsaKeyPair();
  const wechatpay = rsaKeyPair();
  writeFileSync(join(dir, 'apiclient_key.pem'), merchant.privateKeyPem);
  writeFileSync(join(dir, 'pub_key.pem'), wechatpay.publicKeyPem);
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

/** pino level 40 is warn. */
const warning = (t: TestApp) => t.logs.filter((l) => typeof l.msg === 'string' && l.msg.includes('JSSDK_ALLOWED_DOMAINS is empty'));

describe('JSSDK_ALLOWED_DOMAINS in live mode', () => {
  it('warns once at start-up when it is empty, since every /jssdk/config would be 400', async () => {
    const t = await startTestApp({ captureLogs: true, env: liveEnv() });
    try {
      expect(warning(t)).toHaveLength(1);
      expect(warning(t)[0]).toMatchObject({ level: 40, msg: expect.stringContaining('every GET /jssdk/config will answer 400') });
      // the warning is true: even the shop's own public host is refused (no sandbox allowance in live mode)
      const res = await request(t.baseUrl).get('/jssdk/config').query({ url: 'https://shop.example.com/shop/' }).expect(400);
      expect(res.body.code).toBe('URL_NOT_ALLOWED');
    } finally {
      await t.close();
    }
  });

  it('stays quiet when domains are configured', async () => {
    const t = await startTestApp({ captureLogs: true, env: liveEnv({ JSSDK_ALLOWED_DOMAINS: 'shop.example.com' }) });
    try {
      await request(t.baseUrl).get('/jssdk/config').query({ url: 'https://elsewhere.example.com/' }).expect(400);
      expect(t.logs.length).toBeGreaterThan(0); // the capture works: the request above was logged
      expect(warning(t)).toHaveLength(0);
    } finally {
      await t.close();
    }
  });
});
