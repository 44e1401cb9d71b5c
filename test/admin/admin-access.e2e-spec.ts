import { Body, Controller, Module, Post } from '@nestjs/common';
import { IsString } from 'class-validator';
import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { Audit, AdminOnly } from '../../src/admin/admin.decorators';
import { tokenFingerprint } from '../../src/admin/admin-token';
import { ConflictError } from '../../src/common/errors/app-error';
import { TestApp, startTestApp } from '../helpers/test-app';

class ThingDto {
  @IsString()
  name: string;
}

@AdminOnly()
@Controller('admin/things')
class ThingsController {
  @Post()
  @Audit('thing.create', (req, result) => (result as { id?: string })?.id ?? req.body?.name)
  create(@Body() body: ThingDto) {
    if (body.name === 'taken') throw new ConflictError('THING_EXISTS', 'a thing with that name exists');
    return { id: `thing-${body.name}` };
  }
}

@Module({ controllers: [ThingsController] })
class ThingsModule {}

const TOKEN = 'ops-token-aaaaaaaaaaaaaaaa';
const OTHER = 'ops-token-bbbbbbbbbbbbbbbb';

describe('admin access', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({
      env: { ADMIN_TOKENS: `${TOKEN},${OTHER}`, ADMIN_RATE_LIMIT: '1000' },
      extraModules: [ThingsModule],
    });
  });
  afterAll(() => t?.close());

  it('answers 401 without a token, with a malformed header and with a wrong token', async () => {
    const missing = await request(t.baseUrl).post('/admin/things').send({ name: 'a' }).expect(401);
    expect(missing.body).toMatchObject({ statusCode: 401, code: 'ADMIN_TOKEN_MISSING' });
    await request(t.baseUrl).post('/admin/things').set('Authorization', `Basic ${TOKEN}`).send({ name: 'a' }).expect(401);
    const wrong = await request(t.baseUrl)
      .post('/admin/things')
      .set('Authorization', `Bearer ${TOKEN}x`)
      .send({ name: 'a' })
      .expect(401);
    expect(wrong.body).toMatchObject({ code: 'ADMIN_TOKEN_INVALID', message: 'The admin token is not valid' });
    await request(t.baseUrl).get('/admin/audit').expect(401);
  });

  it('accepts every configured token and audits successes and failures with the token fingerprint', async () => {
    await request(t.baseUrl).post('/admin/things').set('Authorization', `Bearer ${TOKEN}`).send({ name: 'lamp' }).expect(201);
    await request(t.baseUrl).post('/admin/things').set('Authorization', `Bearer ${OTHER}`).send({ name: 'taken' }).expect(409);
    const res = await request(t.baseUrl).get('/admin/audit?action=thing.create').set('Authorization', `Bearer ${TOKEN}`).expect(200);
    expect(res.body.items).toEqual([
      expect.objectContaining({ tokenFingerprint: tokenFingerprint(OTHER), target: 'taken', outcome: 'error:THING_EXISTS' }),
      expect.objectContaining({ tokenFingerprint: tokenFingerprint(TOKEN), target: 'thing-lamp', outcome: 'ok' }),
    ]);
    expect(JSON.stringify(res.body)).not.toContain(TOKEN);
  });

  it('audits a request that fails authentication as admin.auth_failed, without its body or its token', async () => {
    await request(t.baseUrl).post('/admin/things').set('Authorization', 'Bearer nope-nope-nope-nope').send({ name: 'x' }).expect(401);
    const res = await request(t.baseUrl).get('/admin/audit').set('Authorization', `Bearer ${TOKEN}`).expect(200);
    expect(res.body.items.some((i: { target: string }) => i.target === 'x')).toBe(false);
    expect(res.body.items).toContainEqual(
      expect.objectContaining({
        action: 'admin.auth_failed',
        tokenFingerprint: tokenFingerprint('nope-nope-nope-nope'),
        target: 'POST /admin/things',
        outcome: 'error:ADMIN_TOKEN_INVALID',
      }),
    );
    expect(JSON.stringify(res.body)).not.toContain('nope-nope-nope-nope');
  });
});

describe('admin rate limit', () => {
  it('answers 429 past ADMIN_RATE_LIMIT requests a minute, per client', async () => {
    const t = await startTestApp({ env: { ADMIN_TOKENS: `${TOKEN},${OTHER}`, ADMIN_RATE_LIMIT: '3' } });
    try {
      for (let i = 0; i < 3; i++) {
        await request(t.baseUrl).get('/admin/audit').set('Authorization', `Bearer ${TOKEN}`).expect(200);
      }
      const limited = await request(t.baseUrl).get('/admin/audit').set('Authorization', `Bearer ${TOKEN}`).expect(429);
      expect(limited.body).toMatchObject({ statusCode: 429, message: expect.stringMatching(/Too many admin requests/) });
      await request(t.baseUrl).get('/admin/audit').set('Authorization', `Bearer ${OTHER}`).expect(200);
    } finally {
      await t.close();
    }
  });

  it('limits guessed tokens per client IP: a new random token per request does not escape the limit', async () => {
    const t = await startTestApp({ env: { ADMIN_TOKENS: `${TOKEN},${OTHER}`, ADMIN_RATE_LIMIT: '5' } });
    try {
      const guess = () => request(t.baseUrl).get('/admin/audit').set('Authorization', `Bearer guess-${randomBytes(12).toString('hex')}`);
      for (let i = 0; i < 5; i++) expect((await guess()).status).toBe(401);
      const statuses: number[] = [];
      for (let i = 0; i < 20; i++) statuses.push((await guess()).status);
      expect(statuses).toEqual(Array(20).fill(429));
      // requests without a token share the same per-IP allowance
      await request(t.baseUrl).get('/admin/audit').expect(429);
      // a real token has an allowance of its own, untouched by the guesses
      await request(t.baseUrl).get('/admin/audit').set('Authorization', `Bearer ${TOKEN}`).expect(200);
    } finally {
      await t.close();
    }
  });
});
