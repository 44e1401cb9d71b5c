// Migration 1764300000000 (issue 13) on a database with orders from before payment attempts: every
// order gets its first attempt (the order's own number, channel jsapi, its prepay and state), on
// SQLite and MariaDB; run again after a partial run, it adds nothing twice.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { migrations } from '../src/migrations';
import { PaymentAttempts1764300000000 } from '../src/migrations/1764300000000-payment-attempts';
import { createMysqlDatabase, TestDatabase, useMysql } from './helpers/mysql';

const before = migrations.filter((m) => m !== PaymentAttempts1764300000000);

describe('payment attempts migration: backfill of existing orders', () => {
  let db: TestDatabase | undefined;
  let dir: string | undefined;
  const open = (list: typeof migrations) =>
    new DataSource(
      useMysql()
        ? { type: 'mysql', url: db!.url, migrations: list, synchronize: false, logging: false }
        : { type: 'better-sqlite3', database: join(dir!, 'db.sqlite'), migrations: list, synchronize: false, logging: false },
    );

  beforeAll(async () => {
    if (useMysql()) db = await createMysqlDatabase();
    else dir = mkdtempSync(join(tmpdir(), 'whp-attempts-'));
  });
  afterAll(async () => {
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('gives each order one attempt that carries its number, prepay and state; a second run adds none', async () => {
    const old = open(before);
    await old.initialize();
    await old.runMigrations({ transaction: 'each' });
    const t = '2026-12-01 10:00:00.000';
    const insert = (no: string, status: string, prepayId: string | null, transactionId: string | null) =>
      old.query(
        `INSERT INTO orders (out_trade_no, user_id, appid, openid, status, total, currency, description, prepay_id, prepay_at, expires_at, transaction_id, refunded_total, created_at, updated_at)
         VALUES (?, 1, 'wxappid', 'o_old', ?, 100, 'CNY', 'old order', ?, ?, ?, ?, 0, ?, ?)`,
        [no, status, prepayId, prepayId ? t : null, t, transactionId, t, t],
      );
    await insert('WOLDNOTPAY000001', 'NOTPAY', 'wx_prepay_1', null);
    await insert('WOLDNEVERPREPAID', 'NOTPAY', null, null);
    await insert('WOLDPAID00000001', 'PAID', 'wx_prepay_2', '4200000001');
    await insert('WOLDCLOSED000001', 'CLOSED', 'wx_prepay_3', null);
    await insert('WOLDREFUNDED0001', 'REFUNDED', 'wx_prepay_4', '4200000002');
    await insert('WOLDAFTERCLOSE01', 'PAID_AFTER_CLOSE', 'wx_prepay_5', '4200000003');
    await old.destroy();

    const now = open(migrations);
    await now.initialize();
    expect((await now.runMigrations({ transaction: 'each' })).map((m) => m.name)).toEqual(['PaymentAttempts1764300000000']);
    const rows: Array<Record<string, unknown>> = await now.query(
      'SELECT a.out_trade_no, a.seq, a.channel, a.status, a.prepay_id, a.transaction_id, a.appid, a.openid FROM payment_attempts a JOIN orders o ON o.id = a.order_id ORDER BY o.id',
    );
    expect(rows.map((r) => ({ ...r, seq: Number(r.seq) }))).toEqual([
      { out_trade_no: 'WOLDNOTPAY000001', seq: 1, channel: 'jsapi', status: 'NOTPAY', prepay_id: 'wx_prepay_1', transaction_id: null, appid: 'wxappid', openid: 'o_old' },
      { out_trade_no: 'WOLDNEVERPREPAID', seq: 1, channel: 'jsapi', status: 'NOTPAY', prepay_id: null, transaction_id: null, appid: 'wxappid', openid: 'o_old' },
      { out_trade_no: 'WOLDPAID00000001', seq: 1, channel: 'jsapi', status: 'PAID', prepay_id: 'wx_prepay_2', transaction_id: '4200000001', appid: 'wxappid', openid: 'o_old' },
      { out_trade_no: 'WOLDCLOSED000001', seq: 1, channel: 'jsapi', status: 'CLOSED', prepay_id: 'wx_prepay_3', transaction_id: null, appid: 'wxappid', openid: 'o_old' },
      { out_trade_no: 'WOLDREFUNDED0001', seq: 1, channel: 'jsapi', status: 'REFUNDED', prepay_id: 'wx_prepay_4', transaction_id: '4200000002', appid: 'wxappid', openid: 'o_old' },
      { out_trade_no: 'WOLDAFTERCLOSE01', seq: 1, channel: 'jsapi', status: 'PAID', prepay_id: 'wx_prepay_5', transaction_id: '4200000003', appid: 'wxappid', openid: 'o_old' },
    ]);
    // A re-run (after a crash between its statements) completes without duplicating anything.
    const runner = now.createQueryRunner();
    await new PaymentAttempts1764300000000().up(runner);
    await runner.release();
    expect(Number((await now.query('SELECT COUNT(*) AS n FROM payment_attempts'))[0].n)).toBe(6);
    expect(await now.query("SELECT COUNT(*) AS n FROM refunds WHERE payment_out_trade_no IS NOT NULL")).toEqual([{ n: expect.anything() }]);
    await now.destroy();
  });
});
