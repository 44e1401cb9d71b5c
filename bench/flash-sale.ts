// A flash sale on MariaDB: one product with --units (50) units, --shoppers (500) shoppers racing
// POST /orders at once. Checks that exactly `units` orders succeed, every other shopper gets 409
// OUT_OF_STOCK, and the stock ends at 0 (never below) — exits 1 otherwise. Prints orders/s (answers per
// second of the race) and p99 beside a baseline on the same database in the same run: a hand-written
// loop of the same number of concurrent attempts, each one mysql2 transaction with the guarded
// `UPDATE … SET stock = stock - ? WHERE id = ? AND stock >= ?` and an order insert when it took a unit.
//   npm run bench:flash-sale -- [--units 50] [--shoppers 500] [--rounds 1]
//   DATABASE_URL=mysql://root@127.0.0.1:3306/x (server; each run makes and drops its own database)
import 'reflect-metadata';
import { createPool } from 'mysql2/promise';
import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { loginAs } from '../test/helpers/login';
import { arg, BENCH_ADMIN_TOKEN, BenchApp, buildApp, createScratchDatabase, percentile, startApp } from './lib';

const UNITS = Number(arg('units', '50'));
const SHOPPERS = Number(arg('shoppers', '500'));
const ROUNDS = Number(arg('rounds', '1'));

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
  return { name: '(b) hand-written guarded UPDATE … WHERE stock >= ? (mysql2)', succeeded, outOfStock, other: [], ordersPerSecond: SHOPPERS / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99), stockLeft: Number(row.stock) };
}

async function main(): Promise<void> {
  const scratch = await createScratchDatabase('whp_bench_flash');
  const apps: BenchApp[] = [];
  let pool: Pool | undefined;
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

    const appRace = async (): Promise<RaceResult> => {
      const res = await fetch(`${base}/admin/products`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${BENCH_ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: '秒杀商品', price: 100, stock: UNITS }),
      });
      const product = (await res.json()) as { id: number };
      const latencies: number[] = [];
      const statuses: Array<{ status: number; code?: string }> = [];
      const started = performance.now();
      await Promise.all(
        shoppers.map(async (auth) => {
          const t0 = performance.now();
          const r = await fetch(`${base}/orders`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify({ items: [{ productId: product.id, quantity: 1 }] }) });
          const body = (await r.json().catch(() => ({}))) as { code?: string };
          latencies.push(performance.now() - t0);
          statuses.push({ status: r.status, code: body.code });
        }),
      );
      const elapsed = (performance.now() - started) / 1000;
      const [[row]] = await pool!.query<RowDataPacket[]>('SELECT stock FROM products WHERE id = ?', [product.id]);
      const other = statuses.filter((s) => s.status !== 201 && !(s.status === 409 && s.code === 'OUT_OF_STOCK')).map((s) => `${s.status} ${s.code}`);
      return {
        name: 'wechat-h5-pay POST /orders',
        succeeded: statuses.filter((s) => s.status === 201).length,
        outOfStock: statuses.filter((s) => s.status === 409 && s.code === 'OUT_OF_STOCK').length,
        other,
        ordersPerSecond: SHOPPERS / elapsed,
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        stockLeft: Number(row.stock),
      };
    };

    const results: RaceResult[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      results.push(await handWrittenRace(pool));
      results.push(await appRace());
    }
    console.log(`\nflash sale on MariaDB: ${UNITS} units, ${SHOPPERS} shoppers at once, ${ROUNDS} round(s), Node ${process.version}`);
    console.log('| case | succeeded | 409 OUT_OF_STOCK | other | stock left | answers/s | ratio | p50 ms | p99 ms |');
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    const baseline = results[0];
    for (const r of results) {
      console.log(
        `| ${r.name} | ${r.succeeded} | ${r.outOfStock} | ${r.other.length} | ${r.stockLeft} | ${r.ordersPerSecond.toFixed(0)} | ${(r.ordersPerSecond / baseline.ordersPerSecond).toFixed(2)}x | ${r.p50.toFixed(0)} | ${r.p99.toFixed(0)} |`,
      );
      if (r.succeeded !== UNITS || r.outOfStock !== SHOPPERS - UNITS || r.stockLeft !== 0 || r.other.length) {
        failed = true;
        console.error(`FAILED: ${r.name}: ${r.succeeded} succeeded (want ${UNITS}), ${r.outOfStock} OUT_OF_STOCK (want ${SHOPPERS - UNITS}), stock ${r.stockLeft} (want 0), other answers: ${r.other.slice(0, 5).join(', ')}`);
      }
    }
    const ours = results.filter((r) => r.name.startsWith('wechat'));
    const theirs = results.filter((r) => !r.name.startsWith('wechat'));
    const mean = (rs: RaceResult[]) => rs.reduce((s, r) => s + r.ordersPerSecond, 0) / rs.length;
    console.log(`\nratio ours : (b) = ${(mean(ours) / mean(theirs)).toFixed(2)} answers/s (target >= 0.8), oversold: ${failed ? 'CHECK FAILED' : 'never'}`);
  } finally {
    await pool?.end();
    for (const app of apps) await app.stop();
    await scratch.drop();
  }
  if (failed) process.exit(1);
}

void main().catch((error) => {
  console.error(error);
  process.exit(1);
});
