import { Body, Controller, Module, Post } from '@nestjs/common';
import { getDataSourceToken } from '@nestjs/typeorm';
import { IsInt, IsString, Min } from 'class-validator';
import { spawnSync } from 'node:child_process';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { LeaseService } from '../src/database/lease.service';
import { migrations } from '../src/migrations';
import { TestApp, createTestDatabase, startTestApp, tempDir } from './helpers/test-app';

class ProbeDto {
  @IsString()
  name: string;

  @IsInt()
  @Min(1)
  quantity: number;
}

@Controller('probe')
class ProbeController {
  @Post()
  echo(@Body() body: ProbeDto) {
    return body;
  }
}

@Module({ controllers: [ProbeController] })
class ProbeModule {}

describe('foundation', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ extraModules: [ProbeModule] });
  });

  afterAll(async () => {
    await t?.close();
  });

  it('ran every migration at start-up', async () => {
    const dataSource = t.app.get<DataSource>(getDataSourceToken());
    const applied: Array<{ name: string }> = await dataSource.query('SELECT name FROM migrations ORDER BY id');
    expect(applied.map((row) => row.name)).toEqual(migrations.map((m) => m.name));
    expect(await dataSource.createQueryRunner().hasTable('job_leases')).toBe(true);
  });

  it('reports a healthy database on /health', async () => {
    const res = await request(t.baseUrl).get('/health').expect(200);
    expect(res.body).toMatchObject({ status: 'ok', info: { database: { status: 'up' } } });
  });

  it('answers an unknown route with the error shape', async () => {
    const res = await request(t.baseUrl).get('/no/such/route').expect(404);
    expect(res.body).toMatchObject({ statusCode: 404, error: 'Not Found', message: 'Cannot GET /no/such/route' });
    expect(res.body.requestId).toEqual(res.headers['x-request-id']);
    expect(res.body).not.toHaveProperty('stack');
  });

  it('explains a validation failure: missing, wrong and unknown fields', async () => {
    const res = await request(t.baseUrl).post('/probe').send({ quantity: 0, extra: true }).expect(400);
    expect(res.body).toMatchObject({ statusCode: 400, error: 'Bad Request', code: 'VALIDATION_FAILED' });
    expect(res.body.message).toContain('property extra should not exist');
    expect(res.body.message).toContain('name must be a string');
    expect(res.body.message).toContain('quantity must not be less than 1');
  });

  it('rejects malformed JSON with a 400 that says so', async () => {
    const res = await request(t.baseUrl)
      .post('/probe')
      .set('Content-Type', 'application/json')
      .send('{"name": "x", ')
      .expect(400);
    expect(res.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
    expect(res.body.message).toMatch(/JSON/);
  });

  it('accepts a valid body', async () => {
    await request(t.baseUrl).post('/probe').send({ name: 'x', quantity: 2 }).expect(201, { name: 'x', quantity: 2 });
  });

  it('serves the OpenAPI document at /docs', async () => {
    await request(t.baseUrl).get('/docs').expect(200);
    const json = await request(t.baseUrl).get('/docs-json').expect(200);
    expect(json.body.paths).toHaveProperty('/health');
    // The 503 is documented in the global error shape, not terminus' `{ status, error: {...} }`.
    const unavailable = json.body.paths['/health'].get.responses['503'].content['application/json'].schema;
    expect(unavailable.properties.error).toMatchObject({ type: 'string' });
    expect(unavailable.properties).toHaveProperty('details');
  });
});

describe('leases', () => {
  it('let only one of two app instances on one database hold a lease', async () => {
    const dataDir = tempDir();
    const database = await createTestDatabase(dataDir);
    const a = await startTestApp({ dataDir, database });
    // One simulated WeChat per database (issue 12 item 19): b uses a's sandbox, as instances must.
    const shared = `${a.baseUrl}/sandbox`;
    const b = await startTestApp({ dataDir, database, env: { WECHATPAY_API_BASE: shared, WECHAT_API_BASE: shared, WECHAT_OPEN_BASE: shared } });
    try {
      const leaseA = a.app.get(LeaseService);
      const leaseB = b.app.get(LeaseService);
      const results = await Promise.all([leaseA.tryAcquire('sweep', 60_000), leaseB.tryAcquire('sweep', 60_000)]);
      expect(results.filter(Boolean)).toHaveLength(1);
      const [holder, other] = results[0] ? [leaseA, leaseB] : [leaseB, leaseA];
      expect(await holder.tryAcquire('sweep', 60_000)).toBe(true); // renewal
      expect(await other.tryAcquire('sweep', 60_000)).toBe(false);
      await holder.release('sweep');
      expect(await other.tryAcquire('sweep', 60_000)).toBe(true);
      // an expired lease is free for the taking
      await other.tryAcquire('short', 1);
      await new Promise((r) => setTimeout(r, 20));
      expect(await holder.tryAcquire('short', 60_000)).toBe(true);
    } finally {
      await a.close();
      await b.close();
      await database.drop();
    }
  });
});

describe('health when the database is down', () => {
  it('answers 503 naming the database', async () => {
    const t = await startTestApp();
    try {
      await t.app.get<DataSource>(getDataSourceToken()).destroy();
      const res = await request(t.baseUrl).get('/health').expect(503);
      // The global error shape; terminus' report (what is down and why) under details.
      expect(res.body).toEqual({
        statusCode: 503,
        error: 'Service Unavailable',
        message: 'database is down',
        details: { info: {}, error: { database: { status: 'down' } } },
        requestId: res.headers['x-request-id'],
      });
      expect(res.headers['cache-control']).toBe('no-cache, no-store, must-revalidate');
    } finally {
      await t.close().catch(() => undefined);
    }
  });
});

describe('start-up with a bad environment', () => {
  it('exits with one message naming every bad variable', () => {
    const result = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/main.ts'], {
      cwd: `${__dirname}/..`,
      env: {
        PATH: process.env.PATH,
        DATA_DIR: tempDir(),
        DATABASE_URL: 'postgres://nope',
        WECHATPAY_APIV3_KEY: 'tooshort',
        NODE_ENV: 'production',
      },
      encoding: 'utf8',
      // ts-node compiling main.ts takes a while on a loaded 2-core machine; the exit itself is at once
      timeout: 90_000,
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('Invalid environment variables:');
    expect(result.stderr).toMatch(/DATABASE_URL: must look like mysql:/);
    expect(result.stderr).toMatch(/WECHATPAY_APIV3_KEY: must be exactly 32 characters/);
    expect(result.stderr).toMatch(/WECHAT_MODE: is sandbox .*NODE_ENV=production/);
    expect(result.stderr).not.toContain('tooshort');
  }, 120_000);
});
