import { connect } from 'node:net';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AuthJobs } from '../../src/auth/auth.jobs';
import { Clock, FixedClock } from '../../src/common/clock';
import { NotifyJobs } from '../../src/notify/notify.jobs';
import { Shop } from '../helpers/shop';

const unsigned = (size: number) => JSON.stringify({ id: 'x', padding: 'A'.repeat(size) });

/** Abuse of the unauthenticated endpoints (issue 11, items 1 and 3). */
describe('abuse of unauthenticated endpoints', () => {
  let shop: Shop;
  let clock: FixedClock;
  let db: DataSource;

  beforeAll(async () => {
    clock = new FixedClock(new Date());
    shop = await Shop.start({
      env: { NOTIFY_REJECT_RATE_LIMIT: '5', AUTH_AUTHORIZE_RATE_LIMIT: '4', NOTIFY_BODY_TIMEOUT: '1s', PAYMENT_EVENTS_REJECTED_RETENTION: '7d' },
      override: (b) => b.overrideProvider(Clock).useValue(clock),
    });
    db = shop.t.app.get(DataSource);
  });
  afterAll(() => shop?.close());

  const rejectedRows = async () => Number((await db.query('SELECT COUNT(*) AS n FROM payment_events WHERE verified = 0'))[0].n);

  it('an attacker flooding unsigned notifications gets 429 with Retry-After past NOTIFY_REJECT_RATE_LIMIT, and nothing more is stored', async () => {
    const before = await rejectedRows();
    const statuses: number[] = [];
    let retryAfter: string | undefined;
    for (let i = 0; i < 8; i++) {
      const path = i % 2 ? '/notify/wechatpay/refund' : '/notify/wechatpay/transaction';
      const res = await shop.http().post(path).set('Content-Type', 'application/json').send(unsigned(60_000));
      statuses.push(res.status);
      if (res.status === 429) retryAfter = res.headers['retry-after'];
    }
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.slice(5)).toEqual([429, 429, 429]);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    expect(await rejectedRows()).toBe(before + 5);
    // Each stored rejection is its size and hash, not the attacker's 60 KB.
    const sizes = await db.query('SELECT raw_size, LENGTH(raw_body) AS len FROM payment_events WHERE verified = 0');
    for (const row of sizes) expect(Number(row.len)).toBeLessThan(2000);
    // A new minute, a new allowance.
    clock.advance(61_000);
    const again = await shop.http().post('/notify/wechatpay/transaction').set('Content-Type', 'application/json').send(unsigned(10));
    expect(again.status).toBe(401);
  });

  it('the retention job deletes rejected notifications older than PAYMENT_EVENTS_REJECTED_RETENTION in batches, and keeps verified ones', async () => {
    const product = await shop.product('Retention tea', 100, null);
    const login = await shop.login('o_retention');
    await shop.paidOrder(login, [{ productId: product.id, quantity: 1 }]);
    const verified = async () => Number((await db.query('SELECT COUNT(*) AS n FROM payment_events WHERE verified = 1'))[0].n);
    const keptVerified = await verified();
    expect(keptVerified).toBeGreaterThan(0);
    expect(await rejectedRows()).toBeGreaterThan(0);
    const jobs = shop.t.app.get(NotifyJobs);
    // Within the retention nothing goes.
    clock.advance(6 * 24 * 3600_000);
    expect(await jobs.purgeRejected()).toBe(0);
    clock.advance(2 * 24 * 3600_000);
    const old = await rejectedRows();
    // One fresh rejection (inside the retention) stays.
    clock.advance(61_000);
    await shop.http().post('/notify/wechatpay/transaction').set('Content-Type', 'application/json').send(unsigned(10)).expect(401);
    expect(await jobs.purgeRejected()).toBe(old);
    expect(await rejectedRows()).toBe(1);
    expect(await verified()).toBe(keptVerified);
  });

  it('a slow-loris notification body trickled byte by byte is cut off after NOTIFY_BODY_TIMEOUT', async () => {
    const { port } = new URL(shop.baseUrl);
    const started = Date.now();
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1');
      let data = '';
      let trickle: NodeJS.Timeout | undefined;
      socket.on('connect', () => {
        socket.write('POST /notify/wechatpay/transaction HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{');
        trickle = setInterval(() => socket.write(' '), 300);
      });
      socket.on('data', (chunk) => (data += chunk.toString()));
      socket.on('close', () => {
        clearInterval(trickle);
        resolve(data);
      });
      socket.on('error', (error) => {
        clearInterval(trickle);
        if (data) resolve(data);
        else reject(error);
      });
      setTimeout(() => socket.destroy(), 15_000).unref();
    });
    const elapsed = Date.now() - started;
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    expect(elapsed).toBeLessThan(8_000);
  });

  it('unauthenticated GET /auth/wechat/authorize is rate-limited per client IP (429 with Retry-After past AUTH_AUTHORIZE_RATE_LIMIT)', async () => {
    clock.advance(61_000);
    const statuses: number[] = [];
    let last: request.Response | undefined;
    for (let i = 0; i < 6; i++) {
      last = await shop.http().get('/auth/wechat/authorize?redirect=/');
      statuses.push(last.status);
    }
    expect(statuses).toEqual([302, 302, 302, 302, 429, 429]);
    expect(last!.body).toMatchObject({ code: 'RATE_LIMITED', message: expect.stringContaining('retry after') });
    expect(Number(last!.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });

  it('expired OAuth states are deleted by the job (not by chance per request); fresh ones stay', async () => {
    clock.advance(61_000);
    const count = async () => Number((await db.query('SELECT COUNT(*) AS n FROM oauth_states'))[0].n);
    expect(await count()).toBeGreaterThan(0);
    clock.advance(25 * 3600_000);
    await shop.http().get('/auth/wechat/authorize?redirect=/').expect(302);
    const jobs = shop.t.app.get(AuthJobs);
    const before = await count();
    const deleted = await jobs.purgeStates();
    expect(deleted).toBe(before - 1);
    expect(await count()).toBe(1);
  });
});
