import { getDataSourceToken } from '@nestjs/typeorm';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { tokenFingerprint } from '../../src/admin/admin-token';
import { AdminAuditClient1764000400000 } from '../../src/migrations/1764000400000-admin-audit-client';
import { today } from '../helpers/dates';
import { Login } from '../helpers/login';
import { ADMIN_TOKEN, Shop } from '../helpers/shop';

interface AuditItem {
  id: number;
  tokenFingerprint: string;
  action: string;
  target: string | null;
  outcome: string;
  detail: Record<string, unknown> | null;
  ip: string | null;
  userAgent: string | null;
  createdAt: string;
}

const UA = 'audit-e2e/1.0 (operator console)';
const LOOPBACK = /^(::ffff:)?127\.0\.0\.1$/;

describe('admin audit trail', () => {
  let shop: Shop;
  let shopper: Login;

  beforeAll(async () => {
    shop = await Shop.start({ env: { SANDBOX_REFUND_DELAY: '10s', REFUND_QUERY_AFTER: '0s' } });
    shopper = await shop.login('o_audit_shopper');
  });
  afterAll(() => shop?.close());

  const admin = () => {
    const a = shop.admin();
    return {
      get: (path: string) => a.get(path).set('User-Agent', UA),
      post: (path: string) => a.post(path).set('User-Agent', UA),
      patch: (path: string) => a.patch(path).set('User-Agent', UA),
    };
  };

  async function trail(query: string): Promise<AuditItem[]> {
    const res = await shop.admin().get(`/admin/audit?${query}`).expect(200);
    return res.body.items;
  }

  it('records who edited a product from which IP and user agent, with each changed field before and after (a silent price change left no trace of the old price)', async () => {
    const created = await admin().post('/admin/products').send({ name: '审计马克杯', price: 3900, stock: 10 }).expect(201);
    const id = String(created.body.id);
    const [create] = await trail(`action=product.create&target=${id}`);
    expect(create).toMatchObject({
      tokenFingerprint: tokenFingerprint(ADMIN_TOKEN),
      outcome: 'ok',
      ip: expect.stringMatching(LOOPBACK),
      userAgent: UA,
      detail: { after: { name: '审计马克杯', price: 3900, stock: 10, active: true } },
    });

    await admin().patch(`/admin/products/${id}`).send({ price: 100, stock: null, name: '审计马克杯' }).expect(200);
    const [edit] = await trail(`action=product.update&target=${id}`);
    expect(edit).toMatchObject({
      tokenFingerprint: tokenFingerprint(ADMIN_TOKEN),
      outcome: 'ok',
      ip: expect.stringMatching(LOOPBACK),
      userAgent: UA,
      detail: { before: { price: 3900, stock: 10, name: '审计马克杯' }, after: { price: 100, stock: null, name: '审计马克杯' } },
    });
    // only the fields the edit named
    expect(Object.keys(edit.detail!.before as object).sort()).toEqual(['name', 'price', 'stock']);

    // a failed edit is audited too, with the client
    await admin().patch('/admin/products/999999').send({ price: 1 }).expect(404);
    const [missing] = await trail('action=product.update&target=999999');
    expect(missing).toMatchObject({ outcome: 'error:PRODUCT_NOT_FOUND', ip: expect.stringMatching(LOOPBACK), userAgent: UA });
  });

  it('records the order and the amount of every refund (the trail only named the refund number), its replay and a refused one', async () => {
    const { id: productId } = await shop.product('审计退款', 1000);
    const no = await shop.paidOrder(shopper, [{ productId, quantity: 1 }]);
    const body = { outTradeNo: no, amount: 300, reason: '审计', outRefundNo: `${no}-A1` };
    await admin().post('/admin/refunds').send(body).expect(201);
    await admin().post('/admin/refunds').send(body).expect(200);
    const [replay, first] = await trail(`action=refund.create&target=${no}-A1`);
    expect(first).toMatchObject({
      outcome: 'ok',
      ip: expect.stringMatching(LOOPBACK),
      userAgent: UA,
      detail: { outTradeNo: no, amount: 300, status: 'PROCESSING', source: 'admin' },
    });
    expect(first.detail).not.toHaveProperty('replayed');
    expect(replay.detail).toMatchObject({ outTradeNo: no, amount: 300, replayed: true });

    await admin().post('/admin/refunds').send({ outTradeNo: no, amount: 5000, reason: '超额', outRefundNo: `${no}-A2` }).expect(409);
    const [refused] = await trail(`action=refund.create&target=${no}-A2`);
    expect(refused).toMatchObject({ outcome: 'error:REFUND_EXCEEDS_REMAINING', detail: { outTradeNo: no, amount: 5000 }, userAgent: UA });
  });

  it('records the client of a reconciliation run', async () => {
    await admin().post(`/admin/reconciliations?date=${today()}`).expect(200);
    const [run] = await trail(`action=reconciliation.run&target=${today()}`);
    expect(run).toMatchObject({ outcome: 'ok', ip: expect.stringMatching(LOOPBACK), userAgent: UA, tokenFingerprint: tokenFingerprint(ADMIN_TOKEN) });
  });

  it('records a failed admin login (wrong, missing or non-Bearer token: rejected before the audit interceptor, so a brute force left no trace) with route, IP, user agent and reason, never the token', async () => {
    const wrong = 'guessed-admin-token-ZZZZ9999';
    const attacker = 'curl/8.5.0 brute';
    await request(shop.baseUrl).post('/admin/refunds?secret=q').set('Authorization', `Bearer ${wrong}`).set('User-Agent', attacker).send({ outTradeNo: 'X', amount: 1 }).expect(401);
    await request(shop.baseUrl).get('/admin/orders').set('User-Agent', attacker).expect(401);
    await request(shop.baseUrl).get('/admin/audit').set('Authorization', `Basic ${wrong}`).set('User-Agent', attacker).expect(401);

    const res = await shop.admin().get('/admin/audit?action=admin.auth_failed').expect(200);
    const items: AuditItem[] = res.body.items;
    expect(items).toEqual([
      expect.objectContaining({
        tokenFingerprint: 'none',
        target: 'GET /admin/audit',
        outcome: 'error:ADMIN_TOKEN_MISSING',
        detail: { reason: 'not a Bearer token', route: '/admin/audit' },
        ip: expect.stringMatching(LOOPBACK),
        userAgent: attacker,
      }),
      expect.objectContaining({
        tokenFingerprint: 'none',
        target: 'GET /admin/orders',
        outcome: 'error:ADMIN_TOKEN_MISSING',
        detail: { reason: 'no Authorization header', route: '/admin/orders' },
        userAgent: attacker,
      }),
      expect.objectContaining({
        tokenFingerprint: tokenFingerprint(wrong),
        target: 'POST /admin/refunds',
        outcome: 'error:ADMIN_TOKEN_INVALID',
        detail: { reason: 'token not in ADMIN_TOKENS', route: '/admin/refunds' },
        ip: expect.stringMatching(LOOPBACK),
        userAgent: attacker,
        createdAt: expect.any(String),
      }),
    ]);
    const raw = JSON.stringify(res.body);
    expect(raw).not.toContain(wrong);
    expect(raw).not.toContain(ADMIN_TOKEN);
    expect(raw).not.toContain('secret=q');
    // the stored rows too, not only the view
    const ds = shop.t.app.get<DataSource>(getDataSourceToken());
    const rows = await ds.query("SELECT * FROM admin_audit WHERE action = 'admin.auth_failed'");
    expect(rows).toHaveLength(3);
    expect(JSON.stringify(rows)).not.toContain(wrong);
  });

  it('migration 1764000400000 is safe to run again after a partial run', async () => {
    const ds = shop.t.app.get<DataSource>(getDataSourceToken());
    const runner = ds.createQueryRunner();
    try {
      await runner.dropColumn('admin_audit', 'user_agent'); // as if the run stopped after the first column
      await new AdminAuditClient1764000400000().up(runner);
      await new AdminAuditClient1764000400000().up(runner);
      expect(await runner.hasColumn('admin_audit', 'ip')).toBe(true);
      expect(await runner.hasColumn('admin_audit', 'user_agent')).toBe(true);
    } finally {
      await runner.release();
    }
  });
});
