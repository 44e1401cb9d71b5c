import { INestApplication } from '@nestjs/common';
import { Test, TestingModuleBuilder } from '@nestjs/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { configureApp } from '../../src/app.factory';
import { AppModule } from '../../src/app.module';
import { AppConfig } from '../../src/config/app-config';
import { loadConfig } from '../../src/config/load-config';
import { TestDatabase, createMysqlDatabase, useMysql } from './mysql';

export interface TestAppOptions {
  /** Extra environment variables (the test env starts empty: process.env is not inherited). */
  env?: Record<string, string>;
  /** Share a data dir (SQLite file, sandbox keystore) between instances. */
  dataDir?: string;
  /** Share a database between instances; by default each app gets a fresh one. */
  database?: TestDatabase;
  /** Capture log lines (as parsed JSON) in `logs`; level defaults to debug when capturing. */
  captureLogs?: boolean;
  /** Scheduled jobs; default off so that tests decide when jobs run. */
  schedules?: boolean;
  /** Extra modules mounted beside the app (e.g. a probe controller in a test). */
  extraModules?: Array<import('@nestjs/common').Type<unknown> | import('@nestjs/common').DynamicModule>;
  /** Override providers, e.g. the Clock. */
  override?: (builder: TestingModuleBuilder) => TestingModuleBuilder;
}

export interface TestApp {
  app: INestApplication;
  config: AppConfig;
  /** http://127.0.0.1:<port> — also PUBLIC_BASE_URL. */
  baseUrl: string;
  dataDir: string;
  logs: Array<Record<string, unknown>>;
  /** Every raw log line, for "this secret never appears" assertions. */
  rawLogs: string[];
  database: TestDatabase;
  close(): Promise<void>;
}

/**
 * A port for a server the test starts later (its URL must be known first). Chosen outside Linux's
 * ephemeral range (32768–60999): a port the kernel handed out (listen(0)) and freed can be taken, before
 * the test listens on it, as the local port of any outgoing connection on the machine (MariaDB, HTTP
 * clients: CI saw EADDRINUSE that way). Each jest worker draws from its own slice of 20000–32767, at
 * random, skips ports this process already handed out, and checks the port is free.
 */
const handedOut = new Set<number>();
const PORT_LOW = 20000;
const PORT_HIGH = 32767;

export async function freePort(): Promise<number> {
  const worker = Math.max(1, Number(process.env.JEST_WORKER_ID ?? 1));
  const slices = 8;
  const size = Math.floor((PORT_HIGH - PORT_LOW + 1) / slices);
  const low = PORT_LOW + ((worker - 1) % slices) * size;
  for (let tries = 0; tries < 200; tries++) {
    const port = low + Math.floor(Math.random() * size);
    if (handedOut.has(port)) continue;
    if (await canListen(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port found in ${low}-${low + size - 1}`);
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '0.0.0.0', () => server.close(() => resolve(true)));
  });
}

export function tempDir(prefix = 'whp-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Fresh database for one or more app instances: MySQL when TEST_DB=mysql, else a SQLite file. */
export async function createTestDatabase(dataDir = tempDir()): Promise<TestDatabase> {
  if (useMysql()) return createMysqlDatabase();
  return { sqlitePath: join(dataDir, 'wechat-h5-pay.sqlite'), drop: async () => undefined };
}

/**
 * Starts the whole application on a free port of 127.0.0.1, in sandbox mode by default, with its
 * own data dir and database (SQLite, or MySQL when TEST_DB=mysql). Real HTTP, real database.
 */
export async function startTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const ownDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? tempDir();
  const ownDatabase = options.database === undefined;
  const database = options.database ?? (await createTestDatabase(dataDir));

  const env: Record<string, string> = {
    NODE_ENV: 'test',
    PORT: String(port),
    PUBLIC_BASE_URL: baseUrl,
    DATA_DIR: dataDir,
    LOG_LEVEL: options.captureLogs ? 'debug' : 'silent',
    SANDBOX_TIME_SCALE: '1000',
    ...(database.url ? { DATABASE_URL: database.url } : {}),
    ...options.env,
  };
  const config = loadConfig(env);

  const logs: Array<Record<string, unknown>> = [];
  const rawLogs: string[] = [];
  const logStream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        rawLogs.push(line);
        try {
          logs.push(JSON.parse(line));
        } catch {
          logs.push({ msg: line });
        }
      }
      done();
    },
  });

  let builder = Test.createTestingModule({
    imports: [
      AppModule.forRoot(config, { logStream, schedules: options.schedules ?? false }),
      ...(options.extraModules ?? []),
    ],
  });
  if (options.override) builder = options.override(builder);
  const moduleRef = await builder.compile();
  const app = moduleRef.createNestApplication({ rawBody: true, bufferLogs: true, bodyParser: false });
  configureApp(app, config);
  try {
    await app.listen(port, '127.0.0.1');
  } catch (error) {
    // A start-up refusal (e.g. a second sandbox on one database): free what was opened, then report it.
    await app.close().catch(() => undefined);
    if (ownDatabase) await database.drop();
    if (ownDataDir) rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }

  return {
    app,
    config,
    baseUrl,
    dataDir,
    logs,
    rawLogs,
    database,
    async close() {
      await app.close();
      if (ownDatabase) await database.drop();
      if (ownDataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
