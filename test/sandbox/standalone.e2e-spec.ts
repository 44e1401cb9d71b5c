import { ChildProcess, spawn } from 'node:child_process';
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
