import { spawn, spawnSync } from 'node:child_process';
import { createServer, Server } from 'node:net';
import { freePort, tempDir } from './helpers/test-app';
import { mysqlServerUrl, useMysql } from './helpers/mysql';

/** Issue 12 item 17: what an operator sees when the app cannot start. */
const ROOT = `${__dirname}/..`;

function start(env: Record<string, string>) {
  return spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', DATA_DIR: tempDir(), ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

function expectOneClearMessage(result: ReturnType<typeof start>, pattern: RegExp) {
  expect(result.status).toBe(1);
  const lines = result.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^wechat-h5-pay cannot start: /);
  expect(lines[0]).toMatch(pattern);
  // No stack trace anywhere, no Nest error dump on stdout.
  expect(`${result.stdout}${result.stderr}`).not.toMatch(/\n\s+at /);
  expect(result.stdout).not.toMatch(/ERROR|ExceptionHandler/);
}

describe('start-up errors', () => {
  it('a port already in use ends in one clear message naming PORT, without a stack trace', async () => {
    const port = await freePort();
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', () => resolve()));
    try {
      const result = start({ PORT: String(port), HOST: '127.0.0.1' });
      expectOneClearMessage(result, new RegExp(`port ${port} is already in use \\(PORT\\)`));
    } finally {
      blocker.close();
    }
  });

  it('prints the "listening on" line at every log level (LOG_LEVEL=error too)', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/main.ts'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', DATA_DIR: tempDir(), PORT: String(port), LOG_LEVEL: 'error' },
    });
    let out = '';
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no listening line in 45 s; stdout: ${out}`)), 45_000);
        child.stdout.on('data', (chunk) => {
          out += chunk.toString();
          if (out.includes('listening on')) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.on('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
      });
      expect(out).toMatch(new RegExp(`wechat-h5-pay listening on http://localhost:${port} \\(port ${port}, host 127\\.0\\.0\\.1, mode sandbox, database sqlite\\)`));
    } finally {
      child.kill('SIGTERM');
    }
  });

  const mysqlIt = useMysql() ? it : it.skip;

  mysqlIt('wrong database credentials end in one message at once (access denied is not retried 9 times), without the password', () => {
    const url = mysqlServerUrl();
    url.password = 'not-the-password-5f3a';
    const started = Date.now();
    const result = start({ DATABASE_URL: url.toString() });
    expectOneClearMessage(result, /refused the user and password in DATABASE_URL .*access denied/);
    expect(result.stderr).not.toContain('not-the-password-5f3a');
    expect(Date.now() - started).toBeLessThan(25_000);
  });

  mysqlIt('a missing database ends in one message saying to create it', () => {
    const url = mysqlServerUrl();
    url.pathname = '/whp_ci_no_such_database_7c1';
    const result = start({ DATABASE_URL: url.toString() });
    expectOneClearMessage(result, /database in DATABASE_URL does not exist .*whp_ci_no_such_database_7c1.*CREATE DATABASE/);
  });
});
