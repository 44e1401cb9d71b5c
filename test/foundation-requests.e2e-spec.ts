// Request ids in log lines, and what an unexpected error looks like from outside (and in the log).
import { Controller, Get, Logger, Module, Query } from '@nestjs/common';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { ConflictError } from '../src/common/errors/app-error';
import { TestApp, startTestApp } from './helpers/test-app';

type LogLine = Record<string, unknown> & { reqId?: string; msg?: string; req?: { id?: string; url?: string } };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** What a stack frame looks like in a V8 stack trace: `at fn (/path/file.ts:1:2)` or `at /path/file.js:1:2`. */
const STACK_FRAME = /\bat (?:\S+ \()?[^\s()]*:\d+:\d+/;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

@Controller('probe-requests')
class ProbeController {
  private readonly logger = new Logger('Probe');

  constructor(private readonly dataSource: DataSource) {}

  /** Two log lines with an await between them, so that concurrent requests interleave. */
  @Get('work')
  async work(@Query('marker') marker: string, @Query('delay') delay = '0') {
    this.logger.log(`start ${marker}`);
    await sleep(Number(delay));
    this.logger.warn(`end ${marker}`);
    return { marker };
  }

  @Get('conflict')
  conflict(@Query('marker') marker: string) {
    this.logger.log(`refusing ${marker}`);
    throw new ConflictError('PROBE_CONFLICT', 'probe says no');
  }

  @Get('throw')
  throwPlain() {
    throw new Error('secret internals');
  }

  @Get('reject')
  async reject() {
    await sleep(5);
    throw new Error('secret internals (async)');
  }

  @Get('throw-string')
  throwString() {
    throw 'secret internals as a string';
  }

  @Get('throw-status')
  throwStatus() {
    // A third-party error carrying a 5xx status of its own: still our generic 500.
    throw Object.assign(new Error('secret internals from upstream'), { status: 502, statusCode: 502 });
  }

  @Get('bad-sql')
  async badSql() {
    return this.dataSource.query('SELECT secret_internals_column FROM secret_internals_table');
  }
}

@Module({ controllers: [ProbeController] })
class ProbeModule {}

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ captureLogs: true, extraModules: [ProbeModule], env: { TRUST_PROXY: 'loopback' } });
});

afterAll(async () => {
  await t?.close();
});

/** Log lines of one request (by id), once its completion line has been written. */
async function linesOf(id: string): Promise<LogLine[]> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const lines = (t.logs as LogLine[]).filter((line) => line.reqId === id || line.req?.id === id);
    if (lines.some((line) => /^request (completed|errored)$/.test(line.msg ?? ''))) return lines;
    if (Date.now() > deadline) throw new Error(`no completion log line for request ${id}`);
    await sleep(10);
  }
}

function linesMentioning(text: string): LogLine[] {
  return (t.logs as LogLine[]).filter((line) => JSON.stringify(line).includes(text));
}

describe('request ids in log lines', () => {
  it('honours a well-formed incoming X-Request-Id: every line of the request carries it', async () => {
    const res = await request(t.baseUrl).get('/probe-requests/work?marker=m-incoming').set('X-Request-Id', 'edge-7f3a.1:2').expect(200);
    expect(res.headers['x-request-id']).toBe('edge-7f3a.1:2');

    const lines = await linesOf('edge-7f3a.1:2');
    expect(lines.map((line) => line.msg)).toEqual(['start m-incoming', 'end m-incoming', 'request completed']);
    for (const line of lines) expect(line.reqId).toBe('edge-7f3a.1:2');
    expect(lines[2].req).toMatchObject({ id: 'edge-7f3a.1:2', url: '/probe-requests/work?marker=m-incoming' });
    // and no line of this request went out without it
    expect(linesMentioning('m-incoming').every((line) => line.reqId === 'edge-7f3a.1:2')).toBe(true);
  });

  it('an X-Request-Id from an untrusted client (no TRUST_PROXY) is ignored: it cannot pick or collide log ids', async () => {
    const untrusted = await startTestApp({ extraModules: [ProbeModule] });
    try {
      const res = await request(untrusted.baseUrl).get('/probe-requests/work?marker=m-spoof').set('X-Request-Id', 'edge-7f3a.1:2').expect(200);
      expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    } finally {
      await untrusted.close();
    }
  });

  it('makes one up when none is given, echoes it in the header and in the error body, and logs with it', async () => {
    const res = await request(t.baseUrl).get('/probe-requests/conflict?marker=m-generated').expect(409);
    const id = res.headers['x-request-id'];
    expect(id).toMatch(UUID);
    expect(res.body).toEqual({
      statusCode: 409,
      error: 'Conflict',
      message: 'probe says no',
      code: 'PROBE_CONFLICT',
      requestId: id,
    });

    const lines = await linesOf(id);
    expect(lines.map((line) => line.msg)).toEqual(['refusing m-generated', 'request completed']);
    expect(lines.every((line) => line.reqId === id)).toBe(true);
    expect(linesMentioning('m-generated').every((line) => line.reqId === id)).toBe(true);
  });

  it('gives each request its own id', async () => {
    const [a, b] = await Promise.all([
      request(t.baseUrl).get('/no/such/route').expect(404),
      request(t.baseUrl).get('/no/such/route').expect(404),
    ]);
    expect(a.body.requestId).toMatch(UUID);
    expect(b.body.requestId).toMatch(UUID);
    expect(a.body.requestId).not.toBe(b.body.requestId);
    expect(a.headers['x-request-id']).toBe(a.body.requestId);
  });

  it.each([
    ['with spaces', 'not a valid id'],
    ['too long', 'x'.repeat(65)],
    ['with a quote', 'id"},"level":60,"x":"'],
    ['empty', ''],
  ])('replaces a malformed incoming id (%s) with its own, and never logs the bad one', async (_what, incoming) => {
    const marker = `m-bad-${Math.random().toString(36).slice(2)}`;
    const res = await request(t.baseUrl).get(`/probe-requests/work?marker=${marker}`).set('X-Request-Id', incoming).expect(200);
    const id = res.headers['x-request-id'];
    expect(id).toMatch(UUID);
    const lines = await linesOf(id);
    expect(lines.map((line) => line.msg)).toEqual([`start ${marker}`, `end ${marker}`, 'request completed']);
    if (incoming) expect(t.rawLogs.some((raw) => raw.includes(incoming))).toBe(false);
  });

  it('keeps concurrent requests apart: interleaved lines each carry their own request id', async () => {
    const ids = Array.from({ length: 8 }, (_, i) => `concurrent-${i}`);
    const responses = await Promise.all(
      ids.map((id, i) =>
        // all sleep long enough to overlap, and later requests finish first: the lines interleave
        request(t.baseUrl).get(`/probe-requests/work?marker=m-${id}&delay=${200 + (ids.length - i) * 10}`).set('X-Request-Id', id).expect(200),
      ),
    );
    responses.forEach((res, i) => expect(res.headers['x-request-id']).toBe(ids[i]));

    for (const id of ids) {
      const lines = await linesOf(id);
      expect(lines.map((line) => line.msg)).toEqual([`start m-${id}`, `end m-${id}`, 'request completed']);
      expect(linesMentioning(`m-${id}`).every((line) => line.reqId === id)).toBe(true);
    }
    // The requests did overlap: every one had started before the first one ended.
    const msgs = (t.logs as LogLine[]).map((line) => line.msg ?? '');
    const lastStart = Math.max(...ids.map((id) => msgs.indexOf(`start m-${id}`)));
    const firstEnd = Math.min(...ids.map((id) => msgs.indexOf(`end m-${id}`)));
    expect(lastStart).toBeLessThan(firstEnd);
  });
});

describe('unexpected errors', () => {
  async function expectGeneric500(path: string, secret: string) {
    const res = await request(t.baseUrl).get(path).set('X-Request-Id', `e500-${path.split('/').pop()}`).expect(500);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toEqual({
      statusCode: 500,
      error: 'Internal Server Error',
      message: 'Internal server error',
      code: 'INTERNAL',
      requestId: `e500-${path.split('/').pop()}`,
    });
    expect(res.text).not.toContain(secret);
    expect(res.text).not.toMatch(STACK_FRAME);
    expect(res.text).not.toMatch(/node_modules|\.ts:|\/work\/|stack/);
    return res;
  }

  it('turns a thrown Error into a bare 500 and keeps the message and stack for the log', async () => {
    await expectGeneric500('/probe-requests/throw', 'secret internals');

    const lines = await linesOf('e500-throw');
    const logged = lines.find((line) => line.msg === 'GET /probe-requests/throw failed: secret internals') as
      | (LogLine & { err: { message: string; stack: string } })
      | undefined;
    expect(logged).toBeDefined();
    expect(logged!.level).toBe(50);
    expect(logged!.err.message).toBe('secret internals');
    expect(logged!.err.stack).toMatch(STACK_FRAME);
  });

  it('does the same for a rejected promise', async () => {
    await expectGeneric500('/probe-requests/reject', 'secret internals');
    expect((await linesOf('e500-reject')).some((line) => line.msg === 'GET /probe-requests/reject failed: secret internals (async)')).toBe(true);
  });

  it('does the same for a thrown string', async () => {
    await expectGeneric500('/probe-requests/throw-string', 'secret internals');
  });

  it('does not pass on a 5xx status or message carried by a foreign error', async () => {
    await expectGeneric500('/probe-requests/throw-status', 'secret internals');
  });

  it('does not show SQL or database messages', async () => {
    const res = await expectGeneric500('/probe-requests/bad-sql', 'secret_internals');
    expect(res.text).not.toMatch(/SELECT|table|column|SQLITE|ER_/i);
    // the database's own message is in the log, under the same request id
    const lines = await linesOf('e500-bad-sql');
    expect(lines.some((line) => line.level === 50 && JSON.stringify(line).includes('secret_internals_table'))).toBe(true);
  });
});
