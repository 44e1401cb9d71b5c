// Notifications per second into the notify endpoint on MariaDB, beside two baselines measured in the
// same run on the same orders:
//   (a) a bare Node http server doing only verify + decrypt + parse (bench/baselines/notify-verify-only.js)
//   (b) a minimal hand-written durable handler: verify, decrypt, one mysql2 transaction per
//       notification inserting the raw event and running the guarded UPDATE (bench/baselines/notify-mysql2.js)
// Every notification is distinct, validly signed, for its own NOTPAY order; orders are reset between runs.
// Then the APIv2 case (issue 14): the app restarted with WECHATPAY_API_VERSION=v2 takes v2 XML payment
// notifications (HMAC-SHA256) at POST /notify/wechatpay/v2/transaction, beside
//   (b2) a minimal hand-written v2 handler: parse, verify the sign, one mysql2 transaction, SUCCESS XML
//        (bench/baselines/notify-v2-mysql2.js)
// measured in the same run on the same orders. BENCH_VERSIONS=v3 or =v2 runs one case only.
//   DATABASE_URL=mysql://root@127.0.0.1:3306/whp_bench npx ts-node --transpile-only bench/notify.ts [seconds] [connections]
import 'reflect-metadata';
import autocannon from 'autocannon';
import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createConnection } from 'mysql2/promise';
import { loadOrCreateSandboxKeystore } from '../src/sandbox/keystore';
import { craftNotification, craftV2Notification, successResource, v2PaymentFields } from '../test/helpers/craft-notification';
import { sandboxApiV2Key } from '../src/sandbox/keystore';
import { freePort, tempDir } from '../test/helpers/test-app';
import { BenchApp, LoadResult, buildApp, createScratchDatabase, printTable, startApp } from './lib';

const SECONDS = Number(process.argv[2] ?? 10);
const CONNECTIONS = Number(process.argv[3] ?? 32);
const ORDERS = Number(process.env.BENCH_ORDERS ?? 40_000);
const VERSIONS = (process.env.BENCH_VERSIONS ?? 'v3,v2').split(',').map((v) => v.trim());

interface Notification {
  headers: Record<string, string>;
  body: string;
}

async function main(): Promise<void> {
  const scratch = await createScratchDatabase('whp_bench_notify');
  const dataDir = tempDir('whp-bench-');
  const children: ChildProcess[] = [];
  const apps: BenchApp[] = [];
  try {
    buildApp();
    const keystore = await loadOrCreateSandboxKeystore(join(dataDir, 'sandbox'));

    // Our app (compiled), in sandbox mode on MariaDB: its migrations create the schema.
    const start = async (extraEnv: Record<string, string> = {}) => {
      const started = await startApp({ DATA_DIR: dataDir, DATABASE_URL: scratch.url, ORDER_CLOSE_AFTER: '1d', ...extraEnv });
      apps.push(started);
      return started;
    };
    let app = await start();

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

    /** One load run of `list` into `url`; `okStatus` is the acknowledging answer (v3 204, v2 200 SUCCESS XML). */
    const run = async (name: string, url: string, list: Notification[] = notifications, okStatus = 204): Promise<LoadResult> => {
      await reset();
      let next = 0;
      let acknowledged = 0;
      const result = await autocannon({
        url,
        connections: CONNECTIONS,
        duration: SECONDS,
        requests: [
          {
            method: 'POST',
            setupRequest: (req) => {
              const n = list[next++ % list.length];
              return { ...req, headers: n.headers, body: n.body };
            },
            onResponse: (status) => {
              if (status === okStatus) acknowledged++;
            },
          },
        ],
      });
      if (next > list.length) console.warn(`${name}: ran out of distinct notifications (${next} sent); raise BENCH_ORDERS`);
      const [[{ paid }]] = (await db.query("SELECT COUNT(*) AS paid FROM orders WHERE status = 'PAID' AND out_trade_no LIKE 'BENCH%'")) as unknown as [[{ paid: number }]];
      console.log(`${name}: ${acknowledged} answered ${okStatus}, ${paid} orders PAID`);
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

    const mean = (x: LoadResult, y: LoadResult, name: string): LoadResult => ({
      name,
      requestsPerSec: (x.requestsPerSec + y.requestsPerSec) / 2,
      p50Ms: (x.p50Ms + y.p50Ms) / 2,
      p99Ms: (x.p99Ms + y.p99Ms) / 2,
      errors: x.errors + y.errors,
      non2xx: x.non2xx + y.non2xx,
    });
    const ratios: string[] = [];

    if (VERSIONS.includes('v3')) {
      const publicKeyPath = join(dataDir, 'sandbox', 'wechatpay_public_key.pem');
      const a = await startBaseline('notify-verify-only.js', publicKeyPath, keystore.apiv3Key);
      const ra = await run('(a) bare http: verify + decrypt + parse', a.url);
      a.child.kill();
      const b = await startBaseline('notify-mysql2.js', publicKeyPath, keystore.apiv3Key, scratch.url);
      const ourUrl = `${app.base}/notify/wechatpay/transaction`;
      const rb1 = await run('(b) hand-written mysql2, 1 transaction per notification', b.url);
      const ours1 = await run('wechat-h5-pay POST /notify/wechatpay/transaction', ourUrl);
      const rb2 = await run('(b) again', b.url);
      const ours2 = await run('wechat-h5-pay again', ourUrl);
      b.child.kill();
      const rb = mean(rb1, rb2, '(b) hand-written mysql2 transaction per notification (mean of 2)');
      const ours = mean(ours1, ours2, 'wechat-h5-pay notify endpoint (mean of 2)');
      printTable(`APIv3 notifications into MariaDB, ${SECONDS}s per run, ${CONNECTIONS} connections, Node ${process.version}`, [rb, ra, ours]);
      ratios.push(`v3: ratio ours : (b) = ${(ours.requestsPerSec / rb.requestsPerSec).toFixed(2)} (target >= 1.5), p99 ${ours.p99Ms} ms vs ${rb.p99Ms} ms (target: lower)`);
    }

    if (VERSIONS.includes('v2')) {
      // The same merchant as an APIv2 deployment (its sandbox keystore's APIv2 key), HMAC-SHA256 as by default.
      await app.stop();
      app = await start({ WECHATPAY_API_VERSION: 'v2', WECHATPAY_V2_SIGN_TYPE: 'HMAC-SHA256' });
      const v2Notifications: Notification[] = numbers.map((no, i) => {
        const fields = v2PaymentFields(keystore, no, 100, { transaction_id: `42000000002026112400${String(i).padStart(8, '0')}`, openid: 'o_bench' });
        const crafted = craftV2Notification(keystore, fields, { signType: 'HMAC-SHA256' });
        return { body: crafted.body.toString('utf8'), headers: crafted.headers };
      });
      const b2 = await startBaseline('notify-v2-mysql2.js', sandboxApiV2Key(keystore), keystore.appid, keystore.mchid, scratch.url);
      const ourUrl = `${app.base}/notify/wechatpay/v2/transaction`;
      const rb1 = await run('(b2) hand-written v2: sign + mysql2, 1 transaction per notification', b2.url, v2Notifications, 200);
      const ours1 = await run('wechat-h5-pay POST /notify/wechatpay/v2/transaction', ourUrl, v2Notifications, 200);
      const rb2 = await run('(b2) again', b2.url, v2Notifications, 200);
      const ours2 = await run('wechat-h5-pay v2 again', ourUrl, v2Notifications, 200);
      b2.child.kill();
      const rb = mean(rb1, rb2, '(b2) hand-written v2 mysql2 transaction per notification (mean of 2)');
      const ours = mean(ours1, ours2, 'wechat-h5-pay v2 notify endpoint (mean of 2)');
      printTable(`APIv2 XML notifications into MariaDB, ${SECONDS}s per run, ${CONNECTIONS} connections, Node ${process.version}`, [rb, ours]);
      ratios.push(`v2: ratio ours : (b2) = ${(ours.requestsPerSec / rb.requestsPerSec).toFixed(2)} (target >= 1.5, as v3), p99 ${ours.p99Ms} ms vs ${rb.p99Ms} ms (target: lower)`);
    }
    console.log(`\n${ratios.join('\n')}`);
    await db.end();
  } finally {
    for (const started of apps) await started.stop();
    for (const child of children) child.kill();
    await scratch.drop();
  }
}

void main().catch((error) => {
  console.error(error);
  process.exit(1);
});
