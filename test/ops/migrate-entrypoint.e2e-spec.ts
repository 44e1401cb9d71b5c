/**
 * Issue 12 item 18: the container's first step is the migration entrypoint (src/migrate.ts, built to
 * dist/src/migrate.js). A wrong configuration must be the first and only thing it prints — every bad
 * variable named, no stack trace — and the Dockerfile declares DATA_DIR a volume and runs that step.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { tempDir } from '../helpers/test-app';

const ROOT = join(__dirname, '..', '..');

function migrate(env: Record<string, string>): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/migrate.ts'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`migrate.ts still running after 90 s: ${stdout}${stderr}`));
    }, 90_000);
    child.on('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

describe('the migration entrypoint and the Dockerfile', () => {
  jest.setTimeout(200_000);

  it('prints configuration errors first and alone (each variable named, no stack), and migrates nothing', async () => {
    const dataDir = tempDir();
    const result = await migrate({
      NODE_ENV: 'production',
      WECHAT_MODE: 'live',
      DATA_DIR: dataDir,
      WECHAT_APPID: 'not-an-appid',
      WECHATPAY_APIV3_KEY: 'short',
    });
    expect(result.status).toBe(1);
    expect(result.stdout).toBe('');
    const lines = result.stderr.trim().split('\n');
    expect(lines.slice(0, 2)).toEqual(['wechat-h5-pay cannot start.', 'Invalid environment variables:']);
    expect(result.stderr).toMatch(/- WECHAT_APPID: must be an official-account appid/);
    expect(result.stderr).toMatch(/- WECHATPAY_APIV3_KEY: must be exactly 32 characters/);
    expect(result.stderr).toMatch(/- WECHATPAY_MCHID: is required when WECHAT_MODE=live/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    // Nothing was created: configuration is checked before the database is touched.
    expect(() => readFileSync(join(dataDir, 'wechat-h5-pay.sqlite'))).toThrow();
  });

  it('applies the migrations on a fresh database, then finds nothing to do', async () => {
    const dataDir = tempDir();
    const first = await migrate({ NODE_ENV: 'test', DATA_DIR: dataDir });
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    expect(first.stdout).toMatch(/^migrations applied on sqlite: JobLeases1763900000000, /);
    const db = new Database(join(dataDir, 'wechat-h5-pay.sqlite'), { readonly: true });
    try {
      const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map((r) => r.name);
      expect(tables).toEqual(expect.arrayContaining(['orders', 'job_leases', 'migrations']));
    } finally {
      db.close();
    }
    const again = await migrate({ NODE_ENV: 'test', DATA_DIR: dataDir });
    expect(again.status).toBe(0);
    expect(again.stdout).toBe('database schema up to date (sqlite): no migration to apply\n');
  });

  it('Dockerfile: DATA_DIR is a declared volume, and the container migrates through the entrypoint before the app', () => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    const dataDir = /DATA_DIR=(\S+)/.exec(dockerfile)?.[1];
    expect(dataDir).toBe('/app/data');
    expect(dockerfile).toMatch(new RegExp(`^VOLUME \\["${dataDir}"\\]$`, 'm'));
    const cmd = /^CMD (.+)$/m.exec(dockerfile)?.[1];
    expect(JSON.parse(cmd!)).toEqual(['sh', '-c', 'node dist/src/migrate.js && exec node dist/src/main.js']);
    // The volume is declared after the directory is made and given to the user the app runs as.
    expect(dockerfile.indexOf('chown node:node /app/data')).toBeLessThan(dockerfile.indexOf('VOLUME'));
    expect(dockerfile.indexOf('VOLUME')).toBeLessThan(dockerfile.indexOf('USER node'));
  });
});
