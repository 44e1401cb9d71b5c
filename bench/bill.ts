// Reconciliation of a 1,000,000-row trade bill against 1,000,000 orders in MariaDB:
// download + hash + gunzip + parse + reconcile, timed end to end, with the app's peak RSS; beside a
// baseline measured in the same run (reading and splitting the same gunzipped file into lines in
// plain Node) and our parser alone on that file.
//   DATABASE_URL=mysql://root@127.0.0.1:3306/x npx ts-node --transpile-only bench/bill.ts [rows]
import 'reflect-metadata';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createReadStream, createWriteStream, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { PassThrough } from 'node:stream';
import { createConnection } from 'mysql2/promise';
import { parseTradeBillBatches } from '../src/billing/trade-bill-parser';
import { loadOrCreateSandboxKeystore } from '../src/sandbox/keystore';
import { TradeBillRow, writeTradeBill } from '../src/sandbox/bills/trade-bill';
import { SandboxControl } from '../test/helpers/sandbox-control';
import { freePort, tempDir } from '../test/helpers/test-app';
import { createScratchDatabase, waitReady } from './lib';

const ROWS = Number(process.argv[2] ?? 1_000_000);
const ROOT = join(__dirname, '..');
const ADMIN = 'bench-admin-token-0123456789';

function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

async function main(): Promise<void> {
  const scratch = await createScratchDatabase('whp_bench_bill');
  const dataDir = tempDir('whp-bench-bill-');
  const children: ChildProcess[] = [];
  try {
    execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
    const keystore = await loadOrCreateSandboxKeystore(join(dataDir, 'sandbox'));
    // WeChat (the sandbox) in its own process, so the app's RSS is the reconciliation's alone.
    const sandboxPort = await freePort();
    const sandbox = spawn(process.execPath, ['dist/src/sandbox/standalone.js'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, SANDBOX_PORT: String(sandboxPort), DATA_DIR: dataDir, NODE_ENV: 'test', SANDBOX_PUBLIC_URL: `http://127.0.0.1:${sandboxPort}` },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.push(sandbox);
    const sandboxBase = `http://127.0.0.1:${sandboxPort}/sandbox`;
    await waitReady(sandbox, `${sandboxBase}/control/merchant`);
    const appPort = await freePort();
    const app = spawn(process.execPath, ['dist/src/main.js'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        LOG_LEVEL: 'warn',
        PORT: String(appPort),
        DATA_DIR: dataDir,
        DATABASE_URL: scratch.url,
        ADMIN_TOKENS: ADMIN,
        SEED_DEMO_PRODUCTS: 'false',
        WECHATPAY_API_BASE: sandboxBase,
        WECHAT_API_BASE: sandboxBase,
        WECHAT_OPEN_BASE: sandboxBase,
        PAYMENT_RECONCILE_INTERVAL: '1h',
        PAYMENT_CLOSE_INTERVAL: '1h',
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    children.push(app);
    await waitReady(app, `http://127.0.0.1:${appPort}/health`);

    // Yesterday in Beijing; every order paid at 10:00 + i ms that day.
    const date = new Date(Date.now() + 8 * 3600_000 - 86_400_000).toISOString().slice(0, 10);
    const dayStart = new Date(`${date}T00:00:00+08:00`).getTime();
    const no = (i: number) => `B${String(i).padStart(12, '0')}`;
    const tx = (i: number) => `4200${String(i).padStart(24, '0')}`;
    const total = (i: number) => 100 + (i % 900);

    console.log(`inserting ${ROWS} paid orders…`);
    let t = Date.now();
    const db = await createConnection({ ...scratch.server, database: scratch.name, timezone: 'Z' });
    for (let i = 0; i < ROWS; i += 5000) {
      const values = [];
      for (let j = i; j < Math.min(ROWS, i + 5000); j++) {
        const at = new Date(dayStart + 36_000_000 + j);
        values.push([no(j), 1, keystore.appid, 'o_bench', 'PAID', total(j), 'CNY', 'bench', at, tx(j), total(j), at, 0, at, at]);
      }
      await db.query(
        'INSERT INTO orders (out_trade_no, user_id, appid, openid, status, total, currency, description, expires_at, transaction_id, paid_total, paid_at, refunded_total, created_at, updated_at) VALUES ?',
        [values],
      );
    }
    console.log(`  ${((Date.now() - t) / 1000).toFixed(1)} s`);

    console.log(`writing the ${ROWS}-row bill (sandbox format, gzip)…`);
    t = Date.now();
    const gzPath = join(dataDir, `tradebill-${date}.csv.gz`);
    function* rows(): Generator<TradeBillRow> {
      for (let i = 0; i < ROWS; i++) {
        const at = new Date(dayStart + 36_000_000 + i + 8 * 3600_000).toISOString().slice(0, 19).replace('T', ' ');
        yield { time: at, appid: keystore.appid, mchid: keystore.mchid, transactionId: tx(i), outTradeNo: no(i), openid: 'o_bench', tradeType: 'JSAPI', tradeState: 'SUCCESS', bankType: 'OTHERS', total: total(i), body: 'bench', feeMilliFen: total(i) * 6 };
      }
    }
    const gzip = createGzip({ level: 6 });
    const out = createWriteStream(gzPath);
    const done = pipeline(gzip, out);
    await writeTradeBill(rows(), gzip);
    gzip.end();
    await done;
    console.log(`  ${((Date.now() - t) / 1000).toFixed(1)} s, ${(statSync(gzPath).size / 1e6).toFixed(1)} MB gzip`);
    await new SandboxControl(`http://127.0.0.1:${sandboxPort}`).registerTradeBill(date, gzPath);

    // Baseline: gunzip and split the same file into lines, plain Node; then our parser on the same
    // file. Alternated three times, best of each: the machine is noisy.
    const baselineRun = async () => {
      const started = performance.now();
      let count = 0;
      let rest = '';
      const split = new PassThrough();
      split.on('data', (chunk: Buffer) => {
        const parts = (rest + chunk.toString('utf8')).split('\n');
        rest = parts.pop()!;
        count += parts.length;
      });
      await pipeline(createReadStream(gzPath), createGunzip(), split);
      return { sec: (performance.now() - started) / 1000, count };
    };
    const parserRun = async () => {
      const started = performance.now();
      let count = 0;
      for await (const batch of parseTradeBillBatches(createReadStream(gzPath).pipe(createGunzip()))) for (const record of batch) if (record.kind === 'row') count++;
      return { sec: (performance.now() - started) / 1000, count };
    };
    let baselineSec = Infinity;
    let parseSec = Infinity;
    let lines = 0;
    let parsed = 0;
    for (let round = 0; round < 3; round++) {
      const b = await baselineRun();
      const p = await parserRun();
      baselineSec = Math.min(baselineSec, b.sec);
      parseSec = Math.min(parseSec, p.sec);
      lines = b.count;
      parsed = p.count;
    }

    // The whole reconciliation, through the app.
    t = performance.now();
    const res = await fetch(`http://127.0.0.1:${appPort}/admin/reconciliations?date=${date}`, { method: 'POST', headers: { Authorization: `Bearer ${ADMIN}` } });
    const result = (await res.json()) as { status: string; summary: { billRows: number; differenceCount: number; payments: { matched: number } } };
    const fullSec = (performance.now() - t) / 1000;
    const rss = peakRssMb(app.pid!);
    if (res.status !== 200) throw new Error(`reconciliation answered ${res.status}: ${JSON.stringify(result)}`);

    console.log(`\nbill reconciliation, ${ROWS} rows, MariaDB, Node ${process.version}`);
    console.log('| case | seconds | rows/s | ratio to baseline |');
    console.log('|---|---:|---:|---:|');
    const line = (name: string, sec: number, n: number) => console.log(`| ${name} | ${sec.toFixed(2)} | ${Math.round(n / sec).toLocaleString('en-US')} | ${(baselineSec / sec).toFixed(2)}x |`);
    line('baseline: gunzip + split into lines (plain Node)', baselineSec, lines);
    line('our streaming parser (gunzip + parse)', parseSec, parsed);
    line('whole reconciliation: apply + download + hash + gunzip + parse + compare with 1M orders', fullSec, result.summary.billRows);
    console.log(`\nreconciliation: ${result.status}, ${result.summary.payments.matched} matched, ${result.summary.differenceCount} differences, ${fullSec.toFixed(1)} s (target < 60 s)`);
    console.log(`app peak RSS ${rss.toFixed(0)} MB (target < 300 MB); parser ${(baselineSec / parseSec).toFixed(2)}x the line-split baseline (target >= 0.5)`);
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
