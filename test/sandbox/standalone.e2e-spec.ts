import { ChildProcess, spawn } from 'node:child_process';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { sandboxApiV2Key, sandboxKeystoreFiles } from '../../src/sandbox/keystore';
import type { SandboxKeystore } from '../../src/sandbox/keystore';
import { WechatPayV2Client } from '../../src/wechat/pay-v2/wechat-pay-v2.client';
import { today } from '../helpers/dates';
import { TestMerchant } from '../helpers/merchant-signer';
import { SandboxControl } from '../helpers/sandbox-control';
import { freePort, tempDir } from '../helpers/test-app';

describe('npm run sandbox (the sandbox alone)', () => {
  let child: ChildProcess | undefined;
  afterEach(() => child?.kill());

  it('starts on SANDBOX_PORT, prints the merchant configuration, and serves the WeChat APIs', async () => {
    const port = await freePort();
    child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/sandbox/standalone.ts'], {
      cwd: `${__dirname}/../..`,
      env: { PATH: process.env.PATH, SANDBOX_PORT: String(port), DATA_DIR: tempDir(), NODE_ENV: 'test' },
    });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    const deadline = Date.now() + 40_000;
    while (!out.includes('Test controls') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(out).toContain(`WeChat sandbox listening on http://localhost:${port}/sandbox`);
    for (const variable of ['WECHATPAY_API_BASE', 'WECHAT_APPID', 'WECHATPAY_MCHID', 'WECHATPAY_PRIVATE_KEY_PATH', 'WECHATPAY_CERT_SERIAL', 'WECHATPAY_APIV3_KEY', 'WECHATPAY_PUBLIC_KEY_ID']) {
      expect(out).toContain(variable);
    }
    expect(out).not.toContain('PRIVATE KEY-----');
    const merchant = await fetch(`http://127.0.0.1:${port}/sandbox/control/merchant`).then((r) => r.json() as Promise<{ appid: string }>);
    expect(merchant.appid).toMatch(/^wx[a-z0-9]{16}$/);
    const token = await fetch(`http://127.0.0.1:${port}/sandbox/cgi-bin/token?grant_type=client_credential&appid=${merchant.appid}&secret=bad`).then((r) => r.json() as Promise<{ errcode: number }>);
    expect(token.errcode).toBe(40125);
  });
});

describe('npm run sandbox: WeChat\'s paths at the root, for an SDK that only changes its host', () => {
  let child: ChildProcess | undefined;
  let out = '';
  let base = '';
  let dataDir = '';
  let ks: SandboxKeystore;
  let merchant: TestMerchant;

  beforeAll(async () => {
    const port = await freePort();
    dataDir = tempDir();
    child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/sandbox/standalone.ts'], {
      cwd: `${__dirname}/../..`,
      env: { PATH: process.env.PATH, SANDBOX_PORT: String(port), DATA_DIR: dataDir, NODE_ENV: 'test' },
    });
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    const deadline = Date.now() + 40_000;
    while (!out.includes('Test controls') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(out).toContain('Test controls');
    base = `http://127.0.0.1:${port}`;
    ks = JSON.parse(readFileSync(join(dataDir, 'sandbox', 'keystore.json'), 'utf8')) as SandboxKeystore;
    merchant = new TestMerchant(base, ks);
  });
  afterAll(() => {
    child?.kill();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- WeChat answers of every shape
  type Json = any;

  /** A request sent to `path` at the root, signed over `signedPath` (by default the path it is sent to). */
  async function rootRequest(method: 'GET' | 'POST', path: string, body?: unknown, signedPath = path) {
    const text = body === undefined ? '' : JSON.stringify(body);
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        Authorization: merchant.authorization(method, signedPath, text),
        Accept: 'application/json',
        ...(text ? { 'Content-Type': 'application/json' } : {}),
      },
      body: text || undefined,
    });
    const raw = Buffer.from(await res.arrayBuffer());
    const str = raw.toString('utf8');
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- WeChat answers of every shape
    let json: any;
    try {
      json = str ? JSON.parse(str) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, raw, json };
  }

  it('serves Pay APIv3 at /v3/… with the root path as the signed path (a signature over /sandbox/v3/… is refused there)', async () => {
    const no = `ROOT${Date.now()}`;
    const prepay = await rootRequest('POST', '/v3/pay/transactions/jsapi', merchant.prepayBody(no, 'o_root_user', 'http://127.0.0.1:9/notify'));
    expect(prepay.status).toBe(200);
    expect(prepay.json.prepay_id).toMatch(/^wx/);
    expect(merchant.responseVerifies(prepay)).toBe(true);

    const query = await rootRequest('GET', `/v3/pay/transactions/out-trade-no/${no}?mchid=${ks.mchid}`);
    expect(query.status).toBe(200);
    expect(query.json).toMatchObject({ out_trade_no: no, trade_state: 'NOTPAY' });

    // What forced rewriting an SDK's signing before: the path the client signs is the path it used.
    const wrong = await rootRequest('GET', `/v3/pay/transactions/out-trade-no/${no}?mchid=${ks.mchid}`, undefined, `/sandbox/v3/pay/transactions/out-trade-no/${no}?mchid=${ks.mchid}`);
    expect(wrong.status).toBe(401);
    expect(wrong.json).toMatchObject({ code: 'SIGN_ERROR', detail: { sign_information: { url: `/v3/pay/transactions/out-trade-no/${no}?mchid=${ks.mchid}` } } });

    // The same handlers stay under /sandbox for backends configured with the /sandbox base.
    const under = await merchant.request('GET', `/v3/pay/transactions/out-trade-no/${no}?mchid=${ks.mchid}`);
    expect(under.status).toBe(200);
    expect(under.json.out_trade_no).toBe(no);
  });

  it('serves Pay APIv2 at /pay/… and /secapi/… (root alias) as well as under /sandbox, over the same orders; /secapi on its mutual-TLS port', async () => {
    // The mutual-TLS port: printed on start-up and named by the control API.
    const { secapiBase } = (await fetch(`${base}/sandbox/control/merchant`).then((r) => r.json())) as { secapiBase: string };
    expect(secapiBase).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/sandbox$/);
    expect(out).toContain(`WECHATPAY_SECAPI_BASE=${secapiBase}`);
    const files = sandboxKeystoreFiles(join(dataDir, 'sandbox'));
    expect(out).toContain(`NODE_EXTRA_CA_CERTS=${files.tlsCa}`);
    const secapiRoot = secapiBase.replace(/\/sandbox$/, '');
    const v2 = (baseUrl: string, secureBaseUrl = secapiRoot) =>
      new WechatPayV2Client({
        appid: ks.appid,
        mchid: ks.mchid,
        apiKey: sandboxApiV2Key(ks),
        signType: 'MD5',
        baseUrl,
        secureBaseUrl,
        clientCert: { certPem: readFileSync(files.merchantCertificate, 'utf8'), keyPem: readFileSync(files.merchantPrivateKey, 'utf8'), trustedCaPem: readFileSync(files.tlsCa, 'utf8') },
        timeoutMs: 5000,
        now: () => Date.now(),
      });
    const no = `ROOTV2${Date.now()}`;
    const { prepayId } = await v2(base).unifiedOrder({ tradeType: 'JSAPI', description: 'root v2', outTradeNo: no, totalFee: 5, notifyUrl: 'http://127.0.0.1:9/notify', clientIp: '127.0.0.1', openid: 'o_root_v2' });
    expect(prepayId).toMatch(/^wx/);
    expect((await v2(`${base}/sandbox`).queryByOutTradeNo(no)).trade_state).toBe('NOTPAY');
    expect((await rootRequest('GET', `/v3/pay/transactions/out-trade-no/${no}?mchid=${ks.mchid}`)).json.trade_state).toBe('NOTPAY');
    // /secapi at the root of the mutual-TLS port reaches the v2 refund (an unpaid order cannot be refunded:
    // WeChat's signed refusal), and under /sandbox too; on the http port it is refused.
    await expect(v2(base).createRefund({ outTradeNo: no, outRefundNo: `${no}R`, totalFee: 5, refundFee: 1 })).rejects.toMatchObject({ wechatCode: 'ORDER_NOT_EXIST' });
    await expect(v2(base, secapiBase).createRefund({ outTradeNo: no, outRefundNo: `${no}R`, totalFee: 5, refundFee: 1 })).rejects.toMatchObject({ wechatCode: 'ORDER_NOT_EXIST' });
    await expect(v2(base, base).createRefund({ outTradeNo: no, outRefundNo: `${no}R`, totalFee: 5, refundFee: 1 })).rejects.toThrow(/双向TLS/);
  });

  it('live mode (WECHATPAY_API_VERSION=v2): the app\'s client trusts the mutual-TLS port through NODE_EXTRA_CA_CERTS only (Node\'s default store), and refuses it without', async () => {
    const { secapiBase } = (await fetch(`${base}/sandbox/control/merchant`).then((r) => r.json())) as { secapiBase: string };
    const files = sandboxKeystoreFiles(join(dataDir, 'sandbox'));
    const no = `LIVEV2${Date.now()}`;
    // A process of its own: Node reads NODE_EXTRA_CA_CERTS at start-up. The client is the one the app builds
    // from a live configuration (loadLiveCredentials: no sandbox CA), refunding an unpaid order.
    const script = `
      const { loadConfig } = require('./src/config/load-config');
      const { loadLiveCredentials } = require('./src/wechat/wechat-credentials');
      const { v2Client } = require('./src/wechat/wechat.module');
      const { SystemClock } = require('./src/common/clock');
      const config = loadConfig(process.env);
      v2Client(loadLiveCredentials(config), config, new SystemClock(), undefined)
        .createRefund({ outTradeNo: ${JSON.stringify(no)}, outRefundNo: ${JSON.stringify(`${no}R`)}, totalFee: 5, refundFee: 1 })
        .then(() => 'accepted', (e) => e.wechatCode || e.causeCode || e.message)
        .then((outcome) => process.stdout.write('OUTCOME=' + outcome + '\\n'));`;
    const env = {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      LOG_LEVEL: 'silent',
      WECHAT_MODE: 'live',
      ALLOW_INSECURE_PUBLIC_URL: 'true',
      PUBLIC_BASE_URL: 'http://127.0.0.1:9',
      SESSION_SECRET: 's'.repeat(40),
      ADMIN_TOKENS: 'a-live-admin-token-of-some-length',
      WECHATPAY_API_VERSION: 'v2',
      WECHAT_APPID: ks.appid,
      WECHAT_APPSECRET: ks.appsecret,
      WECHATPAY_MCHID: ks.mchid,
      WECHATPAY_API_V2_KEY: sandboxApiV2Key(ks),
      WECHATPAY_CERT_PATH: files.merchantCertificate,
      WECHATPAY_PRIVATE_KEY_PATH: files.merchantPrivateKey,
      WECHATPAY_API_BASE: `${base}/sandbox`,
      WECHATPAY_SECAPI_BASE: secapiBase,
    };
    const run = (extra: Record<string, string>) =>
      new Promise<string>((resolve) => {
        const p = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', script], { cwd: `${__dirname}/../..`, env: { ...env, ...extra } });
        let text = '';
        p.stdout!.on('data', (c: Buffer) => (text += c.toString()));
        p.stderr!.on('data', (c: Buffer) => (text += c.toString()));
        p.on('exit', () => resolve(/OUTCOME=(\S+)/.exec(text)?.[1] ?? text));
      });
    // Trusted: the TLS handshake verifies, the certificate is accepted, WeChat's signed refusal of an unpaid order.
    expect(await run({ NODE_EXTRA_CA_CERTS: files.tlsCa })).toBe('ORDER_NOT_EXIST');
    // Not trusted: the server is refused, nothing sent.
    expect(await run({})).toBe('SELF_SIGNED_CERT_IN_CHAIN');
  }, 60_000);

  it('points a bill\'s download_url back at the root when it was applied for there, and the download signs over that path', async () => {
    const no = `ROOTBILL${Date.now()}`;
    const prepay = await rootRequest('POST', '/v3/pay/transactions/jsapi', merchant.prepayBody(no, 'o_root_user', 'http://127.0.0.1:9/notify'));
    expect((await new SandboxControl(base).pay(prepay.json.prepay_id)).result).toBe('ok');
    const bill = await rootRequest('GET', `/v3/bill/tradebill?bill_date=${today()}`);
    expect(bill.status).toBe(200);
    const url = new URL(bill.json.download_url);
    expect(url.pathname).toBe('/v3/billdownload/file');
    const file = await rootRequest('GET', url.pathname + url.search);
    expect(file.status).toBe(200);
    expect(file.raw.toString('utf8')).toContain(no);
  });

  it('serves /sns/…, /cgi-bin/… and /connect/oauth2/authorize at the root', async () => {
    const token = await fetch(`${base}/cgi-bin/token?grant_type=client_credential&appid=${ks.appid}&secret=${ks.appsecret}`).then((r) => r.json() as Promise<Json>);
    expect(token).toEqual({ access_token: expect.any(String), expires_in: 7200 });
    const ticket = await fetch(`${base}/cgi-bin/ticket/getticket?access_token=${token.access_token}&type=jsapi`).then((r) => r.json() as Promise<Json>);
    expect(ticket).toMatchObject({ errcode: 0, ticket: expect.any(String) });

    const redirect = 'http://localhost/auth/wechat/callback';
    const consent = await fetch(
      `${base}/connect/oauth2/authorize?appid=${ks.appid}&redirect_uri=${encodeURIComponent(redirect)}&response_type=code&scope=snsapi_userinfo&state=s1&sandbox_openid=o_root_oauth`,
      { redirect: 'manual' },
    );
    expect(consent.status).toBe(302);
    const code = new URL(consent.headers.get('location')!).searchParams.get('code');
    const userToken = await fetch(`${base}/sns/oauth2/access_token?appid=${ks.appid}&secret=${ks.appsecret}&code=${code}&grant_type=authorization_code`).then((r) => r.json() as Promise<Json>);
    expect(userToken).toMatchObject({ openid: 'o_root_oauth', scope: 'snsapi_userinfo' });
    expect(await fetch(`${base}/sns/auth?access_token=${userToken.access_token}&openid=o_root_oauth`).then((r) => r.json())).toEqual({ errcode: 0, errmsg: 'ok' });
    const info = await fetch(`${base}/sns/userinfo?access_token=${userToken.access_token}&openid=o_root_oauth&lang=zh_CN`).then((r) => r.json() as Promise<Json>);
    expect(info.headimgurl).toMatch(/^http:\/\/localhost:\d+\/sandbox\/mmopen\/vi_32\/[0-9a-f]{32}\/132$/);
    // The page itself, without sandbox_openid, is the user picker (its forms post back to the same root path).
    const picker = await fetch(`${base}/connect/oauth2/authorize?appid=${ks.appid}&redirect_uri=${encodeURIComponent(redirect)}&response_type=code&scope=snsapi_base&state=s2`);
    expect(picker.status).toBe(200);
    expect(await picker.text()).toContain('o_root_oauth');
  });

  it('answers an unknown Pay API path with WeChat\'s signed 404 JSON, at the root and under /sandbox, not the framework\'s 404', async () => {
    for (const path of ['/v3/pay/transactions/nosuch', '/sandbox/v3/marketing/favor/users/x/coupons']) {
      const res = await rootRequest('GET', path);
      expect(res.status).toBe(404);
      expect(res.json).toEqual({ code: 'NOT_FOUND', message: expect.stringContaining(path) });
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(res.headers.get('request-id')).toBeTruthy();
      expect(merchant.responseVerifies(res)).toBe(true);
    }
    // A known path with a method it does not take is just as unknown.
    const put = await rootRequest('POST', '/v3/certificates', {});
    expect(put.status).toBe(404);
    expect(put.json.code).toBe('NOT_FOUND');
    // Outside WeChat's paths the root is not aliased.
    expect((await fetch(`${base}/anything/else`)).status).toBe(404);
  });

  it('writes apiclient_cert.pem (serial = WECHATPAY_CERT_SERIAL, for the merchant key) and prints where each file is', () => {
    const dir = join(dataDir, 'sandbox');
    const certPath = join(dir, 'apiclient_cert.pem');
    const cert = new X509Certificate(readFileSync(certPath));
    expect(cert.serialNumber).toBe(ks.merchant.certSerial);
    expect(cert.publicKey.export({ type: 'spki', format: 'pem' })).toBe(createPublicKey(ks.merchant.privateKeyPem).export({ type: 'spki', format: 'pem' }));
    expect(cert.subject).toContain(`CN=${ks.mchid}`);
    expect(out).toContain(`WECHATPAY_CERT_SERIAL=${ks.merchant.certSerial}`);
    for (const file of ['apiclient_key.pem', 'apiclient_cert.pem', 'wechatpay_public_key.pem', 'wechatpay_platform_cert.pem', 'keystore.json']) {
      expect(existsSync(join(dir, file))).toBe(true);
      expect(out).toContain(join(dir, file));
    }
    expect(out).toMatch(new RegExp(`merchant API certificate\\s+${certPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(serial ${ks.merchant.certSerial}\\)`));
    expect(out).toContain(`http://localhost:${new URL(base).port}/v3/`);
  });
});
