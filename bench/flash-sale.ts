// A flash sale on MariaDB: one product with --units (50) units, --shoppers (500) shoppers racing
// POST /orders at once. Checks that exactly `units` orders succeed, every other shopper gets 409
// OUT_OF_STOCK, and the stock ends at 0 (never below) — exits 1 otherwise. Prints orders/s (answers per
// second of the race) and p99 beside two baselines on the same database in the same run:
//   (b)  the target: a hand-written loop of the same number of concurrent attempts, each one
//        mysql2 transaction with the guarded `UPDATE … SET stock = stock - ? WHERE id = ? AND stock >= ?`
//        and an order insert when it took a unit — no HTTP at all;
//   (b2) a minimal hand-written node:http + mysql2 server in its own process
//        (bench/baselines/flash-sale-mysql2.js: session lookup by token, then that guarded transaction
//        with the order and its item, 409 when short), driven by the same load generator as the app, so
//        the cost of HTTP itself is visible apart from the app's.
//   npm run bench:flash-sale -- [--units 50] [--shoppers 500] [--rounds 1]
//   DATABASE_URL=mysql://root@127.0.0.1:3306/x (server; each run makes and drops its own database)
import 'reflect-metadata';
import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createPool } from 'mysql2/promise';
import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { loginAs } from '../test/helpers/login';
import { freePort } from '../test/helpers/test-app';
import { arg, BENCH_ADMIN_TOKEN, BenchApp, buildApp, createScratchDatabase, percentile, startApp } from './lib';

const UNITS = Number(arg('units', '50'));
const SHOPPERS = Number(arg('shoppers', '500'));
const ROUNDS = Number(arg('rounds', '1'));
const B_NAME = '(b) hand-written guarded UPDATE … WHERE stock >= ? (mysql2 loop, no HTTP)';
const B2_NAME = '(b2) hand-written node:http + mysql2 server (session + guarded UPDATE transaction)';
const OURS_NAME = 'wechat-h5-pay POST /orders';

interface RaceResult {
  name: string;
  succeeded: number;
  outOfStock: number;
  other: string[];
  ordersPerSecond: number;
  p50: number;
  p99: number;
  stockLeft: number;
}

async function inBatches<T>(count: number, width: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, count) }, async () => {
      while (next < count) {
        const i = next++;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}

/** The hand-written guarded decrement: one transaction per attempt. */
async function handWrittenRace(pool: Pool): Promise<RaceResult> {
  const [created] = await pool.query<ResultSetHeader>('INSERT INTO b_flash_products (stock) VALUES (?)', [UNITS]);
  const productId = created.insertId;
  const latencies: number[] = [];
  let succeeded = 0;
  let outOfStock = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: SHOPPERS }, async (_, i) => {
      const t0 = performance.now();
      const conn = await pool.getConnection();
      try {
        await conn.beginTransaction();
        const [res] = await conn.execute<ResultSetHeader>('UPDATE b_flash_products SET stock = stock - ? WHERE id = ? AND stock >= ?', [1, productId, 1]);
        if (res.affectedRows) {
          await conn.execute('INSERT INTO b_flash_orders (product_id, shopper, quantity, created_at) VALUES (?, ?, 1, NOW(3))', [productId, i]);
          succeeded++;
        } else outOfStock++;
        await conn.commit();
      } catch (error) {
        await conn.rollback().catch(() => undefined);
        throw error;
      } finally {
        conn.release();
      }
      latencies.push(performance.now() - t0);
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const [[row]] = await pool.query<RowDataPacket[]>('SELECT stock FROM b_flash_products WHERE id = ?', [productId]);
  return { name: B_NAME, succeeded, outOfStock, other: [], ordersPerSecond: SHOPPERS / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99), stockLeft: Number(row.stock) };
}

async function main(): Promise<void> {
  const scratch = await createScratchDatabase('whp_bench_flash');
  const apps: BenchApp[] = [];
  let pool: Pool | undefined;
  let b2: ChildProcess | undefined;
  let failed = false;
  try {
    buildApp();
    const app = await startApp({ DATABASE_URL: scratch.url, SANDBOX_PERSIST_STATE: 'false' }, { dataDirPrefix: 'whp-bench-flash-' });
    apps.push(app);
    const base = app.base;

    pool = createPool({ uri: scratch.url, connectionLimit: 20, timezone: 'Z' });
    await pool.query('CREATE TABLE b_flash_products (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, stock INT NOT NULL)');
    await pool.query('CREATE TABLE b_flash_orders (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, product_id BIGINT UNSIGNED NOT NULL, shopper INT NOT NULL, quantity INT NOT NULL, created_at DATETIME(3) NOT NULL)');

    console.log(`logging ${SHOPPERS} shoppers in…`);
    const shoppers = await inBatches(SHOPPERS, 16, (i) => loginAs(base, `o_flash_${i}`).then((l) => l.headers));

    // The b2 server: its own process, same database, its own tables.
    const b2Port = await freePort();
    const b2Base = `http://127.0.0.1:${b2Port}`;
    const b2Child = spawn(process.execPath, [join(__dirname, 'baselines', 'flash-sale-mysql2.js'), String(b2Port), scratch.url], { stdio: ['ignore', 'pipe', 'inherit'] });
    b2 = b2Child;
    await new Promise<void>((resolve, reject) => {
      b2Child.stdout!.once('data', () => resolve());
      b2Child.once('exit', (code) => reject(new Error(`baseline b2 exited with ${code}`)));
    });
    const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) });
    const b2Shoppers = await inBatches(SHOPPERS, 16, async (i) => {
      const { token } = (await (await post(`${b2Base}/bench/session`, { openid: `o_flash_${i}` })).json()) as { token: string };
      return { Authorization: `Bearer ${token}` };
    });

    /** Every shopper sends one POST /orders at once: the same load generator for the app and b2. */
    const httpRace = async (name: string, target: string, auths: Array<Record<string, string>>, productId: number, stockLeft: () => Promise<number>): Promise<RaceResult> => {
      const latencies: number[] = [];
      const statuses: Array<{ status: number; code?: string }> = [];
      const started = performance.now();
      await Promise.all(
        auths.map(async (auth) => {
          const t0 = performance.now();
          const r = await fetch(`${target}/orders`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify({ items: [{ productId, quantity: 1 }] }) });
          const body = (await r.json().catch(() => ({}))) as { code?: string };
          latencies.push(performance.now() - t0);
          statuses.push({ status: r.status, code: body.code });
        }),
      );
      const elapsed = (performance.now() - started) / 1000;
      const other = statuses.filter((s) => s.status !== 201 && !(s.status === 409 && s.code === 'OUT_OF_STOCK')).map((s) => `${s.status} ${s.code}`);
      return {
        name,
        succeeded: statuses.filter((s) => s.status === 201).length,
        outOfStock: statuses.filter((s) => s.status === 409 && s.code === 'OUT_OF_STOCK').length,
        other,
        ordersPerSecond: SHOPPERS / elapsed,
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        stockLeft: await stockLeft(),
      };
    };
    const stockOf = (table: string, id: number) => async (): Promise<number> => {
      const [[row]] = await pool!.query<RowDataPacket[]>(`SELECT stock FROM ${table} WHERE id = ?`, [id]);
      return Number(row.stock);
    };
    const b2Race = async (): Promise<RaceResult> => {
      const { id } = (await (await post(`${b2Base}/bench/product`, { name: '秒杀商品', price: 100, stock: UNITS })).json()) as { id: number };
      return httpRace(B2_NAME, b2Base, b2Shoppers, id, stockOf('b2_products', id));
    };
    const appRace = async (): Promise<RaceResult> => {
      const res = await post(`${base}/admin/products`, { name: '秒杀商品', price: 100, stock: UNITS }, { Authorization: `Bearer ${BENCH_ADMIN_TOKEN}` });
      const product = (await res.json()) as { id: number };
      return httpRace(OURS_NAME, base, shoppers, product.id, stockOf('products', product.id));
    };

    const results: RaceResult[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      results.push(await handWrittenRace(pool));
      results.push(await b2Race());
      results.push(await appRace());
    }
    console.log(`\nflash sale on MariaDB: ${UNITS} units, ${SHOPPERS} shoppers at once, ${ROUNDS} round(s), Node ${process.version}`);
    console.log('| case | succeeded | 409 OUT_OF_STOCK | other | stock left | answers/s | ratio (b) | ratio (b2) | p50 ms | p99 ms |');
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    const mean = (rs: RaceResult[]) => rs.reduce((sum, r) => sum + r.ordersPerSecond, 0) / rs.length;
    const ours = results.filter((r) => r.name === OURS_NAME);
    const theirs = results.filter((r) => r.name === B_NAME);
    const overHttp = results.filter((r) => r.name === B2_NAME);
    for (const r of results) {
      console.log(
        `| ${r.name} | ${r.succeeded} | ${r.outOfStock} | ${r.other.length} | ${r.stockLeft} | ${r.ordersPerSecond.toFixed(0)} | ${(r.ordersPerSecond / mean(theirs)).toFixed(2)}x | ${(r.ordersPerSecond / mean(overHttp)).toFixed(2)}x | ${r.p50.toFixed(0)} | ${r.p99.toFixed(0)} |`,
      );
      if (r.succeeded !== UNITS || r.outOfStock !== SHOPPERS - UNITS || r.stockLeft !== 0 || r.other.length) {
        failed = true;
        console.error(`FAILED: ${r.name}: ${r.succeeded} succeeded (want ${UNITS}), ${r.outOfStock} OUT_OF_STOCK (want ${SHOPPERS - UNITS}), stock ${r.stockLeft} (want 0), other answers: ${r.other.slice(0, 5).join(', ')}`);
      }
    }
    console.log(
      `\nratio ours : (b) = ${(mean(ours) / mean(theirs)).toFixed(2)} answers/s (target >= 0.8); ours : (b2) = ${(mean(ours) / mean(overHttp)).toFixed(2)} (same load generator, HTTP in both); oversold: ${failed ? 'CHECK FAILED' : 'never'}`,
    );
  } finally {
    await pool?.end();
    b2?.kill('SIGTERM');
    for (const app of apps) await app.stop();
    await scratch.drop();
  }
  if (failed) process.exit(1);
}

void main().catch((error) => {
  console.error(error);
  process.exit(1);
});
