import { ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { loadConfig } from '../../src/config/load-config';
import { SandboxControl } from '../helpers/sandbox-control';
import { freePort, tempDir } from '../helpers/test-app';
import { SandboxTestApp, startSandboxApp } from '../sandbox/sandbox-app';

/** Issue 11 item 10: the sandbox's control API behind SANDBOX_CONTROL_TOKEN; bill registration leaks no paths. */
const TOKEN = 'sandbox-control-token-0123456789';

describe('SANDBOX_CONTROL_TOKEN', () => {
  let t: SandboxTestApp;
  beforeAll(async () => {
    t = await startSandboxApp({ env: { SANDBOX_CONTROL_TOKEN: TOKEN } });
  });
  afterAll(() => t?.close());

  const raw = (path: string, init: RequestInit = {}) => fetch(`${t.baseUrl}/sandbox/control${path}`, init);

  it('anyone reaching the port cannot inject faults, pay or reset through /sandbox/control/* without the bearer token: 401 naming it, nothing changed', async () => {
    const json = { 'Content-Type': 'application/json' };
    const attempts: Array<[string, RequestInit]> = [
      ['/faults', { method: 'POST', headers: json, body: JSON.stringify({ endpoint: 'v3/pay/transactions/jsapi', kind: '500', count: 5 }) }],
      ['/faults', { method: 'POST', headers: { ...json, Authorization: 'Bearer wrong-token-of-enough-length' }, body: JSON.stringify({ endpoint: 'v3/pay/transactions/jsapi', kind: '500' }) }],
      ['/faults', { method: 'POST', headers: { ...json, Authorization: TOKEN }, body: JSON.stringify({ endpoint: 'v3/pay/transactions/jsapi', kind: '500' }) }],
      ['/pay', { method: 'POST', headers: json, body: JSON.stringify({ prepayId: 'wx123' }) }],
      ['/reset', { method: 'POST' }],
      ['/merchant', {}],
    ];
    for (const [path, init] of attempts) {
      const res = await raw(path, init);
      const body = (await res.json()) as { statusCode: number; message: string };
      expect({ path, status: res.status }).toEqual({ path, status: 401 });
      expect(body.message).toMatch(/SANDBOX_CONTROL_TOKEN/);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
    // Nothing was injected: the helper (which sends the token) sees no pending fault.
    const stats = await raw('/stats', { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(stats.status).toBe(200);
    expect(((await stats.json()) as { pendingFaults: Record<string, unknown> }).pendingFaults).toEqual({});
  });

  it('the test helper sends the configured token, and the rest of the sandbox (WeChat APIs) is unaffected', async () => {
    expect((await t.control.merchant()).appid).toBe(t.keystore.appid);
    await t.control.failNext('cgi-bin/token', '500');
    expect(await t.control.faultEndpoints()).toHaveProperty('mp');
    await t.control.reset();
    await expect(new SandboxControl(t.baseUrl).merchant()).rejects.toThrow(/401/);
    const token = await fetch(`${t.baseUrl}/sandbox/cgi-bin/token?grant_type=client_credential&appid=${t.keystore.appid}&secret=bad`);
    expect(((await token.json()) as { errcode: number }).errcode).toBe(40125);
  });

  it('unset, the control API stays open as before', async () => {
    const open = await startSandboxApp();
    try {
      expect((await fetch(`${open.baseUrl}/sandbox/control/merchant`)).status).toBe(200);
    } finally {
      await open.close();
    }
  });

  it('a too-short or spaced SANDBOX_CONTROL_TOKEN is a start-up error naming the variable', () => {
    expect(() => loadConfig({ NODE_ENV: 'test', SANDBOX_CONTROL_TOKEN: 'short' })).toThrow(/SANDBOX_CONTROL_TOKEN/);
    expect(() => loadConfig({ NODE_ENV: 'test', SANDBOX_CONTROL_TOKEN: 'has a space in the token' })).toThrow(/SANDBOX_CONTROL_TOKEN/);
    expect(loadConfig({ NODE_ENV: 'test' }).sandbox.controlToken).toBeUndefined();
  });

  describe('npm run sandbox (standalone)', () => {
    let child: ChildProcess | undefined;
    afterEach(() => child?.kill());

    it('the standalone sandbox refuses control calls without SANDBOX_CONTROL_TOKEN too', async () => {
      const port = await freePort();
      const dataDir = tempDir();
      child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/sandbox/standalone.ts'], {
        cwd: `${__dirname}/../..`,
        env: { PATH: process.env.PATH, SANDBOX_PORT: String(port), DATA_DIR: dataDir, NODE_ENV: 'test', SANDBOX_CONTROL_TOKEN: TOKEN },
      });
      let out = '';
      child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
      const deadline = Date.now() + 40_000;
      while (!out.includes('Test controls') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(out).toContain('SANDBOX_CONTROL_TOKEN');
      expect(out).not.toContain(TOKEN);
      expect((await fetch(`http://127.0.0.1:${port}/sandbox/control/merchant`)).status).toBe(401);
      expect((await new SandboxControl(`http://127.0.0.1:${port}`, { token: TOKEN }).merchant()).appid).toMatch(/^wx/);
      child.kill();
      rmSync(dataDir, { recursive: true, force: true });
    });
  });
});

describe('bill registration (POST /sandbox/control/bills) reveals no paths outside DATA_DIR', () => {
  let t: SandboxTestApp;
  let outside: string;
  beforeAll(async () => {
    t = await startSandboxApp();
    outside = tempDir('whp-secret-outside-');
    writeFileSync(join(outside, 'real.csv.gz'), gzipSync('x'));
    symlinkSync(join(outside, 'real.csv.gz'), join(t.dataDir, 'escape.csv.gz'));
    symlinkSync(join(outside, 'absent.csv.gz'), join(t.dataDir, 'dangling.csv.gz'));
    symlinkSync(outside, join(t.dataDir, 'outdir'));
  });
  afterAll(async () => {
    await t?.close();
    rmSync(outside, { recursive: true, force: true });
  });

  const register = async (path: string) => {
    const res = await fetch(`${t.baseUrl}/sandbox/control/bills`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ date: '2026-01-01', path }),
    });
    return { status: res.status, message: ((await res.json()) as { message: string }).message };
  };
  const secrets = () => [t.dataDir, realpathSync(t.dataDir), outside, realpathSync(outside), basename(outside)];

  it("probing '../../etc/passwd' against '../../etc/no-such-file' tells an attacker nothing: same refusal, no absolute path echoed", async () => {
    const existing = await register('../../etc/passwd');
    const missing = await register('../../etc/no-such-file-7f3a');
    expect(existing).toMatchObject({ status: 400, message: expect.stringContaining('outside DATA_DIR') });
    expect(missing.status).toBe(400);
    expect(missing.message.replace('no-such-file-7f3a', 'passwd')).toBe(existing.message);
    for (const res of [existing, missing]) for (const secret of secrets()) expect(res.message).not.toContain(secret);
  });

  it('a symlink in DATA_DIR leading outside is refused without naming its target or the absolute DATA_DIR', async () => {
    for (const path of ['escape.csv.gz', 'outdir/real.csv.gz', 'dangling.csv.gz', join(t.dataDir, 'escape.csv.gz'), '', 'missing.csv.gz', 'outdir']) {
      const res = await register(path);
      expect({ path, status: res.status }).toEqual({ path, status: 400 });
      // Only what the caller sent may be echoed (an absolute path inside DATA_DIR sent by the caller is theirs).
      const leaks = [...secrets(), 'absent.csv.gz', ...(path.includes('real.csv.gz') ? [] : ['real.csv.gz'])].filter((s) => !path.includes(s));
      for (const secret of leaks) expect({ path, message: res.message }).toEqual({ path, message: expect.not.stringContaining(secret) });
    }
  });

  it('a registered bill answers with its path relative to DATA_DIR, not the absolute one', async () => {
    mkdirSync(join(t.dataDir, 'bills'), { recursive: true });
    writeFileSync(join(t.dataDir, 'bills', 'ok.csv.gz'), gzipSync('a,b\n'));
    const registered = await t.control.registerTradeBill('2026-01-02', join(t.dataDir, 'bills', 'ok.csv.gz'));
    expect(registered).toMatchObject({ path: 'bills/ok.csv.gz', bytes: 4 });
  });
});
