/**
 * Issue 12 item 19: several instances in sandbox mode on one database would each run their own
 * simulated WeChat (a payment prepaid at one could never be confirmed by another). The instance that
 * uses its own sandbox holds a lease in the database; a second one refuses to start and says what to
 * do. Instances pointed at a shared sandbox start; SANDBOX_INSTANCE_LOCK=false opts out.
 */
import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { getDataSourceToken } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { dbDate } from '../../src/database/transactions';
import { LeaseService } from '../../src/database/lease.service';
import { SANDBOX_LEASE } from '../../src/sandbox/sandbox-instance-lock';
import { TestApp, createTestDatabase, startTestApp, tempDir } from '../helpers/test-app';
import { TestDatabase } from '../helpers/mysql';
import { SandboxControl } from '../helpers/sandbox-control';
import { ADMIN_TOKEN, Shop } from '../helpers/shop';

const ROOT = `${__dirname}/../..`;

/** src/main.ts as an operator starts it; resolves with its exit code and output. */
function runMain(env: Record<string, string>): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/main.ts'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', LOG_LEVEL: 'warn', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`main.ts still running after 60 s: ${stdout}${stderr}`));
    }, 60_000);
    child.on('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

describe('one simulated WeChat per database (sandbox mode)', () => {
  jest.setTimeout(120_000);
  let dataDir: string;
  let database: TestDatabase;
  let a: TestApp | undefined;
  const others: TestApp[] = [];

  beforeAll(async () => {
    dataDir = tempDir();
    database = await createTestDatabase(dataDir);
    a = await startTestApp({ dataDir, database });
  });
  afterAll(async () => {
    for (const t of others) await t.close().catch(() => undefined);
    await a?.close();
    await database.drop();
  });

  const leaseRow = async (ds: DataSource) => (await ds.query('SELECT owner, expires_at FROM job_leases WHERE name = ?', [SANDBOX_LEASE]))[0] as { owner: string; expires_at: string | Date } | undefined;

  it('the first instance in sandbox mode holds the lease, renewed ahead of time', async () => {
    const row = await leaseRow(a!.app.get<DataSource>(getDataSourceToken()));
    expect(row?.owner).toBe(a!.app.get(LeaseService).owner);
    const expiresIn = new Date(row!.expires_at).getTime() - Date.now();
    expect(expiresIn).toBeGreaterThan(20_000);
  });

  it('a second instance with its own sandbox on the same database refuses to start, naming the holder and the way out', async () => {
    await expect(startTestApp({ dataDir, database })).rejects.toThrow(/already runs its own simulated WeChat on this database/);

    // As an operator starts it: one plain message, exit 1, no stack trace, never the listening line.
    const port = String(40000 + Math.floor(Math.random() * 20000));
    const result = await runMain({ PORT: port, PUBLIC_BASE_URL: `http://127.0.0.1:${port}`, DATA_DIR: dataDir, ...(database.url ? { DATABASE_URL: database.url } : {}) });
    expect(result.status).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^wechat-h5-pay cannot start: another instance in sandbox mode \(/);
    expect(lines[0]).toContain(a!.app.get(LeaseService).owner);
    expect(lines[0]).toMatch(/npm run sandbox/);
    expect(lines[0]).toMatch(/WECHATPAY_API_BASE, WECHAT_API_BASE and WECHAT_OPEN_BASE/);
    expect(lines[0]).toMatch(/SANDBOX_INSTANCE_LOCK=false/);
    expect(`${result.stdout}${result.stderr}`).not.toMatch(/\n\s+at /);
    expect(result.stdout).not.toMatch(/listening on/);
  });

  it('an instance pointed at the shared sandbox starts and pays through it', async () => {
    const shared = `${a!.baseUrl}/sandbox`;
    const b = await startTestApp({
      dataDir,
      database,
      env: { WECHATPAY_API_BASE: shared, WECHAT_API_BASE: shared, WECHAT_OPEN_BASE: shared, ADMIN_TOKENS: ADMIN_TOKEN, SEED_DEMO_PRODUCTS: 'false' },
    });
    others.push(b);
    // b holds nothing: the lease is still a's.
    expect((await leaseRow(b.app.get<DataSource>(getDataSourceToken())))?.owner).toBe(a!.app.get(LeaseService).owner);

    const shopB = new Shop(b);
    const wechat = new SandboxControl(a!.baseUrl);
    const product = await shopB.product('共享沙箱', 100);
    const shopper = await shopB.login('o_shared_sandbox');
    const no = await shopB.placeOrder(shopper, [{ productId: product.id, quantity: 1 }]);
    const prepayId = await shopB.prepay(shopper, no);
    expect((await wechat.transaction(no)).prepay_ids).toEqual([prepayId]); // prepaid at a's sandbox
    expect((await wechat.pay(prepayId)).result).toBe('ok');
    await shopB.waitForStatus(no, 'PAID');
  });

  let c: TestApp;
  const setLease = (owner: string, expiresInMs: number, heartbeatAgoMs: number) => {
    const ds = c.app.get<DataSource>(getDataSourceToken());
    return ds
      .createQueryBuilder()
      .update('job_leases')
      .set({ owner, expires_at: dbDate(ds, new Date(Date.now() + expiresInMs)), updated_at: dbDate(ds, new Date(Date.now() - heartbeatAgoMs)) })
      .where('name = :name', { name: SANDBOX_LEASE })
      .execute();
  };

  it('SANDBOX_INSTANCE_LOCK=false opts out (tests that know what they do)', async () => {
    c = await startTestApp({ dataDir, database, env: { SANDBOX_INSTANCE_LOCK: 'false' } });
    others.push(c);
    expect((await fetch(`${c.baseUrl}/health`)).status).toBe(200);
  });

  it('a stopped holder frees the database at once; a crashed one when its lease runs out, or at once when its process is gone from this host', async () => {
    const cds = c.app.get<DataSource>(getDataSourceToken());
    await a!.close();
    a = undefined;
    const d = await startTestApp({ dataDir, database });
    expect((await leaseRow(cds))?.owner).toBe(d.app.get(LeaseService).owner);
    await d.close();

    // A holder that crashed: its heartbeat stopped 31 s ago, past the 30 s lease.
    await setLease('crashed-host:4242:deadbeef', -1000, 31_000);
    const f = await startTestApp({ dataDir, database });
    expect((await leaseRow(cds))?.owner).toBe(f.app.get(LeaseService).owner);
    await f.close();

    // A holder on this host whose process is gone (killed a moment ago): taken over at once.
    const gone = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => gone.on('exit', r));
    await setLease(`${hostname().slice(0, 30)}:${gone.pid}:0badf00d`, 25_000, 1000);
    const g = await startTestApp({ dataDir, database });
    expect((await leaseRow(cds))?.owner).toBe(g.app.get(LeaseService).owner);
    await g.close();

    // A holder whose heartbeat is recent keeps the database, and is named.
    await setLease('other-host:77:cafe', 25_000, 5000);
    await expect(startTestApp({ dataDir, database })).rejects.toThrow(/\(other-host:77:cafe, last heartbeat \d+ s ago\)/);
  });
});
