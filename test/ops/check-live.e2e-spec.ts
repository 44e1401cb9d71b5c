/**
 * Issue 12 item 18: `npm run check:live` verifies the live credentials against WeChat without taking
 * money and says what is wrong in plain words. Driven against the standalone sandbox (`npm run sandbox`)
 * configured exactly as it prints; each wrong credential is named with what to do.
 */
import { Logger } from '@nestjs/common';
import { ChildProcess, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load-config';
import { CheckResult, runLiveChecks } from '../../src/ops/check-live';
import { SandboxKeystore, sandboxApiV2Key } from '../../src/sandbox/keystore';
import { freePort, tempDir } from '../helpers/test-app';

const ROOT = join(__dirname, '..', '..');

/** `npm run sandbox` on a free port; resolves with its /sandbox base once it has printed its configuration. */
async function startStandalone(dataDir: string, signMode: string): Promise<{ child: ChildProcess; base: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/sandbox/standalone.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, SANDBOX_PORT: String(port), DATA_DIR: dataDir, NODE_ENV: 'test', SANDBOX_SIGN_MODE: signMode },
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const deadline = Date.now() + 90_000;
  while (!out.includes('Test controls') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  expect(out).toContain('Test controls');
  return { child, base: `http://127.0.0.1:${port}/sandbox` };
}

describe('npm run check:live against the standalone sandbox', () => {
  jest.setTimeout(180_000);
  let sandbox: ChildProcess | undefined;
  let publicKeyOnly: ChildProcess | undefined;
  let publicKeyOnlyBase = '';
  let env: Record<string, string>;
  /** The same merchant configured for APIv2 (WECHATPAY_API_VERSION=v2), as `npm run sandbox` prints it. */
  let envV2: Record<string, string>;
  let ks: SandboxKeystore;

  beforeAll(async () => {
    Logger.overrideLogger(false); // the clients' request lines
    const dataDir = tempDir();
    // A merchant midway through the certificate → public-key migration (it has both: the APIv3 key can
    // be tried on the certificates, the answer is signed with the key the request names) ...
    const migration = await startStandalone(dataDir, 'migration');
    sandbox = migration.child;
    const base = migration.base;
    // ... and the same merchant once only the public key is left (/v3/certificates: 404 RESOURCE_NOT_EXISTS).
    const pure = await startStandalone(dataDir, 'public_key');
    publicKeyOnly = pure.child;
    publicKeyOnlyBase = pure.base;
    const dir = join(dataDir, 'sandbox');
    ks = JSON.parse(readFileSync(join(dir, 'keystore.json'), 'utf8')) as SandboxKeystore;
    // What `npm run sandbox` prints, plus what live mode needs besides.
    env = {
      NODE_ENV: 'test',
      DATA_DIR: tempDir(),
      WECHAT_MODE: 'live',
      PUBLIC_BASE_URL: 'http://127.0.0.1:3000',
      ALLOW_INSECURE_PUBLIC_URL: 'true',
      SESSION_SECRET: 's'.repeat(40),
      ADMIN_TOKENS: 'check-live-admin-token-0123456789',
      WECHATPAY_API_BASE: base,
      WECHAT_API_BASE: base,
      WECHAT_OPEN_BASE: base,
      WECHAT_APPID: ks.appid,
      WECHAT_APPSECRET: ks.appsecret,
      WECHATPAY_MCHID: ks.mchid,
      WECHATPAY_PRIVATE_KEY_PATH: join(dir, 'apiclient_key.pem'),
      WECHATPAY_CERT_SERIAL: ks.merchant.certSerial,
      WECHATPAY_APIV3_KEY: ks.apiv3Key,
      WECHATPAY_PUBLIC_KEY_PATH: join(dir, 'wechatpay_public_key.pem'),
      WECHATPAY_PUBLIC_KEY_ID: ks.publicKey.id,
    };
    const { WECHATPAY_CERT_SERIAL: _serial, WECHATPAY_APIV3_KEY: _apiv3, WECHATPAY_PUBLIC_KEY_PATH: _pub, WECHATPAY_PUBLIC_KEY_ID: _pubId, ...common } = env;
    envV2 = {
      ...common,
      WECHATPAY_API_VERSION: 'v2',
      WECHATPAY_API_V2_KEY: sandboxApiV2Key(ks),
      WECHATPAY_CERT_PATH: join(dir, 'apiclient_cert.pem'),
    };
  });
  afterAll(() => {
    sandbox?.kill();
    publicKeyOnly?.kill();
  });

  const check = (changes: Record<string, string> = {}) => runLiveChecks(loadConfig({ ...env, ...changes }));
  const failures = (results: CheckResult[]) => results.filter((r) => !r.ok);

  it('a good configuration: every check OK', async () => {
    const results = await check();
    expect(failures(results)).toEqual([]);
    expect(results.map((r) => r.name)).toEqual(['merchant signature', 'APIv3 key', 'answer verification', 'official account (access_token)', 'JS-SDK (jsapi_ticket)']);
    expect(results.find((r) => r.name === 'answer verification')!.message).toContain(ks.publicKey.id);
  });

  it('a wrong merchant id is named, with where to find the right one', async () => {
    const [signature] = failures(await check({ WECHATPAY_MCHID: '1900009999' }));
    expect(signature.name).toBe('merchant signature');
    expect(signature.message).toMatch(/^WeChat Pay does not accept merchant id 1900009999 \(WECHATPAY_MCHID\) with certificate [0-9A-F]+: check the 商户号/);
  });

  it('a wrong certificate serial is named, with the openssl command that reads the right one', async () => {
    const [signature] = failures(await check({ WECHATPAY_CERT_SERIAL: '1234567890ABCDEF1234567890ABCDEF12345678' }));
    expect(signature.name).toBe('merchant signature');
    expect(signature.message).toContain('WeChat Pay does not accept certificate serial 1234567890ABCDEF1234567890ABCDEF12345678 (WECHATPAY_CERT_SERIAL)');
    expect(signature.message).toContain('openssl x509 -noout -serial -in apiclient_cert.pem');
  });

  it('a wrong AppSecret is named; the Pay checks still pass', async () => {
    const results = await check({ WECHAT_APPSECRET: 'f'.repeat(32) });
    expect(failures(results)).toEqual([
      { ok: false, name: 'official account (access_token)', message: expect.stringMatching(new RegExp(`^WECHAT_APPSECRET is not the AppSecret of ${ks.appid}: copy it from 公众号后台`)) },
    ]);
    expect(results.filter((r) => r.ok).map((r) => r.name)).toEqual(['merchant signature', 'APIv3 key', 'answer verification']);
  });

  it('a wrong APIv3 key and a wrong public key id are named', async () => {
    const [apiv3] = failures(await check({ WECHATPAY_APIV3_KEY: 'k'.repeat(32) }));
    expect(apiv3).toMatchObject({ name: 'APIv3 key', message: expect.stringMatching(/cannot be decrypted with WECHATPAY_APIV3_KEY/) });
    // (A merchant with only the public key: everything it answers is signed with that key.)
    const [keyId] = failures(await check({ WECHATPAY_API_BASE: publicKeyOnlyBase, WECHATPAY_PUBLIC_KEY_ID: 'PUB_KEY_ID_0000000000000000000000000009' }));
    expect(keyId).toMatchObject({ name: 'answer verification', message: expect.stringContaining(`WeChat Pay signs with public key ${ks.publicKey.id}, but WECHATPAY_PUBLIC_KEY_ID is PUB_KEY_ID_0000000000000000000000000009`) });
  });

  it('a merchant in public-key mode without the public key configured: told which key id to set', async () => {
    const withoutPublicKey: Record<string, string> = { ...env, WECHATPAY_API_BASE: publicKeyOnlyBase };
    delete withoutPublicKey.WECHATPAY_PUBLIC_KEY_PATH;
    delete withoutPublicKey.WECHATPAY_PUBLIC_KEY_ID;
    const results = await runLiveChecks(loadConfig(withoutPublicKey));
    expect(failures(results)).toEqual([
      { ok: false, name: 'answer verification', message: expect.stringContaining(`WeChat Pay signs with its public key ${ks.publicKey.id}: set WECHATPAY_PUBLIC_KEY_ID=${ks.publicKey.id}`) },
    ]);
    expect(failures(results)[0].message).toMatch(/^this merchant has no platform certificates: it uses WeChat Pay public-key mode/);
  });

  it("a merchant with only the public key, configured with it: WeChat's 404 RESOURCE_NOT_EXISTS on /v3/certificates is not a failure", async () => {
    const results = await check({ WECHATPAY_API_BASE: publicKeyOnlyBase });
    expect(failures(results)).toEqual([]);
    expect(results.find((r) => r.name === 'answer verification')!.message).toContain(ks.publicKey.id);
    expect(results.find((r) => r.name === 'APIv3 key')!.message).toMatch(/^public-key mode/);
  });

  const runCommand = (commandEnv: Record<string, string>) =>
    new Promise<{ status: number | null; out: string }>((resolve) => {
      const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/ops/check-live.ts'], { cwd: ROOT, env: { PATH: process.env.PATH, ...commandEnv } });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (out += c.toString()));
      child.on('exit', (status) => resolve({ status, out }));
    });

  it('the command itself: OK lines, exit 0, and never a secret in its output', async () => {
    const result = await runCommand(env);
    expect(result.out).toMatch(/^check:live: checking the live credentials against/);
    expect(result.out.trim().split('\n')).toHaveLength(7); // the heading, five checks, the verdict
    expect(result.out).toMatch(/^OK {4}merchant signature: /m);
    expect(result.out).toMatch(/^OK {4}JS-SDK \(jsapi_ticket\): /m);
    expect(result.out.trim().split('\n').pop()).toBe('check:live: all OK.');
    expect(result.status).toBe(0);
    for (const secret of [ks.appsecret, ks.apiv3Key]) expect(result.out).not.toContain(secret);
    expect(result.out).not.toMatch(/access_token=|"ticket"|PRIVATE KEY/);
  });

  describe('WECHATPAY_API_VERSION=v2: the APIv2 key and the merchant certificate instead of the APIv3 checks', () => {
    const checkV2 = (changes: Record<string, string> = {}) => runLiveChecks(loadConfig({ ...envV2, ...changes }));

    it.each(['HMAC-SHA256', 'MD5'])('a good configuration (%s): every check OK, the v2 key proved by ORDERNOTEXIST', async (signType) => {
      const results = await checkV2({ WECHATPAY_V2_SIGN_TYPE: signType });
      expect(failures(results)).toEqual([]);
      expect(results.map((r) => r.name)).toEqual(['merchant certificate', 'APIv2 key', 'official account (access_token)', 'JS-SDK (jsapi_ticket)']);
      expect(results[0].message).toContain(`serial ${ks.merchant.certSerial}`);
      expect(results[1].message).toMatch(new RegExp(`^WeChat Pay accepted merchant ${ks.mchid}'s ${signType} sign made with WECHATPAY_API_V2_KEY \\(an orderquery of the made-up out_trade_no CHECKLIVE\\d+: ORDERNOTEXIST\\)`));
    });

    it('a wrong APIv2 key (SIGNERROR) is named, with where to set it; the certificate and the official account still pass', async () => {
      const results = await checkV2({ WECHATPAY_API_V2_KEY: 'k'.repeat(32) });
      expect(failures(results)).toEqual([
        { ok: false, name: 'APIv2 key', message: expect.stringMatching(new RegExp(`^WeChat Pay refused our HMAC-SHA256 sign: WECHATPAY_API_V2_KEY is not the API key of merchant ${ks.mchid} \\(WECHATPAY_MCHID\\)\\. Copy it from 商户平台 → 账户中心 → API安全 → 设置API密钥`)) },
      ]);
      expect(failures(results)[0].message).toContain('签名错误');
      expect(results.filter((r) => r.ok).map((r) => r.name)).toEqual(['merchant certificate', 'official account (access_token)', 'JS-SDK (jsapi_ticket)']);
    });

    it('a wrong merchant id is named (and the certificate, issued to the right one, says so)', async () => {
      const results = await checkV2({ WECHATPAY_MCHID: '1900009999' });
      expect(failures(results).map((r) => [r.name, r.message])).toEqual([
        ['merchant certificate', expect.stringContaining(`WECHATPAY_CERT_PATH is the API certificate of merchant ${ks.mchid}, not of 1900009999 (WECHATPAY_MCHID)`)],
        ['APIv2 key', expect.stringMatching(/^WeChat Pay does not accept merchant id 1900009999 \(WECHATPAY_MCHID\)/)],
      ]);
    });

    it('a private key that is not the certificate\'s is named', async () => {
      const other = join(tempDir(), 'apiclient_key.pem');
      writeFileSync(other, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
      const results = await checkV2({ WECHATPAY_PRIVATE_KEY_PATH: other });
      expect(failures(results)).toEqual([
        { ok: false, name: 'merchant certificate', message: expect.stringMatching(new RegExp(`^WECHATPAY_PRIVATE_KEY_PATH is not the private key of the certificate in WECHATPAY_CERT_PATH \\(serial ${ks.merchant.certSerial}\\)`)) },
      ]);
      // The APIv2 key itself is still proved: the sign does not involve the certificate.
      expect(results.find((r) => r.name === 'APIv2 key')!.ok).toBe(true);
    });

    it('an appid not bound to the merchant is named', async () => {
      const [appid] = failures(await checkV2({ WECHAT_APPID: 'wx0000000000000000' })).filter((r) => r.name === 'APIv2 key');
      expect(appid.message).toMatch(/^WeChat Pay says WECHAT_APPID wx0000000000000000 is not bound to merchant/);
    });

    it('the command itself in v2: four OK lines, exit 0, never the APIv2 key in its output', async () => {
      const result = await runCommand(envV2);
      const lines = result.out.trim().split('\n');
      expect(lines).toHaveLength(6); // the heading, four checks, the verdict
      expect(result.out).toMatch(/^OK {4}merchant certificate: /m);
      expect(result.out).toMatch(/^OK {4}APIv2 key: /m);
      expect(result.out).not.toMatch(/APIv3 key|answer verification|merchant signature/);
      expect(lines.pop()).toBe('check:live: all OK.');
      expect(result.status).toBe(0);
      for (const secret of [ks.appsecret, sandboxApiV2Key(ks)]) expect(result.out).not.toContain(secret);
    });
  });
});
