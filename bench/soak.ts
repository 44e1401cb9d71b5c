// Soak: --minutes (10) of mixed traffic at a modest --rate (operations per second, default 5) against the
// app (sandbox mode; MariaDB when DATABASE_URL is set or by default, --sqlite for SQLite): browse
// (GET /products), checkout (order → pay → sandbox pays → PAID seen), cancel, refund (part of a paid
// order) and reconcile (POST /admin/reconciliations for yesterday). Every --sample (10) seconds it reads
// the app's RSS and event-loop delay p99 from its own /metrics (prom-client: process memory and
// monitorEventLoopDelay, reset at each scrape, so each sample covers its interval). Prints a table and
// writes an SVG plot (--out, default docs/soak.svg). Targets: RSS flat (last minute within 10 % of the
// second), event-loop p99 < 50 ms.
//   npm run bench:soak -- [--minutes 10] [--rate 5] [--sample 10] [--out docs/soak.svg] [--md docs/soak.md]
import 'reflect-metadata';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { loginAs } from '../test/helpers/login';
import { arg, BENCH_ADMIN_TOKEN, BenchApp, buildApp, createScratchDatabase, ScratchDatabase, startApp } from './lib';

const MINUTES = Number(arg('minutes', '10'));
const RATE = Number(arg('rate', '5'));
const SAMPLE_S = Number(arg('sample', '10'));
const OUT = resolve(arg('out', join(__dirname, '..', 'docs', 'soak.svg')));
/** The printed table and verdicts, as Markdown beside the plot. */
const MD = resolve(arg('md', OUT.replace(/\.svg$/, '') + '.md'));
const SQLITE = process.argv.includes('--sqlite');
const MIX: Array<[Kind, number]> = [
  ['browse', 50],
  ['checkout', 25],
  ['cancel', 10],
  ['refund', 10],
  ['reconcile', 5],
];
type Kind = 'browse' | 'checkout' | 'cancel' | 'refund' | 'reconcile';

interface Sample {
  atS: number;
  rssMb: number;
  heapMb: number;
  loopP99Ms: number;
  ops: number;
  errors: number;
}

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name} ([0-9.e+-]+)`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

function yesterdayInBeijing(): string {
  return new Date(Date.now() + 8 * 3600_000 - 86_400_000).toISOString().slice(0, 10);
}

function svg(samples: Sample[]): string {
  const W = 720;
  const H = 200;
  const pad = 40;
  const maxT = Math.max(1, ...samples.map((s) => s.atS));
  const panel = (title: string, values: number[], unit: string, y0: number, color: string, limit?: number) => {
    const max = Math.max(1, ...values.filter(Number.isFinite), limit ?? 0) * 1.1;
    const x = (t: number) => pad + ((W - 2 * pad) * t) / maxT;
    const y = (v: number) => y0 + H - pad / 2 - ((H - pad) * v) / max;
    const points = samples.map((s, i) => `${x(s.atS).toFixed(1)},${y(values[i]).toFixed(1)}`).join(' ');
    const limitLine = limit === undefined ? '' : `<line x1="${pad}" x2="${W - pad}" y1="${y(limit).toFixed(1)}" y2="${y(limit).toFixed(1)}" stroke="#c00" stroke-dasharray="4 3"/><text x="${W - pad}" y="${(y(limit) - 3).toFixed(1)}" font-size="10" text-anchor="end" fill="#c00">${limit} ${unit}</text>`;
    return [
      `<text x="${pad}" y="${y0 + 14}" font-size="12" font-weight="bold">${title}</text>`,
      `<line x1="${pad}" x2="${pad}" y1="${y0 + pad / 2}" y2="${y0 + H - pad / 2}" stroke="#999"/>`,
      `<line x1="${pad}" x2="${W - pad}" y1="${y0 + H - pad / 2}" y2="${y0 + H - pad / 2}" stroke="#999"/>`,
      `<text x="${pad - 4}" y="${(y(max / 1.1) + 4).toFixed(1)}" font-size="10" text-anchor="end">${(max / 1.1).toFixed(0)}</text>`,
      `<text x="${pad - 4}" y="${y0 + H - pad / 2 + 4}" font-size="10" text-anchor="end">0</text>`,
      `<text x="${W - pad}" y="${y0 + H - 4}" font-size="10" text-anchor="end">${(maxT / 60).toFixed(1)} min</text>`,
      limitLine,
      `<polyline fill="none" stroke="${color}" stroke-width="2" points="${points}"/>`,
    ].join('\n');
  };
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${2 * H + 20}" viewBox="0 0 ${W} ${2 * H + 20}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    panel('RSS (MB)', samples.map((s) => s.rssMb), 'MB', 0, '#1a7f37'),
    panel('event-loop delay p99 (ms)', samples.map((s) => s.loopP99Ms), 'ms', H + 20, '#0969da', 50),
    `</svg>`,
  ].join('\n');
}

async function main(): Promise<void> {
  const scratch: ScratchDatabase | undefined = SQLITE ? undefined : await createScratchDatabase('whp_bench_soak');
  const apps: BenchApp[] = [];
  try {
    buildApp();
    // The payment jobs run as in production (the soak includes them), so their 1h default is undone.
    const app = await startApp(
      { ...(scratch ? { DATABASE_URL: scratch.url } : {}), SANDBOX_PERSIST_STATE: 'false', PAYMENT_RECONCILE_INTERVAL: undefined, PAYMENT_CLOSE_INTERVAL: undefined },
      { dataDirPrefix: 'whp-bench-soak-' },
    );
    apps.push(app);
    const base = app.base;

    const json = { 'Content-Type': 'application/json' };
    const admin = { Authorization: `Bearer ${BENCH_ADMIN_TOKEN}`, ...json };
    const post = (path: string, body: unknown, headers: Record<string, string>) => fetch(`${base}${path}`, { method: 'POST', headers: { ...json, ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
    const product = (await (await post('/admin/products', { name: '耐久测试商品', price: 1000, stock: null }, admin)).json()) as { id: number };
    const shoppers = await Promise.all(Array.from({ length: 8 }, (_, i) => loginAs(base, `o_soak_${i}`).then((l) => l.headers)));
    const paidOrders: string[] = [];
    let turn = 0;
    const shopper = () => shoppers[turn++ % shoppers.length];

    const place = async (auth: Record<string, string>) => {
      const res = await post('/orders', { items: [{ productId: product.id, quantity: 1 }] }, auth);
      if (res.status !== 201) throw new Error(`order ${res.status}`);
      return ((await res.json()) as { outTradeNo: string }).outTradeNo;
    };
    const ops: Record<Kind, () => Promise<void>> = {
      browse: async () => {
        const res = await fetch(`${base}/products`);
        if (!res.ok) throw new Error(`products ${res.status}`);
        await res.arrayBuffer();
      },
      checkout: async () => {
        const auth = shopper();
        const no = await place(auth);
        const pay = await fetch(`${base}/orders/${no}/pay`, { method: 'POST', headers: auth });
        if (pay.status !== 200) throw new Error(`pay ${pay.status}`);
        const prepayId = ((await pay.json()) as { package: string }).package.replace('prepay_id=', '');
        const paid = await post('/sandbox/control/pay', { prepayId }, {});
        if (!paid.ok) throw new Error(`sandbox pay ${paid.status}`);
        for (let i = 0; i < 100; i++) {
          const order = (await fetch(`${base}/orders/${no}`, { headers: auth }).then((r) => r.json())) as { status: string };
          if (order.status === 'PAID') {
            paidOrders.push(no);
            return;
          }
          await new Promise((r) => setTimeout(r, 50));
        }
        throw new Error(`order ${no} not PAID`);
      },
      cancel: async () => {
        const auth = shopper();
        const no = await place(auth);
        const res = await post(`/orders/${no}/cancel`, undefined, auth);
        if (res.status !== 200) throw new Error(`cancel ${res.status}`);
      },
      refund: async () => {
        if (!paidOrders.length) await ops.checkout(); // nothing paid yet to refund: pay one first
        const no = paidOrders.shift()!;
        const res = await post('/admin/refunds', { outTradeNo: no, amount: 100, reason: '耐久测试' }, admin);
        if (res.status !== 201 && res.status !== 200) throw new Error(`refund ${res.status}`);
      },
      reconcile: async () => {
        const res = await post(`/admin/reconciliations?date=${yesterdayInBeijing()}`, undefined, admin);
        // 409 RECONCILIATION_RUNNING: another run of the day is under way, which is fine here
        if (res.status !== 200 && res.status !== 409) throw new Error(`reconcile ${res.status}`);
      },
    };
    const totalWeight = MIX.reduce((s, [, w]) => s + w, 0);
    const pick = (): Kind => {
      let r = Math.random() * totalWeight;
      for (const [kind, w] of MIX) if ((r -= w) < 0) return kind;
      return 'browse';
    };

    const counts: Record<string, number> = {};
    const errorCounts: Record<string, number> = {};
    let opsDone = 0;
    let errors = 0;
    let inFlight = 0;
    const started = Date.now();
    const end = started + MINUTES * 60_000;
    const scrape = async () => {
      const text = await fetch(`${base}/metrics`).then((r) => r.text());
      return { rssMb: metric(text, 'whp_process_resident_memory_bytes') / 1e6, heapMb: metric(text, 'whp_nodejs_heap_size_used_bytes') / 1e6, loopP99Ms: metric(text, 'whp_nodejs_eventloop_lag_p99_seconds') * 1000 };
    };
    await scrape(); // resets the event-loop histogram: samples cover the run only
    const samples: Sample[] = [];
    let lastOps = 0;
    let lastErrors = 0;
    const sampler = setInterval(() => {
      void scrape().then((m) => {
        samples.push({ atS: (Date.now() - started) / 1000, ...m, ops: opsDone - lastOps, errors: errors - lastErrors });
        lastOps = opsDone;
        lastErrors = errors;
      });
    }, SAMPLE_S * 1000);
    console.log(`soaking for ${MINUTES} min at ${RATE} ops/s…`);
    await new Promise<void>((done) => {
      const tick = setInterval(() => {
        if (Date.now() >= end) {
          clearInterval(tick);
          const wait = setInterval(() => {
            if (inFlight === 0) {
              clearInterval(wait);
              done();
            }
          }, 50);
          return;
        }
        if (inFlight > RATE * 10) return; // the app is falling behind: do not pile up
        const kind = pick();
        inFlight++;
        ops[kind]().then(
          () => {
            counts[kind] = (counts[kind] ?? 0) + 1;
            opsDone++;
          },
          (error: Error) => {
            if ((errorCounts[kind] = (errorCounts[kind] ?? 0) + 1) === 1) console.error(`${kind}: ${error.message}`);
            errors++;
          },
        ).finally(() => inFlight--);
      }, 1000 / RATE);
    });
    clearInterval(sampler);
    samples.push({ atS: (Date.now() - started) / 1000, ...(await scrape()), ops: opsDone - lastOps, errors: errors - lastErrors });

    const out: string[] = [];
    out.push(`\nsoak: ${MINUTES} min at ${RATE} ops/s on ${scratch ? 'MariaDB' : 'SQLite'}, Node ${process.version}`);
    out.push(`operations: ${MIX.map(([k]) => `${k} ${counts[k] ?? 0}${errorCounts[k] ? ` (${errorCounts[k]} failed)` : ''}`).join(', ')}`);
    out.push('| t (s) | RSS MB | heap used MB | event-loop p99 ms | ops | errors |');
    out.push('|---:|---:|---:|---:|---:|---:|');
    for (const s of samples) out.push(`| ${s.atS.toFixed(0)} | ${s.rssMb.toFixed(1)} | ${s.heapMb.toFixed(1)} | ${s.loopP99Ms.toFixed(1)} | ${s.ops} | ${s.errors} |`);
    // RSS flat: the last minute's mean within 10 % of the second minute's (of whatever the run has)
    const window = (fromS: number, toS: number) => samples.filter((s) => s.atS > fromS && s.atS <= toS).map((s) => s.rssMb);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / (xs.length || NaN);
    const runS = samples.at(-1)?.atS ?? 0;
    const second = mean(window(60, 120));
    const last = mean(window(runS - 60, runS));
    const loopP99 = Math.max(...samples.map((s) => s.loopP99Ms));
    if (Number.isFinite(second)) out.push(`\nRSS last minute ${last.toFixed(1)} MB vs second minute ${second.toFixed(1)} MB: ${((last / second - 1) * 100).toFixed(1)} % (target within 10 %)`);
    else out.push('\nRSS trend: the run is under two minutes (no second minute to compare with)');
    out.push(`worst event-loop delay p99 ${loopP99.toFixed(1)} ms (target < 50 ms)`);
    for (const line of out) console.log(line);
    mkdirSync(dirname(OUT), { recursive: true });
    writeFileSync(OUT, svg(samples));
    writeFileSync(MD, `# Soak run\n\nWritten by \`npm run bench:soak\` (bench/soak.ts) on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${process.env.BENCH_LOAD_NOTE ?? `load average ${loadavg().map((l) => l.toFixed(1)).join(', ')} at the end`} (2-core machine shared with other work). Plot: [soak.svg](${basename(OUT)}).\n\n${out.join('\n').trim()}\n`);
    console.log(`plot: ${OUT}, table: ${MD}`);
  } finally {
    for (const app of apps) await app.stop();
    await scratch?.drop();
  }
}

void main().catch((error) => {
  console.error(error);
  process.exit(1);
});
