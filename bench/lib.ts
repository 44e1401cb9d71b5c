// Shared helpers for the benchmarks under bench/. Every benchmark prints its result as a ratio to a
// baseline measured in the same run on the same machine, never as an absolute pass/fail: the machine
// is small and noisy, so only same-run comparisons mean anything.
import autocannon from 'autocannon';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createConnection } from 'mysql2/promise';

/** Polls `url` until it answers below 500 (90 s at most), failing at once if `child` exits. */
export async function waitReady(child: ChildProcess, url: string): Promise<void> {
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    const ok = await fetch(url).then((r) => r.status < 500, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not come up`);
}

export interface ScratchDatabase {
  name: string;
  /** mysql://…/<name>, for DATABASE_URL and mysql2's `uri`. */
  url: string;
  /** The server's host, port, user and password (no database). */
  server: { host: string; port: number; user: string; password: string };
  drop(): Promise<void>;
}

/** A fresh database `<prefix>_<random>` on the server of DATABASE_URL (default root@127.0.0.1:3306), for one run. */
export async function createScratchDatabase(prefix: string): Promise<ScratchDatabase> {
  const url = new URL(process.env.DATABASE_URL || 'mysql://root@127.0.0.1:3306/whp_bench');
  const server = { host: url.hostname, port: Number(url.port || 3306), user: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
  const name = `${prefix}_${randomBytes(3).toString('hex')}`;
  const admin = await createConnection(server);
  await admin.query(`CREATE DATABASE ${name} CHARACTER SET utf8mb4`);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    server,
    async drop() {
      await admin.query(`DROP DATABASE IF EXISTS ${name}`);
      await admin.end();
    },
  };
}

export interface LoadResult {
  name: string;
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
}

export interface LoadOptions {
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  connections?: number;
  durationSec?: number;
  /** For distinct requests per call (e.g. one notification each). */
  setupClient?: (client: autocannon.Client) => void;
  requests?: autocannon.Request[];
}

/**
 * Runs autocannon in a separate process (the load generator must not share the event loop of the
 * server it measures), unless the options need in-process hooks (setupClient / requests).
 */
export async function load(name: string, options: LoadOptions): Promise<LoadResult> {
  if (!options.setupClient && !options.requests) return loadInChild(name, options);
  const result = await autocannon({
    url: options.url,
    method: options.method ?? 'GET',
    headers: options.headers,
    body: options.body,
    connections: options.connections ?? 16,
    duration: options.durationSec ?? 10,
    setupClient: options.setupClient,
    requests: options.requests,
  });
  return {
    name,
    requestsPerSec: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

/** Prints rows relative to the first (the baseline). */
export function printTable(title: string, rows: LoadResult[]): void {
  const base = rows[0];
  console.log(`\n${title}`);
  console.log('| case | req/s | ratio | p50 ms | p99 ms | errors | non-2xx |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const row of rows) {
    console.log(
      `| ${row.name} | ${row.requestsPerSec.toFixed(0)} | ${(row.requestsPerSec / base.requestsPerSec).toFixed(2)}x | ${row.p50Ms} | ${row.p99Ms} | ${row.errors} | ${row.non2xx} |`,
    );
  }
}

/** Runs fn repeatedly for ~durationMs (after a warm-up) and returns operations per second. */
export function opsPerSecond(fn: () => unknown, durationMs = 1500): number {
  const warmUntil = performance.now() + 200;
  while (performance.now() < warmUntil) fn();
  let ops = 0;
  const start = performance.now();
  let now = start;
  while (now - start < durationMs) {
    for (let i = 0; i < 50; i++) fn();
    ops += 50;
    now = performance.now();
  }
  return (ops * 1000) / (now - start);
}

async function loadInChild(name: string, options: LoadOptions): Promise<LoadResult> {
  const { spawn } = await import('node:child_process');
  const args = [
    require.resolve('autocannon/autocannon.js'),
    '-j',
    '-c',
    String(options.connections ?? 16),
    '-d',
    String(options.durationSec ?? 10),
    '-m',
    options.method ?? 'GET',
  ];
  for (const [k, v] of Object.entries(options.headers ?? {})) args.push('-H', `${k}=${v}`);
  if (options.body) args.push('-b', options.body);
  args.push(options.url);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)));
  if (code !== 0) throw new Error(`autocannon exited with ${code}`);
  const result = JSON.parse(out) as autocannon.Result;
  return {
    name,
    requestsPerSec: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

/** `--name value` (or `--name=value`) from the command line, else the fallback. */
export function arg(name: string, fallback: string): string {
  const argv = process.argv;
  for (let i = 2; i < argv.length; i++) {
    if (argv[i] === `--${name}` && argv[i + 1] !== undefined) return argv[i + 1];
    if (argv[i].startsWith(`--${name}=`)) return argv[i].slice(name.length + 3);
  }
  return fallback;
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/**
 * User + system CPU seconds a process has used so far (what its process.cpuUsage() reports), read from
 * /proc/<pid>/stat (Linux; clock ticks, normally 100 per second), so servers need no endpoint for it.
 */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // after "pid (comm) ", field 3 (state) is index 0: utime is field 14, stime 15
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * The standalone sandbox (`npm run sandbox`, compiled: run tsc first) in its own process on a free
 * port, keystore under dataDir/sandbox; resolves once it has printed its configuration.
 */
export async function startStandaloneSandbox(dataDir: string, env: Record<string, string> = {}): Promise<{ child: ChildProcess; base: string }> {
  const { spawn } = await import('node:child_process');
  const { freePort } = await import('../test/helpers/test-app');
  const port = await freePort();
  const child = spawn(process.execPath, ['dist/src/sandbox/standalone.js'], {
    cwd: join(__dirname, '..'),
    env: { PATH: process.env.PATH, SANDBOX_PORT: String(port), SANDBOX_PUBLIC_URL: `http://127.0.0.1:${port}`, DATA_DIR: dataDir, NODE_ENV: 'test', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const deadline = Date.now() + 90_000;
  while (!out.includes('Test controls')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the standalone sandbox did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, base: `http://127.0.0.1:${port}/sandbox` };
}

export const BENCH_ADMIN_TOKEN = 'bench-admin-token-0123456789';

/** Compiles the app (tsc -p tsconfig.build.json) into dist/, as every benchmark runs the compiled app. */
export function buildApp(): void {
  console.log('building…');
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: join(__dirname, '..'), stdio: 'inherit' });
}

export interface BenchApp {
  child: ChildProcess;
  base: string;
  port: number;
  /** Ends the app; with BENCH_CPU_PROF set, lets it exit normally first so that its .cpuprofile is written. */
  stop(): Promise<void>;
}

/**
 * Starts the compiled app (dist/src/main.js) on a free port with what every benchmark needs: development
 * mode, LOG_LEVEL (default warn), a fresh DATA_DIR, an admin token, rate limits and per-shopper limits out
 * of the way, no demo products, the scheduled payment jobs kept out of the measurement (1h); `env` adds
 * or overrides (DATABASE_URL, live-mode WeChat settings, …; undefined removes one). Waits until /health answers.
 * BENCH_CPU_PROF=<dir>: the app runs under `node --cpu-prof` and writes its V8 profile there on stop().
 */
export async function startApp(env: Record<string, string | undefined>, options: { dataDirPrefix?: string } = {}): Promise<BenchApp> {
  const { spawn } = await import('node:child_process');
  const { freePort, tempDir } = await import('../test/helpers/test-app');
  const { GENEROUS_SHOPPER_LIMITS } = await import('../test/helpers/shop');
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const profileDir = process.env.BENCH_CPU_PROF;
  const nodeArgs = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, '--require', join(__dirname, 'exit-on-sigterm.js')] : [];
  const fullEnv: Record<string, string | undefined> = {
      PATH: process.env.PATH,
      NODE_ENV: 'development',
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
      PORT: String(port),
      PUBLIC_BASE_URL: base,
      DATA_DIR: tempDir(options.dataDirPrefix ?? 'whp-bench-'),
      ADMIN_TOKENS: BENCH_ADMIN_TOKEN,
      ADMIN_RATE_LIMIT: '1000000',
      SEED_DEMO_PRODUCTS: 'false',
      ...GENEROUS_SHOPPER_LIMITS,
      AUTH_AUTHORIZE_RATE_LIMIT: '1000000',
      PAYMENT_RECONCILE_INTERVAL: '1h',
      PAYMENT_CLOSE_INTERVAL: '1h',
      ...env,
  };
  for (const key of Object.keys(fullEnv)) if (fullEnv[key] === undefined) delete fullEnv[key];
  const child = spawn(process.execPath, [...nodeArgs, 'dist/src/main.js'], { cwd: join(__dirname, '..'), env: fullEnv, stdio: ['ignore', 'inherit', 'inherit'] });
  await waitReady(child, `${base}/health`);
  return {
    child,
    base,
    port,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
      if (profileDir) console.log(`CPU profile of the app under ${profileDir}`);
    },
  };
}
