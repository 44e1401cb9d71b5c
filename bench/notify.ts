// Notifications per second into the notify endpoint on MariaDB, beside two baselines measured in the
// same run on the same orders:
//   (a) a bare Node http server doing only verify + decrypt + parse (bench/baselines/notify-verify-only.js)
//   (b) a minimal hand-written durable handler: verify, decrypt, one mysql2 transaction per
//       notification inserting the raw event and running the guarded UPDATE (bench/baselines/notify-mysql2.js)
// Every notification is distinct, validly signed, for its own NOTPAY order; orders are reset between runs.
//   DATABASE_URL=mysql://root@127.0.0.1:3306/whp_bench npx ts-node --transpile-only bench/notify.ts [seconds] [connections]
import 'reflect-metadata';
import autocannon from 'autocannon';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createConnection } from 'mysql2/promise';
import { loadOrCreateSandboxKeystore } from '../src/sandbox/keystore';
import { craftNotification, successResource } from '../test/helpers/craft-notification';
import { freePort, tempDir } from '../test/helpers/test-app';
import { LoadResult, createScratchDatabase, printTable, waitReady } from './lib';

const SECONDS = Number(process.argv[2] ?? 10);
const CONNECTIONS = Number(process.argv[3] ?? 32);
const ORDERS = Number(process.env.BENCH_ORDERS ?? 40_000);
const ROOT = join(__dirname, '..');

interface Notification {
  headers: Record<string, string>;
  body: string;
}

async function main(): Promise<void> {
  const scratch = await createScratchDatabase('whp_bench_notify');
  const dataDir = tempDir('whp-bench-');
  const children: ChildProcess[] = [];
  try {
    console.log('building…');
    execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
    const keystore = await loadOrCreateSandboxKeystore(join(dataDir, 'sandbox'));

    // Our app (compiled), in sandbox mode on MariaDB: its migrations create the schema.
    const appPort = await freePort();
    const app = spawn(process.execPath, [...(process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof-notify'] : []), 'dist/src/main.js'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'development',
        LOG_LEVEL: 'warn',
        PORT: String(appPort),
        DATA_DIR: dataDir,
        DATABASE_URL: scratch.url,
        SEED_DEMO_PRODUCTS: 'false',
        // keep the jobs out of the measurement
        PAYMENT_RECONCILE_INTERVAL: '1h',
        PAYMENT_CLOSE_INTERVAL: '1h',
        ORDER_CLOSE_AFTER: '1d',
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    children.push(app);
    await waitReady(app, `http://127.0.0.1:${appPort}/health`);

    console.log(`creating ${ORDERS} orders and as many signed notifications…`);
    const db = await createConnection({ uri: scratch.url, timezone: 'Z' });
    const numbers = Array.from({ length: ORDERS }, (_, i) => `BENCH${String(i).padStart(10, '0')}`);
    for (let i = 0; i < numbers.length; i += 2000) {
      const chunk = numbers.slice(i, i + 2000);
      await db.query(
        `INSERT INTO orders (out_trade_no, user_id, appid, openid, status, total, currency, description, expires_at, refunded_total, created_at, updated_at) VALUES ?`,
        [chunk.map((no) => [no, 1, keystore.appid, 'o_bench', 'NOTPAY', 100, 'CNY', 'bench', new Date(Date.now() + 86_400_000), 0, new Date(), new Date()])],
      );
    }
    // Valid for |now - timestamp| < 300 s: stamp them 150 s ahead, so they stay valid for 7.5 minutes.
    const timestamp = Math.floor(Date.now() / 1000) + 150;
    const notifications: Notification[] = numbers.map((no, i) => {
      const resource = successResource(keystore, no, 100, { transaction_id: `42000000002026112400${String(i).padStart(8, '0')}`, payer: { openid: 'o_bench' } });
      const crafted = craftNotification(keystore, resource, { timestamp });
      return { body: crafted.body.toString('utf8'), headers: crafted.headers };
    });

    const reset = async () => {
      await db.query("UPDATE orders SET status = 'NOTPAY', transaction_id = NULL, paid_total = NULL, paid_at = NULL, paid_batch = NULL WHERE out_trade_no LIKE 'BENCH%'");
      await db.query('DELETE FROM payment_events');
      await db.query('DELETE FROM order_events');
    };

    const run = async (name: string, url: string): Promise<LoadResult> => {
      await reset();
      let next = 0;
      let status204 = 0;
      const result = await autocannon({
        url,
        connections: CONNECTIONS,
        duration: SECONDS,
        requests: [
          {
            method: 'POST',
            setupRequest: (req) => {
              const n = notifications[next++ % notifications.length];
              return { ...req, headers: n.headers, body: n.body };
            },
            onResponse: (status) => {
              if (status === 204) status204++;
            },
          },
        ],
      });
      if (next > notifications.length) console.warn(`${name}: ran out of distinct notifications (${next} sent); raise BENCH_ORDERS`);
      const [[{ paid }]] = (await db.query("SELECT COUNT(*) AS paid FROM orders WHERE status = 'PAID' AND out_trade_no LIKE 'BENCH%'")) as unknown as [[{ paid: number }]];
      console.log(`${name}: ${status204} answered 204, ${paid} orders PAID`);
      return {
        name,
        requestsPerSec: result.requests.average,
        p50Ms: result.latency.p50,
        p99Ms: result.latency.p99,
        errors: result.errors + result.timeouts,
        non2xx: result.non2xx,
      };
    };

    const startBaseline = async (script: string, ...args: string[]) => {
      const port = await freePort();
      const child = spawn(process.execPath, [join(__dirname, 'baselines', script), String(port), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(child);
      await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
      return { child, url: `http://127.0.0.1:${port}/` };
    };

    const publicKeyPath = join(dataDir, 'sandbox', 'wechatpay_public_key.pem');
    const a = await startBaseline('notify-verify-only.js', publicKeyPath, keystore.apiv3Key);
    const ra = await run('(a) bare http: verify + decrypt + parse', a.url);
    a.child.kill();
    const b = await startBaseline('notify-mysql2.js', publicKeyPath, keystore.apiv3Key, scratch.url);
    const rb1 = await run('(b) hand-written mysql2, 1 transaction per notification', b.url);
    const ours1 = await run('wechat-h5-pay POST /notify/wechatpay/transaction', `http://127.0.0.1:${appPort}/notify/wechatpay/transaction`);
    const rb2 = await run('(b) again', b.url);
    const ours2 = await run('wechat-h5-pay again', `http://127.0.0.1:${appPort}/notify/wechatpay/transaction`);
    b.child.kill();
    const mean = (x: LoadResult, y: LoadResult, name: string): LoadResult => ({
      name,
      requestsPerSec: (x.requestsPerSec + y.requestsPerSec) / 2,
      p50Ms: (x.p50Ms + y.p50Ms) / 2,
      p99Ms: (x.p99Ms + y.p99Ms) / 2,
      errors: x.errors + y.errors,
      non2xx: x.non2xx + y.non2xx,
    });
    const rb = mean(rb1, rb2, '(b) hand-written mysql2 transaction per notification (mean of 2)');
    const ours = mean(ours1, ours2, 'wechat-h5-pay notify endpoint (mean of 2)');
    printTable(`notifications into MariaDB, ${SECONDS}s per run, ${CONNECTIONS} connections, Node ${process.version}`, [rb, ra, ours]);
    console.log(`\nratio ours : (b) = ${(ours.requestsPerSec / rb.requestsPerSec).toFixed(2)} (target >= 1.0), p99 ${ours.p99Ms} ms vs ${rb.p99Ms} ms (target: lower)`);
    await db.end();
  } finally {
    for (const child of children) child.kill();
    await scratch.drop();
  }
}

void main().catch((error) => {
  console.error(error);
  process.exit(1);
});
