import { Controller, Get, Logger, Module, Query, Req } from '@nestjs/common';
import request from 'supertest';
import { loginCookie } from '../helpers/login';
import { Shop } from '../helpers/shop';

/** What the request looked like by the time it reached a controller. */
@Controller('probe')
class ProbeController {
  @Get('request')
  request(@Req() req: { id?: unknown; log?: unknown; body?: unknown }) {
    return { id: req.id ?? null, requestLogger: req.log !== undefined, body: req.body ?? null };
  }
}

/** An info line (dropped at LOG_LEVEL=warn) and a warn line, with an await between them. */
@Controller('probe-log')
class LogProbeController {
  private readonly logger = new Logger('LogProbe');

  @Get()
  async log(@Query('marker') marker: string) {
    this.logger.log(`info ${marker}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
    this.logger.warn(`warn ${marker}`);
    return { marker };
  }
}

@Module({ controllers: [ProbeController, LogProbeController] })
class ProbeModule {}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('per-request machinery skipped where it does nothing (issue 16 item 5)', () => {
  describe('LOG_LEVEL=silent', () => {
    let shop: Shop;
    beforeAll(async () => {
      shop = await Shop.start({ extraModules: [ProbeModule] });
    });
    afterAll(() => shop?.close());

    it('mounts no per-request logger (pino-http) but still gives every request an id, answered as X-Request-Id', async () => {
      const res = await shop.http().get('/probe/request').expect(200);
      expect(res.headers['x-request-id']).toMatch(UUID);
      expect(res.body).toMatchObject({ id: res.headers['x-request-id'], requestLogger: false });
      const other = await shop.http().get('/probe/request').expect(200);
      expect(other.headers['x-request-id']).not.toBe(res.headers['x-request-id']);
    });

    it('an error answer names the same request id as its X-Request-Id header (also for a refusal before any route)', async () => {
      const unauthenticated = await shop.http().get('/orders/NOSUCHORDER').expect(401);
      expect(unauthenticated.body.requestId).toMatch(UUID);
      expect(unauthenticated.body.requestId).toBe(unauthenticated.headers['x-request-id']);
      const crossSite = await shop.http().post('/orders').set('Origin', 'https://evil.example').set('Cookie', 'whp_session=x').send({ items: [] }).expect(403);
      expect(crossSite.body.requestId).toBe(crossSite.headers['x-request-id']);
    });

    it('a client-chosen X-Request-Id is not taken from an untrusted peer', async () => {
      const res = await shop.http().get('/probe/request').set('X-Request-Id', 'chosen-by-client').expect(200);
      expect(res.headers['x-request-id']).toMatch(UUID);
      expect(res.body.id).toBe(res.headers['x-request-id']);
    });

    it('JSON answers carry no ETag (and a matching If-None-Match is not answered 304)', async () => {
      await shop.product('无 ETag 商品', 100);
      const res = await shop.http().get('/products').expect(200);
      expect(res.headers.etag).toBeUndefined();
      const again = await shop.http().get('/products').set('If-None-Match', 'W/"anything"').set('If-Modified-Since', new Date().toUTCString());
      expect(again.status).toBe(200);
      expect(again.body.length).toBeGreaterThan(0);
    });

    it("writes a handler's JSON as Express's res.json() did: same headers and bytes; HEAD and conditional requests as before", async () => {
      await shop.product('JSON 商品 ☕', 100);
      const res = await fetch(`${shop.baseUrl}/products`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
      const bytes = Buffer.from(await res.arrayBuffer());
      expect(res.headers.get('content-length')).toBe(String(bytes.length));
      const parsed = JSON.parse(bytes.toString('utf8')) as Array<{ name: string }>;
      expect(bytes.toString('utf8')).toBe(JSON.stringify(parsed));
      expect(parsed.some((p) => p.name === 'JSON 商品 ☕')).toBe(true);
      // the security headers and the request id are still on it
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      expect(res.headers.get('x-request-id')).toMatch(UUID);

      const head = await fetch(`${shop.baseUrl}/products`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect((await head.arrayBuffer()).byteLength).toBe(0);

      // A conditional request goes through Express's own res.json() (its freshness check): the same answer.
      const conditional = await fetch(`${shop.baseUrl}/products`, { headers: { 'If-None-Match': '*' } });
      expect(conditional.status).toBe(200);
      expect(conditional.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(await conditional.json()).toEqual(parsed);

      // A created order (201, status set by the handler) and an error answer keep their shapes.
      const product = await shop.product('JSON 下单', 100, 5);
      const user = await shop.login('o_json_reply');
      const created = await shop.http().post('/orders').set(user.headers).send({ items: [{ productId: product.id, quantity: 2 }] }).expect(201);
      expect(created.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(created.body).toMatchObject({ status: 'NOTPAY', total: 200 });
      const bad = await shop.http().post('/orders').set(user.headers).send({ items: [{ productId: product.id, quantity: 100 }] }).expect(400);
      expect(bad.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(bad.body).toMatchObject({ statusCode: 400, code: 'VALIDATION_FAILED', message: 'items.0.quantity must be at most 99' });
    });

    it('a urlencoded body is read on the sandbox pages only: the consent form still works, elsewhere it is left unread', async () => {
      const probe = await shop.http().get('/probe/request').set('Content-Type', 'application/x-www-form-urlencoded').send('a=1');
      expect(probe.status).toBe(200);
      expect(probe.body.body).not.toEqual({ a: '1' });

      // The sandbox's WeChat consent page posts a form (deny): answered as WeChat does, a redirect back.
      const start = await fetch(`${shop.baseUrl}/auth/wechat/authorize?redirect=%2F&scope=snsapi_userinfo`, { redirect: 'manual' });
      expect(start.status).toBe(302);
      loginCookie(start);
      const wechat = new URL(start.headers.get('location')!.replace('#wechat_redirect', ''));
      const form = new URLSearchParams(wechat.searchParams);
      form.set('action', 'deny');
      const deny = await fetch(`${shop.baseUrl}${wechat.pathname}`, { method: 'POST', body: form, redirect: 'manual', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
      expect(deny.status).toBe(302);
      expect(new URL(deny.headers.get('location')!).searchParams.get('code')).toBeNull();
    });
  });

  describe('LOG_LEVEL=warn', () => {
    let shop: Shop;
    beforeAll(async () => {
      shop = await Shop.start({ extraModules: [ProbeModule], captureLogs: true, env: { LOG_LEVEL: 'warn' } });
    });
    afterAll(() => shop?.close());

    it('a dropped info line makes no request logger; a warn line and a 4xx completion line carry the request id', async () => {
      const res = await request(shop.baseUrl).get('/probe-log?marker=m-warn-level').expect(200);
      const id = res.headers['x-request-id'];
      const deadline = Date.now() + 5_000;
      while (!shop.t.logs.some((l) => l.msg === 'warn m-warn-level') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      const mine = shop.t.logs.filter((l) => JSON.stringify(l).includes('m-warn-level'));
      expect(mine.map((l) => l.msg)).toEqual(['warn m-warn-level']);
      expect(mine[0]).toMatchObject({ reqId: id, level: 40, context: 'LogProbe' });
      // a 2xx completion line is info: not written at warn
      expect(shop.t.logs.some((l) => (l.req as { id?: string } | undefined)?.id === id)).toBe(false);

      const missing = await request(shop.baseUrl).get('/orders/NOSUCHORDER').expect(401);
      const missingId = missing.headers['x-request-id'];
      while (!shop.t.logs.some((l) => (l.req as { id?: string } | undefined)?.id === missingId) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(shop.t.logs.find((l) => (l.req as { id?: string } | undefined)?.id === missingId)).toMatchObject({ level: 40, reqId: missingId, msg: 'request completed', res: { statusCode: 401 } });
    });
  });

  describe('LOG_LEVEL=debug', () => {
    let shop: Shop;
    beforeAll(async () => {
      shop = await Shop.start({ extraModules: [ProbeModule], captureLogs: true });
    });
    afterAll(() => shop?.close());

    it('mounts the request logger: the request line carries the id answered as X-Request-Id', async () => {
      const res = await request(shop.baseUrl).get('/probe/request').expect(200);
      expect(res.body).toMatchObject({ id: res.headers['x-request-id'], requestLogger: true });
      const line = shop.t.logs.find((l) => (l.req as { id?: string } | undefined)?.id === res.headers['x-request-id']);
      expect(line).toMatchObject({ req: { method: 'GET', url: '/probe/request' }, res: { statusCode: 200 } });
    });
  });
});
