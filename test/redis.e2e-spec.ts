import request from 'supertest';
import { randomBytes } from 'node:crypto';
import { SharedStore } from '../src/common/store/shared-store';
import { freePort, startTestApp } from './helpers/test-app';

// Runs where a Redis server is given (npm run test:mysql sets REDIS_URL; .ci/run starts Redis).
const redisUrl = process.env.REDIS_URL;
const describeRedis = redisUrl ? describe : describe.skip;

describeRedis('Redis as the shared store', () => {
  it('is used when REDIS_URL is set, shared between instances, and reported by /health', async () => {
    const env = { REDIS_URL: redisUrl!, REDIS_PREFIX: `whp-test-${randomBytes(4).toString('hex')}:` };
    const a = await startTestApp({ env });
    const b = await startTestApp({ env });
    try {
      const storeA = a.app.get(SharedStore);
      const storeB = b.app.get(SharedStore);
      expect(storeA.kind).toBe('redis');
      await storeA.set('k', 'v', 10_000);
      expect(await storeB.get('k')).toBe('v');
      expect(await storeA.setIfAbsent('lock', 'a', 10_000)).toBe(true);
      expect(await storeB.setIfAbsent('lock', 'b', 10_000)).toBe(false);
      expect(await storeB.deleteIfEquals('lock', 'b')).toBe(false);
      expect(await storeA.deleteIfEquals('lock', 'a')).toBe(true);
      const res = await request(a.baseUrl).get('/health').expect(200);
      expect(res.body.info).toMatchObject({ database: { status: 'up' }, redis: { status: 'up' } });
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('makes /health answer 503 when Redis is unreachable', async () => {
    const t = await startTestApp({ env: { REDIS_URL: `redis://127.0.0.1:${await freePort()}` } });
    try {
      const res = await request(t.baseUrl).get('/health').expect(503);
      expect(res.body).toMatchObject({
        statusCode: 503,
        error: 'Service Unavailable',
        message: 'redis is down',
        details: { info: { database: { status: 'up' } }, error: { redis: { status: 'down' } } },
      });
    } finally {
      await t.close();
    }
  });
});
