// Complete checkouts per second: order → JSAPI prepay → WeChat pays → notification applied → the
// shopper's page sees PAID, by concurrent shoppers, on MariaDB, beside baseline (b) measured in the same
// run: a minimal hand-written checkout server (bench/baselines/checkout-mysql2.js: node:http + mysql2 +
// node:crypto, one transaction per write). Both talk to the same standalone sandbox in its own process
// (`npm run sandbox`; the in-process sandbox would share the app's one thread and hide the app's cost),
// our app in live mode against it. Also prints each server's CPU per checkout (its user + system CPU
// time over the run, as process.cpuUsage() counts it, read from /proc, divided by checkouts).
//   npm run bench:checkout -- [--seconds 10] [--shoppers 16]
//   DATABASE_URL=mysql://root@127.0.0.1:3306/x (server; each run makes and drops its own databases)
import 'reflect-metadata';
import { ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SandboxKeystore } from '../src/sandbox/keystore';
import { loginAs } from '../test/helpers/login';
import { freePort, tempDir } from '../test/helpers/test-app';
import { arg, BENCH_ADMIN_TOKEN, BenchApp, buildApp, createScratchDatabase, cpuSeconds, percentile, startApp, startStandaloneSandbox } from './lib';

const SECONDS = Number(arg('seconds', process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : '10'));
const SHOPPERS = Number(arg('shoppers', '16'));
const STOCK = 1_000_000_000;

interface Server {
  name: string;
  base: string;
  child: ChildProcess;
  /** The Authorization header of each shopper. */
  shoppers: Array<Record<string, string>>;
  /** GET /orders/:no answered (the page's status polls), over the measured run. */
  polls: number;
  /** Milliseconds spent in each step over the measured run (create, pay, WeChat pays, until PAID seen). */
  steps: Record<'create' | 'pay' | 'wechat' | 'paid', number>;
}

async function main(): Promise<void> {
  const appDb = await createScratchDatabase('whp_bench_checkout');
  const baselineDb = await createScratchDatabase('whp_bench_checkout_b');
  const children: ChildProcess[] = [];
  const apps: BenchApp[] = [];
  try {
    buildApp();
    const sandboxDataDir = tempDir('whp-bench-sandbox-');
    const sandbox = await startStandaloneSandbox(sandboxDataDir);
    children.push(sandbox.child);
    const ksDir = join(sandboxDataDir, 'sandbox');
    const ks = JSON.parse(readFileSync(join(ksDir, 'keystore.json'), 'utf8')) as SandboxKeystore;

    // Our app, live mode, configured as `npm run sandbox` prints.
    const app = await startApp(
      {
        ALLOW_INSECURE_PUBLIC_URL: 'true',
        DATABASE_URL: appDb.url,
        WECHAT_MODE: 'live',
        SESSION_SECRET: 's'.repeat(40),
        WECHATPAY_API_BASE: sandbox.base,
        WECHATPAY_API_BACKUP_BASE: sandbox.base,
        WECHAT_API_BASE: sandbox.base,
        WECHAT_OPEN_BASE: sandbox.base,
        WECHAT_APPID: ks.appid,
        WECHAT_APPSECRET: ks.appsecret,
        WECHATPAY_MCHID: ks.mchid,
        WECHATPAY_PRIVATE_KEY_PATH: join(ksDir, 'apiclient_key.pem'),
        WECHATPAY_CERT_SERIAL: ks.merchant.certSerial,
        WECHATPAY_APIV3_KEY: ks.apiv3Key,
        WECHATPAY_PUBLIC_KEY_PATH: join(ksDir, 'wechatpay_public_key.pem'),
        WECHATPAY_PUBLIC_KEY_ID: ks.publicKey.id,
      },
      { dataDirPrefix: 'whp-bench-checkout-' },
    );
    apps.push(app);
    const appBase = app.base;

    const baselinePort = await freePort();
    const baselineBase = `http://127.0.0.1:${baselinePort}`;
    const baseline = spawn(process.execPath, [join(__dirname, 'baselines', 'checkout-mysql2.js'), String(baselinePort), baselineDb.url, sandbox.base, ksDir, baselineBase], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(baseline);
    await new Promise<void>((resolve, reject) => {
      baseline.stdout!.once('data', () => resolve());
      baseline.once('exit', (code) => reject(new Error(`baseline exited with ${code}`)));
    });

    const json = { 'Content-Type': 'application/json' };
    const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(url, { method: 'POST', headers: { ...json, ...headers }, body: JSON.stringify(body) });

    console.log(`logging ${SHOPPERS} shoppers in…`);
    const openids = Array.from({ length: SHOPPERS }, (_, i) => `o_bench_${i}`);
    const ours: Server = { name: 'wechat-h5-pay (live mode)', base: appBase, child: app.child, shoppers: [], polls: 0, steps: { create: 0, pay: 0, wechat: 0, paid: 0 } };
    for (const openid of openids) ours.shoppers.push((await loginAs(appBase, openid)).headers);
    const appProduct = (await (await post(`${appBase}/admin/products`, { name: 'bench', price: 100, stock: STOCK }, { Authorization: `Bearer ${BENCH_ADMIN_TOKEN}` })).json()) as { id: number };
    const b: Server = { name: '(b) hand-written node:http + mysql2', base: baselineBase, child: baseline, shoppers: [], polls: 0, steps: { create: 0, pay: 0, wechat: 0, paid: 0 } };
    for (const openid of openids) {
      const { token } = (await (await post(`${baselineBase}/bench/session`, { openid })).json()) as { token: string };
      b.shoppers.push({ Authorization: `Bearer ${token}` });
    }
    const bProduct = (await (await post(`${baselineBase}/bench/product`, { name: 'bench', price: 100, stock: STOCK })).json()) as { id: number };

    const checkout = async (server: Server, productId: number, auth: Record<string, string>): Promise<void> => {
      let t = performance.now();
      const lap = (step: keyof Server['steps']) => {
        const now = performance.now();
        server.steps[step] += now - t;
        t = now;
      };
      const created = await post(`${server.base}/orders`, { items: [{ productId, quantity: 1 }] }, auth);
      if (created.status !== 201) throw new Error(`order ${created.status} ${await created.text()}`);
      const no = ((await created.json()) as { outTradeNo: string }).outTradeNo;
      lap('create');
      const pay = await fetch(`${server.base}/orders/${no}/pay`, { method: 'POST', headers: auth });
      if (pay.status !== 200) throw new Error(`pay ${pay.status} ${await pay.text()}`);
      const prepayId = ((await pay.json()) as { package: string }).package.replace('prepay_id=', '');
      lap('pay');
      const paid = await post(`${sandbox.base}/control/pay`, { prepayId });
      if (!paid.ok) throw new Error(`sandbox pay ${paid.status} ${await paid.text()}`);
      await paid.arrayBuffer();
      lap('wechat');
      // the shopper's page polls until the server says PAID (the notification has been applied)
      const giveUp = Date.now() + 30_000;
      for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
        const order = (await fetch(`${server.base}/orders/${no}`, { headers: auth }).then((r) => r.json())) as { status: string };
        server.polls++;
        if (order.status === 'PAID') return lap('paid');
        if (Date.now() > giveUp) throw new Error(`order ${no} stayed ${order.status}`);
        await new Promise((r) => setTimeout(r, wait));
      }
    };

    const measure = async (server: Server, productId: number) => {
      // a short warm-up (JIT, pools, certificates) outside the measurement
      await Promise.all(server.shoppers.slice(0, 4).map((auth) => checkout(server, productId, auth).catch(() => undefined)));
      const latencies: number[] = [];
      let errors = 0;
      server.polls = 0;
      server.steps = { create: 0, pay: 0, wechat: 0, paid: 0 };
      const cpuBefore = cpuSeconds(server.child.pid!);
      const started = performance.now();
      const end = Date.now() + SECONDS * 1000;
      await Promise.all(
        server.shoppers.map(async (auth) => {
          while (Date.now() < end) {
            const t0 = performance.now();
            try {
              await checkout(server, productId, auth);
              latencies.push(performance.now() - t0);
            } catch (error) {
              if (errors++ === 0) console.error(`${server.name}: ${(error as Error).message}`);
            }
          }
        }),
      );
      const elapsed = (performance.now() - started) / 1000;
      const cpu = cpuSeconds(server.child.pid!) - cpuBefore;
      return {
        name: server.name,
        perSecond: latencies.length / elapsed,
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        errors,
        cpuMsPerCheckout: latencies.length ? (cpu * 1000) / latencies.length : NaN,
        pollsPerCheckout: latencies.length ? server.polls / latencies.length : NaN,
        steps: Object.entries(server.steps).map(([step, ms]) => `${step} ${(ms / Math.max(1, latencies.length)).toFixed(0)}`).join(', '),
      };
    };

    const rb = await measure(b, bProduct.id);
    const ro = await measure(ours, appProduct.id);
    console.log(`\ncheckout on MariaDB, ${SECONDS}s each, ${SHOPPERS} concurrent shoppers, standalone sandbox in its own process, Node ${process.version}`);
    console.log('| server | checkouts/s | ratio | p50 ms | p99 ms | errors | app CPU ms / checkout | CPU ratio | status reads / checkout |');
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of [rb, ro]) {
      console.log(
        `| ${r.name} | ${r.perSecond.toFixed(1)} | ${(r.perSecond / rb.perSecond).toFixed(2)}x | ${r.p50.toFixed(0)} | ${r.p99.toFixed(0)} | ${r.errors} | ${r.cpuMsPerCheckout.toFixed(2)} | ${(r.cpuMsPerCheckout / rb.cpuMsPerCheckout).toFixed(2)}x | ${r.pollsPerCheckout.toFixed(1)} |`,
      );
    }
    for (const r of [rb, ro]) console.log(`${r.name}: mean ms per step: ${r.steps}`);
    console.log(
      `\nratio ours : (b) = ${(ro.perSecond / rb.perSecond).toFixed(2)} checkouts/s (target >= 0.8), CPU per checkout ${(ro.cpuMsPerCheckout / rb.cpuMsPerCheckout).toFixed(2)}x (target <= 1.3)`,
    );
  } finally {
    for (const app of apps) await app.stop();
    for (const child of children) child.kill();
    await appDb.drop();
    await baselineDb.drop();
  }
}

void main().catch((error) => {
  console.error(error);
  process.exit(1);
});
