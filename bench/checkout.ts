// Complete checkouts per second: order → pay (JSAPI prepay) → the sandbox pays → notification applied
// (the shopper sees PAID), by concurrent shoppers, beside a baseline measured in the same run: how many
// orders per second the same app creates when nothing else happens (POST /orders alone).
//   npx ts-node --transpile-only bench/checkout.ts [seconds] [shoppers]      (SQLite)
//   DATABASE_URL=mysql://root@127.0.0.1:3306/x npx ts-node --transpile-only bench/checkout.ts   (MariaDB)
import 'reflect-metadata';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createConnection } from 'mysql2/promise';
import { loginAs } from '../test/helpers/login';
import { freePort, tempDir } from '../test/helpers/test-app';

const SECONDS = Number(process.argv[2] ?? 10);
const SHOPPERS = Number(process.argv[3] ?? 16);
const ROOT = join(__dirname, '..');
const ADMIN = 'bench-admin-token-0123456789';

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

async function main(): Promise<void> {
  const mysqlUrl = process.env.DATABASE_URL ? new URL(process.env.DATABASE_URL) : undefined;
  let dbName: string | undefined;
  let databaseUrl: string | undefined;
  if (mysqlUrl) {
    dbName = `whp_bench_checkout_${randomBytes(3).toString('hex')}`;
    const c = await createConnection({ host: mysqlUrl.hostname, port: Number(mysqlUrl.port || 3306), user: decodeURIComponent(mysqlUrl.username), password: decodeURIComponent(mysqlUrl.password) });
    await c.query(`CREATE DATABASE ${dbName} CHARACTER SET utf8mb4`);
    await c.end();
    const u = new URL(mysqlUrl.toString());
    u.pathname = `/${dbName}`;
    databaseUrl = u.toString();
  }
  let app: ChildProcess | undefined;
  try {
    execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    app = spawn(process.execPath, ['dist/src/main.js'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        LOG_LEVEL: 'warn',
        PORT: String(port),
        PUBLIC_BASE_URL: base,
        DATA_DIR: tempDir('whp-bench-checkout-'),
        ADMIN_TOKENS: ADMIN,
        ADMIN_RATE_LIMIT: '1000000',
        SEED_DEMO_PRODUCTS: 'false',
        SANDBOX_PERSIST_STATE: 'false',
        ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const deadline = Date.now() + 90_000;
    while (!(await fetch(`${base}/health`).then((r) => r.ok, () => false))) {
      if (Date.now() > deadline) throw new Error('app did not start');
      await new Promise((r) => setTimeout(r, 200));
    }
    const product = await fetch(`${base}/admin/products`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'bench', price: 100, stock: null }),
    }).then((r) => r.json() as Promise<{ id: number }>);
    const logins = await Promise.all(Array.from({ length: SHOPPERS }, (_, i) => loginAs(base, `o_bench_${i}`)));
    const json = { 'Content-Type': 'application/json' };

    const createOrder = async (auth: Record<string, string>): Promise<string> => {
      const res = await fetch(`${base}/orders`, { method: 'POST', headers: { ...auth, ...json }, body: JSON.stringify({ items: [{ productId: product.id, quantity: 1 }] }) });
      if (res.status !== 201) throw new Error(`order ${res.status}`);
      return ((await res.json()) as { outTradeNo: string }).outTradeNo;
    };

    const checkout = async (auth: Record<string, string>): Promise<void> => {
      const no = await createOrder(auth);
      const pay = await fetch(`${base}/orders/${no}/pay`, { method: 'POST', headers: auth });
      if (pay.status !== 200) throw new Error(`pay ${pay.status}`);
      const prepayId = ((await pay.json()) as { package: string }).package.replace('prepay_id=', '');
      const paid = await fetch(`${base}/sandbox/control/pay`, { method: 'POST', headers: json, body: JSON.stringify({ prepayId }) });
      if (!paid.ok) throw new Error(`sandbox pay ${paid.status}`);
      // the shopper's page polls until the server says PAID (the notification has been applied)
      for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
        const order = (await fetch(`${base}/orders/${no}`, { headers: auth }).then((r) => r.json())) as { status: string };
        if (order.status === 'PAID') return;
        await new Promise((r) => setTimeout(r, wait));
      }
    };

    const measure = async (name: string, step: (auth: Record<string, string>) => Promise<unknown>) => {
      const latencies: number[] = [];
      let errors = 0;
      const end = Date.now() + SECONDS * 1000;
      await Promise.all(
        logins.map(async (login) => {
          while (Date.now() < end) {
            const started = performance.now();
            try {
              await step(login.headers);
              latencies.push(performance.now() - started);
            } catch (error) {
              if (errors++ === 0) console.error(`${name}: ${(error as Error).message}`);
            }
          }
        }),
      );
      return { name, perSecond: latencies.length / SECONDS, p50: percentile(latencies, 50), p99: percentile(latencies, 99), errors };
    };

    const baseline = await measure('POST /orders alone (baseline)', createOrder);
    const full = await measure('order → pay → sandbox pays → notification → PAID seen', checkout);
    console.log(`\ncheckout, ${SECONDS}s each, ${SHOPPERS} concurrent shoppers, ${databaseUrl ? 'MariaDB' : 'SQLite'}, Node ${process.version}`);
    console.log('| case | per second | ratio | p50 ms | p99 ms | errors |');
    console.log('|---|---:|---:|---:|---:|---:|');
    for (const r of [baseline, full]) {
      console.log(`| ${r.name} | ${r.perSecond.toFixed(0)} | ${(r.perSecond / baseline.perSecond).toFixed(2)}x | ${r.p50.toFixed(0)} | ${r.p99.toFixed(0)} | ${r.errors} |`);
    }
  } finally {
    app?.kill();
    if (dbName && mysqlUrl) {
      const c = await createConnection({ host: mysqlUrl.hostname, port: Number(mysqlUrl.port || 3306), user: decodeURIComponent(mysqlUrl.username), password: decodeURIComponent(mysqlUrl.password) });
      await c.query(`DROP DATABASE IF EXISTS ${dbName}`);
      await c.end();
    }
  }
}

void main().catch((error) => {
  console.error(error);
  process.exit(1);
});
