import { loadOrCreateSandboxKeystore, SandboxKeystore } from '../../src/sandbox/keystore';
import { craftNotification, successResource } from '../helpers/craft-notification';
import { Login } from '../helpers/login';
import { useMysql } from '../helpers/mysql';
import { Shop } from '../helpers/shop';
import { StatementCount, StatementCounter } from '../helpers/statement-counter';

/**
 * Issue 16's statement budget: SQL statements the app sends per checkout step and durable commits
 * per checkout, counted at TypeORM's query runner (a count, not a timing: it cannot flake). A step
 * over its budget today is held to today's count, so a regression fails while the budget is worked
 * towards; the test name says which.
 */
const mysql = useMysql();
interface Budget {
  step: 'create' | 'pay' | 'notify' | 'status read' | 'commits per checkout';
  budget: number;
  /**
   * Measured on main (SQLite, MariaDB), where above the budget: lower these as the budget is worked
   * towards. Payment attempts (payment_attempts, issue 13) raised pay from 5 to 9 statements and 2 to 4
   * commits, create 12 -> 13, notify 6 -> 8, status read 3 -> 4. Issue 16: create answers from what it
   * wrote (13 -> 10); a status read and a pay read the order, its items and its attempts in one joined
   * query (status read 4 -> 2, pay 9 -> 8 with the inserted attempt no longer re-read); pay records the
   * prepay, the order's and the timeline in one transaction (4 -> 2 commits, checkout 6 -> 4);
   * notify skips re-reading the orders when its guarded UPDATE moved every one of the batch (8 -> 7);
   * a new attempt is written with its prepay in pay's one transaction (pay 8 -> 7, 2 -> 1 commit,
   * checkout 4 -> 3 commits: met). The timeline's 'created' entry is read from the order's row and
   * items instead of being stored (create 10 -> 9); SQLite writes no per-shopper lock row (its
   * transactions take turns; create 9 -> 8 there); pay writes the attempt guarded on the order being
   * NOTPAY (INSERT … SELECT) and no longer copies the prepay onto the order's row (pay 7 -> 6). Notify
   * does not read the attempt and order first when the order can be told from the reported number:
   * its guarded UPDATE checks the attempt in SQL (7 -> 6; marking the attempt paid in the same
   * multi-table UPDATE on MariaDB deadlocked with concurrent duplicates, so it stays a statement). On
   * MariaDB that EXISTS is a locking read whose next-key locks deadlocked neighbouring batches under
   * bench/notify.ts, so MariaDB reads the attempts first again (7). Create prices from a short-lived
   * in-process catalog copy (CATALOG_CACHE_TTL; no products read while it is fresh), and on MariaDB
   * one statement locks the shopper's users row and reads their holdings (no shopper_order_locks
   * upsert): create 8 -> 7 on SQLite, 9 -> 7 on MariaDB (met). Pay's timeline entries
   * ('attempt_opened', 'prepay') are read from the attempt's row instead of being stored, which leaves
   * it one write, the guarded INSERT … SELECT, autocommitted without BEGIN/COMMIT (pay 6 -> 3: met).
   * An attempt's identity (order, appid) never changes once written, so an instance remembers the
   * attempts it prepaid or read (AttemptDirectory, bounded LRU) and notify's guarded UPDATE checks only
   * the order's row: no EXISTS, no read first (MariaDB notify 7 -> 6; an attempt this instance never
   * saw, e.g. after a restart, is read first as before: 7). The attempts a batch paid are marked in one
   * UPDATE (first attempts inserted in one INSERT) for the whole batch instead of one per payment.
   */
  today?: { sqlite: number; mysql: number };
}
const BUDGETS: Budget[] = [
  { step: 'create', budget: 7 },
  { step: 'pay', budget: 3 },
  { step: 'notify', budget: 4, today: { sqlite: 6, mysql: 6 } },
  { step: 'status read', budget: 2 },
  { step: 'commits per checkout', budget: 3 },
];

function bound(b: Budget): number {
  const today = b.today?.[mysql ? 'mysql' : 'sqlite'];
  return today !== undefined && today > b.budget ? today : b.budget;
}

function title(b: Budget): string {
  const limit = bound(b);
  const unit = b.step === 'commits per checkout' ? 'commits' : b.step === 'notify' ? 'statements per notification' : 'statements';
  return limit > b.budget ? `${b.step}: at most ${limit} ${unit} (budget ${b.budget}, not yet met)` : `${b.step}: at most ${b.budget} ${unit} (budget met)`;
}

describe(`statement budget per checkout step (${mysql ? 'MariaDB' : 'SQLite'})`, () => {
  let shop: Shop;
  let counter: StatementCounter;
  let keystore: SandboxKeystore;
  let alice: Login;
  const measured = new Map<Budget['step'], StatementCount>();

  beforeAll(async () => {
    // No jobs, no sandbox lease heartbeat: the app sends nothing but what the requests cause. A product
    // ordered again within CATALOG_CACHE_TTL (default 1s) is priced from the in-process catalog copy:
    // the budget counts that path (a product being sold), so the TTL is long enough that a slow
    // machine's round still finds the copy fresh (a product read is one more statement once per TTL).
    shop = await Shop.start({ env: { SANDBOX_INSTANCE_LOCK: 'false', CATALOG_CACHE_TTL: '60s' } });
    keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
    const mug = await shop.product('马克杯', 3900, 1000);
    alice = await shop.login('o_alice_budget');
    counter = StatementCounter.attach(shop.t.app);

    // A warm-up checkout first (first-use lookups such as certificates are not per checkout).
    for (let round = 0; round < 2; round++) {
      const create = await counter.measure(() => shop.order(alice, [{ productId: mug.id, quantity: 1 }]));
      expect(create.result.status).toBe(201);
      const no: string = create.result.body.outTradeNo;
      const pay = await counter.measure(() => shop.http().post(`/orders/${no}/pay`).set(alice.headers));
      expect(pay.result.status).toBe(200);
      const resource = successResource(keystore, no, 3900, { payer: { openid: 'o_alice_budget' } });
      const notification = craftNotification(keystore, resource);
      const notify = await counter.measure(() =>
        fetch(`${shop.baseUrl}/notify/wechatpay/transaction`, { method: 'POST', headers: notification.headers, body: notification.body }),
      );
      expect(notify.result.status).toBe(204);
      const read = await counter.measure(() => shop.http().get(`/orders/${no}`).set(alice.headers));
      expect(read.result.status).toBe(200);
      expect(read.result.body.status).toBe('PAID');
      measured.set('create', create);
      measured.set('pay', pay);
      measured.set('notify', notify);
      measured.set('status read', read);
      measured.set('commits per checkout', {
        statements: create.statements + pay.statements + notify.statements + read.statements,
        commits: create.commits + pay.commits + notify.commits + read.commits,
        sql: [],
      });
    }
    const lines = [`statements per checkout step (${mysql ? 'MariaDB' : 'SQLite'}):`];
    for (const [step, count] of measured) {
      lines.push(`${step}: ${count.statements} statements, ${count.commits} commits`);
      for (const sql of count.sql) lines.push(`  ${sql}`);
    }
    console.log(lines.join('\n'));
  });
  afterAll(() => shop?.close());

  for (const b of BUDGETS) {
    it(title(b), () => {
      const count = measured.get(b.step)!;
      const value = b.step === 'commits per checkout' ? count.commits : count.statements;
      expect(value).toBeGreaterThan(0);
      expect(value).toBeLessThanOrEqual(bound(b));
    });
  }
});
