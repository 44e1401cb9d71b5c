import { getDataSourceToken } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { Clock } from '../../src/common/clock';
import { LeaseService } from '../../src/database/lease.service';
import { Shop } from '../helpers/shop';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Job leases on the app's real database (SQLite, or MariaDB with TEST_DB=mysql); "B" is a second instance's LeaseService. */
describe('job leases', () => {
  let shop: Shop;
  let a: LeaseService;
  let b: LeaseService;
  let ds: DataSource;

  beforeAll(async () => {
    shop = await Shop.start();
    ds = shop.t.app.get<DataSource>(getDataSourceToken());
    a = shop.t.app.get(LeaseService);
    b = new LeaseService(ds, shop.t.app.get(Clock));
  });
  afterAll(() => shop?.close());

  it('keeps the lease while a sweep outlasts its TTL (heartbeat), then releases it', async () => {
    expect(a.owner).not.toBe(b.owner);
    let takenByB = 0;
    let triesByB = 0;
    const { ran, result } = await a.runExclusive('test.long', 300, async (lease) => {
      // a sweep of 1.2 s under a 300 ms lease: another instance must never get in
      const until = Date.now() + 1200;
      while (Date.now() < until) {
        triesByB++;
        if (await b.tryAcquire('test.long', 300)) takenByB++;
        await sleep(50);
      }
      return { lost: lease.lost, renewals: lease.renewals };
    });
    expect(ran).toBe(true);
    expect(triesByB).toBeGreaterThan(10);
    expect(takenByB).toBe(0);
    expect(result!.lost).toBe(false);
    expect(result!.renewals).toBeGreaterThanOrEqual(2);
    // released: B gets it at once
    expect(await b.tryAcquire('test.long', 300)).toBe(true);
    // and A, while B holds it, does not run
    expect((await a.runExclusive('test.long', 300, async () => 'ran')).ran).toBe(false);
    await b.release('test.long');
  });

  it('tells a holder that lost its lease to another instance, and does not take it back', async () => {
    const { result } = await a.runExclusive('test.lost', 150, async (lease) => {
      // A stalls past its expiry (as if the process had been paused); B takes the lease over.
      await ds.query("UPDATE job_leases SET expires_at = ? WHERE name = 'test.lost'", [ds.options.type === 'better-sqlite3' ? '1970-01-01 00:00:00.000' : new Date(0)]);
      expect(await b.tryAcquire('test.lost', 60_000)).toBe(true);
      const deadline = Date.now() + 2000;
      while (!lease.lost && Date.now() < deadline) await sleep(20);
      return lease.lost;
    });
    expect(result).toBe(true);
    const [row] = await ds.query("SELECT owner FROM job_leases WHERE name = 'test.lost'");
    expect(row.owner).toBe(b.owner);
    // B's lease is intact (A neither renewed nor released it)
    expect(await a.tryAcquire('test.lost', 60_000)).toBe(false);
  });
});
