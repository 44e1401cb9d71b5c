import { ChildProcess, spawn } from 'node:child_process';
import { PaymentJobs } from '../../src/payment/payment.jobs';
import { useMysql } from '../helpers/mysql';
import { Shop } from '../helpers/shop';
import { createTestDatabase, freePort, tempDir } from '../helpers/test-app';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Two application processes sharing one MariaDB (the production shape); SQLite is single-process.
(useMysql() ? describe : describe.skip)('two app processes on one MariaDB', () => {
  let child: ChildProcess | undefined;
  afterEach(() => child?.kill('SIGTERM'));

  it('close 200 stale orders exactly once between them', async () => {
    const dataDir = tempDir();
    const database = await createTestDatabase(dataDir);
    const env = { ORDER_CLOSE_AFTER: '2s', PAYMENT_CLOSE_INTERVAL: '300ms', PAYMENT_JOB_BATCH: '50' };
    const a = await Shop.start({ dataDir, database, env });
    try {
      const product = await a.product('两实例', 100, 1000);
      const shoppers = await Promise.all(Array.from({ length: 10 }, (_, i) => a.login(`o_two_instances_${i}`)));
      const nos: string[] = [];
      for (let i = 0; i < 200; i += 10) {
        nos.push(
          ...(await Promise.all(
            shoppers.map(async (s) => {
              const no = await a.placeOrder(s, [{ productId: product.id, quantity: 1 }]);
              await a.prepay(s, no);
              return no;
            }),
          )),
        );
      }
      await a.sandbox.resetCalls();

      // Instance B: another process, same database and keystore, the same (A's) WeChat sandbox.
      const port = await freePort();
      const sandboxBase = `${a.baseUrl}/sandbox`;
      child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/main.ts'], {
        cwd: `${__dirname}/../..`,
        env: {
          PATH: process.env.PATH,
          NODE_ENV: 'test',
          LOG_LEVEL: 'warn',
          PORT: String(port),
          PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
          DATA_DIR: dataDir,
          DATABASE_URL: database.url!,
          WECHATPAY_API_BASE: sandboxBase,
          WECHAT_API_BASE: sandboxBase,
          WECHAT_OPEN_BASE: sandboxBase,
          SEED_DEMO_PRODUCTS: 'false',
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
      child.stderr!.on('data', (c: Buffer) => (output += c.toString()));

      // Wait until B serves (its scheduler then sweeps every 300 ms), so that both instances compete.
      const bootDeadline = Date.now() + 60_000;
      while (Date.now() < bootDeadline) {
        const ok = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false);
        if (ok) break;
        await sleep(200);
      }
      expect(await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.status)).toBe(200);

      // Instance A sweeps by hand, as fast as it can, while B's scheduler runs.
      const jobs = a.t.app.get(PaymentJobs);
      const deadline = Date.now() + 90_000;
      let remaining = nos.length;
      let sweptByA = 0;
      await sleep(150);
      while (remaining > 0 && Date.now() < deadline) {
        const result = await jobs.closeExpired();
        sweptByA += result.closed;
        const statuses = await Promise.all(nos.map((no) => a.status(no)));
        remaining = statuses.filter((s) => s !== 'CLOSED').length;
        await sleep(50);
      }
      expect(remaining).toBe(0);
      const calls = await a.sandbox.calls();
      expect(calls['v3/pay/transactions/close']).toBe(200);
      // B took part (or at least was there to compete): it booted and ran
      expect(output).not.toMatch(/Error|cannot start/);
      // every order's timeline shows one close
      const timelines = await Promise.all(nos.slice(0, 20).map((no) => a.admin().get(`/admin/orders/${no}`)));
      for (const t of timelines) expect(t.body.timeline.filter((e: { type: string }) => e.type === 'closed')).toHaveLength(1);
      // B's share is whatever A did not close (both may have; neither closed anything twice).
      expect(sweptByA).toBeLessThanOrEqual(200);
      console.log(`A closed ${sweptByA}, B closed ${200 - sweptByA}`);
    } finally {
      await a.close();
      await database.drop();
    }
  }, 180_000);
});
