import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { problemsOf } from '../../test/helpers/config-problems';
import { loadConfig } from './load-config';
import { parseDuration } from './duration';

function liveEnv(): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'whp-cfg-'));
  const key = join(dir, 'apiclient_key.pem');
  writeFileSync(key, 'not parsed by config validation');
  return {
    WECHAT_MODE: 'live',
    NODE_ENV: 'production',
    WECHAT_APPID: 'wx1234567890abcdef',
    WECHAT_APPSECRET: 'a'.repeat(32),
    WECHATPAY_MCHID: '1900007291',
    WECHATPAY_PRIVATE_KEY_PATH: key,
    WECHATPAY_CERT_SERIAL: '408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB',
    WECHATPAY_APIV3_KEY: 'k'.repeat(32),
    PUBLIC_BASE_URL: 'https://shop.example.com',
    SESSION_SECRET: 's'.repeat(40),
    ADMIN_TOKENS: 'admin-token-0123456789',
  };
}

describe('loadConfig', () => {
  it('CATALOG_CACHE_TTL: 1s by default, 0 turns the catalog copy off, at most 60s', () => {
    expect(loadConfig({}).orders.catalogCacheTtlMs).toBe(1000);
    expect(loadConfig({ CATALOG_CACHE_TTL: '0' }).orders.catalogCacheTtlMs).toBe(0);
    expect(loadConfig({ CATALOG_CACHE_TTL: '250ms' }).orders.catalogCacheTtlMs).toBe(250);
    expect(problemsOf({ CATALOG_CACHE_TTL: '2m' })).toMatch(/CATALOG_CACHE_TTL.*from 0ms to 60s/);
    expect(problemsOf({ CATALOG_CACHE_TTL: 'soon' })).toMatch(/CATALOG_CACHE_TTL/);
  });

  it('starts with no variables at all: sandbox mode, SQLite under ./data, port 3000', () => {
    const config = loadConfig({});
    expect(config.wechatMode).toBe('sandbox');
    expect(config.port).toBe(3000);
    expect(config.publicBaseUrl).toBe('http://localhost:3000');
    expect(config.database).toEqual({ type: 'sqlite', path: expect.stringMatching(/data[/\\]wechat-h5-pay\.sqlite$/) });
    expect(config.wechat.payApiBase).toBe('http://localhost:3000/sandbox');
    expect(config.wechat.mpApiBase).toBe('http://localhost:3000/sandbox');
    expect(config.wechat.openBase).toBe('http://localhost:3000/sandbox');
    expect(config.orders.closeAfterMs).toBe(5 * 60_000);
    expect(config.redisUrl).toBeUndefined();
  });

  it('derives PUBLIC_BASE_URL from PORT and strips a trailing slash when given', () => {
    expect(loadConfig({ PORT: '8080' }).publicBaseUrl).toBe('http://localhost:8080');
    expect(loadConfig({ PUBLIC_BASE_URL: 'https://pay.example.com/' }).publicBaseUrl).toBe('https://pay.example.com');
  });

  it('selects MySQL from DATABASE_URL', () => {
    const config = loadConfig({ DATABASE_URL: 'mysql://shop:p%40ss@db.internal:3307/shop' });
    expect(config.database).toMatchObject({
      type: 'mysql',
      host: 'db.internal',
      port: 3307,
      username: 'shop',
      password: 'p@ss',
      database: 'shop',
    });
  });

  it('rejects a bad DATABASE_URL with a message naming the variable', () => {
    expect(problemsOf({ DATABASE_URL: 'postgres://u:p@h/db' })).toMatch(/DATABASE_URL: must look like mysql:\/\/user:pass@host:port\/database/);
    expect(problemsOf({ DATABASE_URL: 'mysql://host-without-db' })).toMatch(/DATABASE_URL/);
  });

  it('rejects a short WECHATPAY_APIV3_KEY without echoing it', () => {
    const message = problemsOf({ WECHATPAY_APIV3_KEY: 'short-secret-key' });
    expect(message).toMatch(/WECHATPAY_APIV3_KEY: must be exactly 32 characters/);
    expect(message).not.toContain('short-secret-key');
  });

  it('refuses live mode without credentials and names every missing one', () => {
    const message = problemsOf({ WECHAT_MODE: 'live' });
    for (const variable of [
      'WECHAT_APPID',
      'WECHAT_APPSECRET',
      'WECHATPAY_MCHID',
      'WECHATPAY_PRIVATE_KEY_PATH',
      'WECHATPAY_CERT_SERIAL',
      'WECHATPAY_APIV3_KEY',
      'PUBLIC_BASE_URL',
      'SESSION_SECRET',
      'ADMIN_TOKENS',
    ]) {
      expect(message).toContain(`${variable}: is required when WECHAT_MODE=live`);
    }
  });

  it('accepts complete live credentials and points the clients at WeChat', () => {
    const config = loadConfig(liveEnv());
    expect(config.wechatMode).toBe('live');
    expect(config.wechat.payApiBase).toBe('https://api.mch.weixin.qq.com');
    expect(config.wechat.payApiBackupBase).toBe('https://api2.wechatpay.cn');
    expect(config.wechat.mpApiBase).toBe('https://api.weixin.qq.com');
    expect(config.wechat.openBase).toBe('https://open.weixin.qq.com');
    expect(config.admin.tokens).toEqual(['admin-token-0123456789']);
  });

  it("fails over to WeChat's backup domain only from WeChat's own primary, unless a backup is configured", () => {
    expect(loadConfig({ ...liveEnv(), WECHATPAY_API_BASE: 'https://api.wechatpay.cn' }).wechat.payApiBackupBase).toBe('https://api2.wechatpay.cn');
    expect(loadConfig({ ...liveEnv(), WECHATPAY_API_BASE: 'http://127.0.0.1:9000' }).wechat.payApiBackupBase).toBeUndefined();
    expect(loadConfig({}).wechat.payApiBackupBase).toBeUndefined(); // sandbox mode
    // sandbox traffic never goes to WeChat's hosts, even with WeChat's backup configured
    expect(loadConfig({ WECHATPAY_API_BACKUP_BASE: 'https://api2.wechatpay.cn' }).wechat.payApiBackupBase).toBeUndefined();
    expect(
      loadConfig({ ...liveEnv(), WECHATPAY_API_BASE: 'http://127.0.0.1:9000', WECHATPAY_API_BACKUP_BASE: 'http://127.0.0.1:9001/' }).wechat.payApiBackupBase,
    ).toBe('http://127.0.0.1:9001');
  });

  it('refuses a private key path that cannot be read', () => {
    const message = problemsOf({ ...liveEnv(), WECHATPAY_PRIVATE_KEY_PATH: '/nonexistent/apiclient_key.pem' });
    expect(message).toMatch(/WECHATPAY_PRIVATE_KEY_PATH: points to \/nonexistent\/apiclient_key.pem, which does not exist/);
  });

  it('refuses the sandbox in production', () => {
    expect(problemsOf({ NODE_ENV: 'production' })).toMatch(/WECHAT_MODE: is sandbox .* NODE_ENV=production/);
  });

  it('wants the public key path and id together', () => {
    expect(problemsOf({ WECHATPAY_PUBLIC_KEY_ID: 'PUB_KEY_ID_0114232134912410000000000000' })).toMatch(
      /WECHATPAY_PUBLIC_KEY_PATH: is required together/,
    );
  });

  it('wants the mini-program appid and secret together, naming the missing one', () => {
    expect(problemsOf({ ...liveEnv(), WECHAT_MINIPROGRAM_APPID: 'wx00112233445566aa' })).toMatch(
      /WECHAT_MINIPROGRAM_APPSECRET: is required together with the other one of WECHAT_MINIPROGRAM_APPID \/ WECHAT_MINIPROGRAM_APPSECRET/,
    );
    expect(problemsOf({ WECHAT_MINIPROGRAM_APPSECRET: 'b'.repeat(32) })).toMatch(/WECHAT_MINIPROGRAM_APPID: is required together/);
    expect(problemsOf({ WECHAT_MINIPROGRAM_APPID: 'mini', WECHAT_MINIPROGRAM_APPSECRET: 'b'.repeat(32) })).toMatch(
      /WECHAT_MINIPROGRAM_APPID: must be the mini-program AppID/,
    );
    const both = loadConfig({ ...liveEnv(), WECHAT_MINIPROGRAM_APPID: 'wx00112233445566aa', WECHAT_MINIPROGRAM_APPSECRET: 'b'.repeat(32) });
    expect(both.wechat.miniprogram).toEqual({ appid: 'wx00112233445566aa', appsecret: 'b'.repeat(32) });
    expect(loadConfig(liveEnv()).wechat.miniprogram).toBeUndefined();
  });

  it('turns service-provider mode on with WECHATPAY_SUB_MCHID; the sub-merchant official account wants appid and secret together', () => {
    expect(loadConfig(liveEnv()).wechat.partner).toBeUndefined();
    expect(loadConfig({ ...liveEnv(), WECHATPAY_SUB_MCHID: '1900000109' }).wechat.partner).toEqual({ subMchid: '1900000109' });
    const withApp = loadConfig({ ...liveEnv(), WECHATPAY_SUB_MCHID: '1900000109', WECHAT_SUB_APPID: 'wx00112233445566bb', WECHAT_SUB_APPSECRET: 'c'.repeat(32) });
    expect(withApp.wechat.partner).toEqual({ subMchid: '1900000109', subApp: { appid: 'wx00112233445566bb', appsecret: 'c'.repeat(32) } });
    expect(problemsOf({ ...liveEnv(), WECHATPAY_SUB_MCHID: 'sub' })).toMatch(/WECHATPAY_SUB_MCHID: must be the numeric mchid of the default sub-merchant/);
    expect(problemsOf({ ...liveEnv(), WECHATPAY_SUB_MCHID: '1900000109', WECHAT_SUB_APPID: 'wx00112233445566bb' })).toMatch(
      /WECHAT_SUB_APPSECRET: is required together with the other one of WECHAT_SUB_APPID \/ WECHAT_SUB_APPSECRET/,
    );
    expect(problemsOf({ ...liveEnv(), WECHAT_SUB_APPID: 'wx00112233445566bb', WECHAT_SUB_APPSECRET: 'c'.repeat(32) })).toMatch(
      /WECHATPAY_SUB_MCHID: is required when WECHAT_SUB_APPID is set/,
    );
    expect(loadConfig({ WECHAT_MODE: 'sandbox', WECHATPAY_API_VERSION: 'v2', WECHATPAY_SUB_MCHID: '1900000109' }).wechat.partner).toEqual({ subMchid: '1900000109' });
    expect(loadConfig({ WECHAT_MODE: 'sandbox', SANDBOX_MERCHANT_TYPE: 'partner' }).wechat.partner).toEqual({ subMchid: '1900000201' });
    expect(loadConfig({ WECHAT_MODE: 'sandbox', SANDBOX_MERCHANT_TYPE: 'partner', WECHATPAY_SUB_MCHID: '1900000202' }).wechat.partner).toEqual({ subMchid: '1900000202' });
    expect(loadConfig({ WECHAT_MODE: 'sandbox', SANDBOX_MERCHANT_TYPE: 'direct' }).wechat.partner).toBeUndefined();
    expect(problemsOf({ SANDBOX_MERCHANT_TYPE: 'provider' })).toMatch(/SANDBOX_MERCHANT_TYPE: must be direct \(the default\) or partner/);
    expect(loadConfig({ WECHAT_MODE: 'sandbox' }).sandbox.subMerchants).toBe(2);
    expect(loadConfig({ WECHAT_MODE: 'sandbox', SANDBOX_SUB_MERCHANTS: '5' }).sandbox.subMerchants).toBe(5);
    expect(problemsOf({ SANDBOX_SUB_MERCHANTS: '51' })).toMatch(/SANDBOX_SUB_MERCHANTS/);
  });

  it('collects every problem in one message', () => {
    const message = problemsOf({ PORT: 'eighty', WECHAT_MODE: 'test', ORDER_CLOSE_AFTER: 'soon', REDIS_URL: 'localhost' });
    expect(message.split('\n').filter((line) => line.startsWith('  - '))).toHaveLength(4);
    expect(message).toMatch(/PORT: must be an integer from 0 to 65535/);
    expect(message).toMatch(/WECHAT_MODE: must be sandbox or live/);
    expect(message).toMatch(/ORDER_CLOSE_AFTER: must be a duration/);
    expect(message).toMatch(/REDIS_URL: must look like redis:\/\//);
  });

  it('treats empty strings as unset', () => {
    expect(loadConfig({ DATABASE_URL: '', REDIS_URL: ' ' }).database.type).toBe('sqlite');
  });
});

describe('TRUST_PROXY and https in live mode', () => {
  it('live mode refuses an http PUBLIC_BASE_URL (naming the variable) unless ALLOW_INSECURE_PUBLIC_URL=true', () => {
    expect(() => loadConfig({ ...liveEnv(), PUBLIC_BASE_URL: 'http://shop.example.com' })).toThrow(/PUBLIC_BASE_URL.*https/);
    expect(loadConfig({ ...liveEnv(), PUBLIC_BASE_URL: 'http://127.0.0.1:3000', ALLOW_INSECURE_PUBLIC_URL: 'true' }).publicBaseUrl).toBe('http://127.0.0.1:3000');
  });

  it('trusts no proxy by default, so a spoofed X-Forwarded-For from any client is not believed', () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: 'none' }).trustProxy).toBe(false);
  });

  it("accepts Express's forms: a hop count, addresses, CIDRs and loopback; rejects anything else naming TRUST_PROXY", () => {
    expect(loadConfig({ TRUST_PROXY: '1' }).trustProxy).toBe(1);
    expect(loadConfig({ TRUST_PROXY: 'loopback, 10.0.0.0/8,::1' }).trustProxy).toEqual(['loopback', '10.0.0.0/8', '::1']);
    expect(() => loadConfig({ TRUST_PROXY: '10.0.0.0/99' })).toThrow(/TRUST_PROXY/);
    expect(() => loadConfig({ TRUST_PROXY: 'everyone' })).toThrow(/TRUST_PROXY/);
  });
});

describe('parseDuration', () => {
  it.each([
    ['5m', 300_000],
    ['90s', 90_000],
    ['1500ms', 1500],
    ['2h', 7_200_000],
    ['30', 30_000],
  ])('%s -> %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it('rejects text that is not a duration', () => expect(parseDuration('five minutes')).toBeUndefined());
});

describe('.env.example', () => {
  const { readFileSync } = require('node:fs') as typeof import('node:fs');
  const { parseEnv } = require('node:util') as { parseEnv: (text: string) => Record<string, string> };
  const text = readFileSync(join(__dirname, '..', '..', '.env.example'), 'utf8');

  it('copied to .env as it is, still runs the whole shop against the sandbox', () => {
    const config = loadConfig({ ...parseEnv(text), DATA_DIR: mkdtempSync(join(tmpdir(), 'whp-envex-')) });
    expect(config.wechatMode).toBe('sandbox');
    expect(config.wechat.payApiBase).toBe('http://localhost:3000/sandbox');
    expect(config.wechat.mpApiBase).toBe('http://localhost:3000/sandbox');
    expect(config.wechat.openBase).toBe('http://localhost:3000/sandbox');
    expect(config.database.type).toBe('sqlite');
  });

  it('documents every variable the configuration reads', () => {
    const sources = ['core', 'wechat', 'sandbox', 'auth', 'payment', 'billing', 'metrics'].map((name) =>
      readFileSync(join(__dirname, 'env', `${name}.env.ts`), 'utf8'),
    );
    const declared = new Set(sources.flatMap((src) => [...src.matchAll(/^\s+([A-Z][A-Z0-9_]+)\?: string/gm)].map((m) => m[1])));
    expect(declared.size).toBeGreaterThan(40);
    const documented = new Set([...text.matchAll(/^#?\s?([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]));
    expect([...declared].filter((name) => !documented.has(name))).toEqual([]);
  });
});
