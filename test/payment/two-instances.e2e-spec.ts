import { getDataSourceToken } from '@nestjs/typeorm';
import { ChildProcess, spawn } from 'node:child_process';
import { DataSource } from 'typeorm';
import { LeaseService } from '../../src/database/lease.service';
import { PaymentJobs } from '../../src/payment/payment.jobs';
import { useMysql } from '../helpers/mysql';
import { Shop } from '../helpers/shop';
import { createTestDatabase, freePort, tempDir } from '../helpers/test-app';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Two application processes sharing one MariaDB (the production shape); SQLite is single-process.
// Once per API version (issue 14): the close job's lease and batches are the same whichever API closes.
(useMysql() ? describe.each(['v3', 'v2'] as const) : describe.skip.each(['v3', 'v2'] as const))('two app processes on one MariaDB (WECHATPAY_API_VERSION=%s)', (version) => {
  let child: ChildProcess | undefined;
  afterEach(() => child?.kill('SIGTERM'));

  it('close 200 stale orders exactly once between them', async () => {
    const dataDir = tempDir();
    const database = await createTestDatabase(dataDir);
    // 5 s of life: under load, placing and prepaying 200 orders can take longer than 2 s per order.
    const env = { ORDER_CLOSE_AFTER: '5s', PAYMENT_CLOSE_INTERVAL: '300ms', PAYMENT_JOB_BATCH: '50', WECHATPAY_API_VERSION: version };
    const a = await Shop.start({ dataDir, database, env });
    try {
      const product = await a.product('两实例', 100, 1000);
      const shoppers = await Promise.all(Array.from({ length: 10 }, (_, i) => a.login(`o_two_instances_${version}_${i}`)));
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
      // Let every order go stale, and have A sweep once before B exists: A's share is then certain (a
      // batch of 50); the other 150 are raced for by both below.
      await sleep(5100);
      const jobs = a.t.app.get(PaymentJobs);
      const first = await jobs.closeExpired();
      expect(first).toMatchObject({ ran: true, closed: 50 });

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

      // Who closed what: each order's 'closed' timeline entry names the instance (its lease owner).
      const ds = a.t.app.get<DataSource>(getDataSourceToken());
      const closers = async (): Promise<string[]> => {
        const rows: Array<{ detail: string }> = await ds.query(
          `SELECT detail FROM order_events WHERE type = 'closed' AND out_trade_no IN (${nos.map(() => '?').join(',')})`,
          nos,
        );
        return rows.map((r) => JSON.parse(r.detail).by as string);
      };
      // B's scheduler sweeps every 300 ms: wait until it has closed something, so that B's share is
      // certain too; then A sweeps by hand, as fast as it can, while B goes on.
      const firstDeadline = Date.now() + 30_000;
      const ownerA = a.t.app.get(LeaseService).owner;
      while (!(await closers()).some((owner) => owner !== ownerA) && Date.now() < firstDeadline) await sleep(20);
      const deadline = Date.now() + 90_000;
      let remaining = nos.length;
      let sweptByA = first.closed;
      while (remaining > 0 && Date.now() < deadline) {
        const result = await jobs.closeExpired();
        sweptByA += result.closed;
        remaining = nos.length - (await closers()).length;
        await sleep(10);
      }
      const statuses = await Promise.all(nos.map((no) => a.status(no)));
      expect(statuses.filter((s) => s !== 'CLOSED')).toEqual([]);
      expect(remaining).toBe(0);
      const calls = await a.sandbox.calls();
      expect(calls[version === 'v3' ? 'v3/pay/transactions/close' : 'pay/closeorder']).toBe(200);
      expect(output).not.toMatch(/Error|cannot start/);
      // Every order closed exactly once, by one instance or the other; together 200.
      const by = await closers();
      expect(by).toHaveLength(200);
      const closedByA = by.filter((owner) => owner === ownerA).length;
      const closedByB = by.filter((owner) => owner !== ownerA).length;
      expect(closedByA).toBeGreaterThanOrEqual(50);
      expect(new Set(by.filter((owner) => owner !== ownerA)).size).toBe(1); // one other instance: B
      expect(closedByA).toBe(sweptByA);
      expect(closedByA + closedByB).toBe(200);
      expect(closedByB).toBeGreaterThan(0);
      console.log(`A closed ${closedByA}, B closed ${closedByB}`);
    } finally {
      await a.close();
      await database.drop();
    }
  }, 180_000);
});
