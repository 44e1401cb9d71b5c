import { ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { loadConfig } from '../../src/config/load-config';
import { SandboxModule } from '../../src/sandbox/sandbox.module';
import { liveEnv, removeLiveEnvKeys } from '../helpers/live-env';
import { TestMerchant } from '../helpers/merchant-signer';
import { tlsPost } from '../helpers/mtls';
import { NotifyReceiver } from '../helpers/receiver';
import { SandboxControl } from '../helpers/sandbox-control';
import { freePort, startTestApp, tempDir } from '../helpers/test-app';
import { SandboxTestApp, startSandboxApp, tradeNo } from './sandbox-app';

describe('sandbox control: reset', () => {
  let t: SandboxTestApp;
  let receiver: NotifyReceiver;

  beforeAll(async () => {
    t = await startSandboxApp({ env: { SANDBOX_TIME_SCALE: '100', SANDBOX_REFUND_DELAY: '1s' } });
    receiver = new NotifyReceiver();
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.stop();
  });

  it('forgets users, orders, refunds, tokens, bills, faults, counts, notifications, switches and the clock offset', async () => {
    const notifyUrl = await receiver.start();
    const day = (n: number) => new Date(Date.now() - n * 86400_000 + 8 * 3600_000).toISOString().slice(0, 10);
    const { appid, appsecret: secret, mchid } = t.keystore;
    // Build up state of every kind.
    await t.control.createUser({ openid: 'o_reset_user' });
    const no = tradeNo('RST');
    const prepay = await t.merchant.request('POST', '/v3/pay/transactions/jsapi', t.merchant.prepayBody(no, 'o_reset_user', notifyUrl, 400));
    await t.control.pay(prepay.json.prepay_id);
    await t.control.waitForNotification({ outTradeNo: no });
    const refund = await t.merchant.request('POST', '/v3/refund/domestic/refunds', { out_trade_no: no, out_refund_no: `${no}R`, amount: { refund: 100, total: 400, currency: 'CNY' } });
    expect(refund.status).toBe(200);
    const token = (await (await fetch(`${t.baseUrl}/sandbox/cgi-bin/token?grant_type=client_credential&appid=${appid}&secret=${secret}`)).json()) as { access_token: string };
    const bill = await t.merchant.request('GET', `/v3/bill/tradebill?bill_date=${day(0)}`);
    expect(bill.status).toBe(200);
    mkdirSync(join(t.dataDir, 'bills'), { recursive: true });
    writeFileSync(join(t.dataDir, 'bills', 'b.csv.gz'), gzipSync('x'));
    await t.control.registerTradeBill(day(20), 'bills/b.csv.gz');
    await t.control.failNext('v3/pay/transactions/jsapi', '500');
    await t.control.nextRefundOutcome('CLOSED');
    await t.control.setInsufficientBalance(true);
    await t.control.dropNotifications(true);
    await t.control.shiftClock(60_000);
    expect((await t.control.clock()).offsetMs).toBe(60_000);
    // A request on the mutual-TLS port without the certificate is counted (and refused).
    expect((await tlsPost(`${t.secapiBase}/secapi/pay/refund`, '<xml></xml>', { ca: t.tls.ca.certificatePem })).status).toBe(400);
    expect(await t.control.secapiCounts()).toEqual({ served: 0, noCertificate: 1, badCertificate: 0 });

    await t.control.reset();

    expect(await fetch(`${t.baseUrl}/sandbox/control/stats`).then((r) => r.json())).toEqual({ calls: {}, pendingFaults: {}, secapi: { served: 0, noCertificate: 0, badCertificate: 0 } });
    expect((await t.control.clock()).offsetMs).toBe(0);
    expect(Math.abs(Date.parse((await t.control.clock()).now) - Date.now())).toBeLessThan(5_000);
    expect((await fetch(`${t.baseUrl}/sandbox/control/users`).then((r) => r.json() as Promise<{ users: unknown[] }>)).users).toEqual([]);
    expect((await fetch(`${t.baseUrl}/sandbox/control/transactions/${no}`)).status).toBe(404);
    expect((await fetch(`${t.baseUrl}/sandbox/control/refunds/${no}R`)).status).toBe(404);
    expect((await t.merchant.request('GET', `/v3/pay/transactions/out-trade-no/${no}?mchid=${mchid}`)).status).toBe(404);
    expect((await t.merchant.request('GET', `/v3/refund/domestic/refunds/${no}R`)).status).toBe(404);
    expect(await t.control.notifications()).toEqual([]);
    const ticket = (await (await fetch(`${t.baseUrl}/sandbox/cgi-bin/ticket/getticket?access_token=${token.access_token}&type=jsapi`)).json()) as { errcode: number };
    expect(ticket.errcode).toBe(40001);
    // Bill download URLs and registered bill files are gone.
    const url = new URL(bill.json.download_url);
    const download = await t.merchant.request('GET', url.pathname.replace('/sandbox', '') + url.search);
    expect(download.status).toBe(400);
    expect((await t.merchant.request('GET', `/v3/bill/tradebill?bill_date=${day(20)}`)).json.code).toBe('NO_STATEMENT_EXIST');

    // No fault left, no forced outcome, balance back, notifications delivered again.
    const no2 = tradeNo('RST');
    const p2 = await t.merchant.request('POST', '/v3/pay/transactions/jsapi', t.merchant.prepayBody(no2, 'o_reset_user', notifyUrl, 400));
    expect(p2.status).toBe(200);
    await t.control.pay(p2.json.prepay_id);
    const attempts = await t.control.waitForNotification({ outTradeNo: no2 });
    expect(attempts.some((a) => a.ok)).toBe(true);
    const r2 = await t.merchant.request('POST', '/v3/refund/domestic/refunds', { out_trade_no: no2, out_refund_no: `${no2}R`, amount: { refund: 100, total: 400, currency: 'CNY' } });
    expect(r2.status).toBe(200);
    await new Promise((r) => setTimeout(r, 100));
    expect((await t.control.refund(`${no2}R`)).status).toBe('SUCCESS');
  });
});

describe('sandbox keystore across restarts', () => {
  const children: ChildProcess[] = [];
  afterAll(() => children.forEach((c) => c.kill()));

  /** `npm run sandbox` in its own process (no in-process cache): the keystore comes from disk. */
  async function startStandalone(dataDir: string): Promise<{ port: number; out: () => string; stop: () => Promise<void> }> {
    const port = await freePort();
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/sandbox/standalone.ts'], {
      cwd: `${__dirname}/../..`,
      env: { PATH: process.env.PATH, SANDBOX_PORT: String(port), DATA_DIR: dataDir, NODE_ENV: 'test' },
    });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    const deadline = Date.now() + 40_000;
    while (!out.includes('Test controls') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(out).toContain('Test controls');
    return {
      port,
      out: () => out,
      stop: () =>
        new Promise<void>((resolve) => {
          child.once('exit', () => resolve());
          child.kill();
        }),
    };
  }

  it('reuses the same appid, mchid, serials, APIv3 key and keys when started again on the same DATA_DIR', async () => {
    const dataDir = tempDir();
    try {
      const first = await startStandalone(dataDir);
      const before = await new SandboxControl(`http://127.0.0.1:${first.port}`).merchant();
      const printed = (name: string, text: string) => new RegExp(`${name}=(\\S+)`).exec(text)?.[1];
      const apiv3Key = printed('WECHATPAY_APIV3_KEY', first.out());
      const secret = printed('WECHAT_APPSECRET', first.out());
      await first.stop();

      const { readFileSync } = await import('node:fs');
      const ca = readFileSync(join(dataDir, 'sandbox', 'sandbox_ca.pem'), 'utf8');
      const second = await startStandalone(dataDir);
      const base = `http://127.0.0.1:${second.port}`;
      // Everything but the mutual-TLS port (a free one each start, SANDBOX_SECAPI_PORT=0); its CA is the same.
      const after = await new SandboxControl(base).merchant();
      expect({ ...after, secapiBase: undefined }).toEqual({ ...before, secapiBase: undefined });
      expect(readFileSync(join(dataDir, 'sandbox', 'sandbox_ca.pem'), 'utf8')).toBe(ca);
      expect(printed('WECHATPAY_APIV3_KEY', second.out())).toBe(apiv3Key);
      expect(printed('WECHAT_APPSECRET', second.out())).toBe(secret);
      // The merchant key written on the first start still signs for the second one, and the
      // WeChat Pay public key written then still verifies its answers.
      const dir = join(dataDir, 'sandbox');
      const merchant = new TestMerchant(base, {
        mchid: before.mchid,
        appid: before.appid,
        merchant: { privateKeyPem: readFileSync(join(dir, 'apiclient_key.pem'), 'utf8'), certSerial: before.merchantCertSerial },
        publicKey: { publicKeyPem: readFileSync(join(dir, 'wechatpay_public_key.pem'), 'utf8'), id: before.publicKeyId },
        platform: { certificatePem: readFileSync(join(dir, 'wechatpay_platform_cert.pem'), 'utf8'), serial: before.platformCertSerial },
        apiv3Key: apiv3Key!,
      });
      const res = await merchant.request('POST', '/v3/pay/transactions/jsapi', merchant.prepayBody(tradeNo('KEY'), 'o1', 'http://127.0.0.1:9/n'));
      expect(res.status).toBe(200);
      expect(merchant.responseVerifies(res)).toBe(true);
      const token = (await (await fetch(`${base}/sandbox/cgi-bin/token?grant_type=client_credential&appid=${before.appid}&secret=${secret}`)).json()) as { access_token?: string };
      expect(token.access_token).toBeTruthy();
      await second.stop();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('sandbox in live mode', () => {
  afterAll(() => removeLiveEnvKeys());

  it('refuses to mount the sandbox module with a live configuration', () => {
    const dataDir = tempDir();
    try {
      const config = loadConfig({ NODE_ENV: 'test', DATA_DIR: dataDir, PUBLIC_BASE_URL: 'https://shop.example.com', ...liveEnv() });
      expect(config.wechatMode).toBe('live');
      expect(() => SandboxModule.forRoot(config)).toThrow('the WeChat sandbox can never be mounted in live mode');
      expect(() => SandboxModule.forRoot(config, { standalone: true })).toThrow(/live mode/);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('answers 404 on every /sandbox path of an app in live mode, and generates no sandbox keystore', async () => {
    const dataDir = tempDir();
    const t = await startTestApp({ dataDir, env: liveEnv() });
    try {
      expect(t.config.wechatMode).toBe('live');
      for (const [method, path] of [
        ['GET', '/sandbox/control/merchant'],
        ['POST', '/sandbox/control/reset'],
        ['POST', '/sandbox/control/pay'],
        ['GET', '/sandbox/cgi-bin/token?grant_type=client_credential&appid=x&secret=y'],
        ['GET', '/sandbox/connect/oauth2/authorize?appid=x'],
        ['POST', '/sandbox/v3/pay/transactions/jsapi'],
        ['GET', '/sandbox/jweixin.js'],
        ['GET', '/sandbox/cashier?prepay_id=x'],
        ['POST', '/sandbox/pay'],
      ]) {
        const res = await fetch(`${t.baseUrl}${path}`, { method, headers: { 'Content-Type': 'application/json' }, body: method === 'POST' ? '{}' : undefined });
        expect({ path, status: res.status }).toEqual({ path, status: 404 });
      }
      const { existsSync } = await import('node:fs');
      expect(existsSync(join(dataDir, 'sandbox', 'keystore.json'))).toBe(false);
    } finally {
      await t.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
