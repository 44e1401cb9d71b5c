import { EntityManager } from 'typeorm';
import { BadRequestError, TooManyRequestsError } from '../common/errors/app-error';
import { fromDbDate } from '../database/transactions';

export interface HoldingLimits {
  /** ORDER_MAX_OPEN_PER_USER (0 = no limit). */
  maxOpenPerUser: number;
  /** ORDER_MAX_RESERVED_PER_PRODUCT (0 = no limit). */
  maxReservedPerProduct: number;
}

export interface WantedLine {
  productId: string | number;
  name: string;
  quantity: number;
  /** Only products with a stock count can be hoarded. */
  stocked: boolean;
}

/**
 * Inside the transaction that creates an order: refuses it (429, nothing written) when the shopper
 * would hold more than ORDER_MAX_OPEN_PER_USER unpaid orders, or more than
 * ORDER_MAX_RESERVED_PER_PRODUCT units of one stocked product in unpaid orders.
 *
 * Creates of one shopper take turns on the shopper's row of `users` (guests have one too), so N
 * parallel requests of one shopper — the hoarding attack — cannot all pass the count before any of
 * them commits. On MariaDB/MySQL one statement takes that row lock and reads the holdings: the lock is
 * taken in a derived table (`SELECT id FROM users WHERE id = ? FOR UPDATE`) and the orders and items
 * are joined to it by a plain (consistent, non-locking) read, whose snapshot is taken after the lock
 * was granted, so it sees every order of the shopper's creates that committed before. Only the
 * users row is locked: no record or gap locks on orders or order_items, so creates of different
 * shoppers never wait for each other here, and the lock order of close/cancel/notify (order row, then
 * product row) is untouched (create: users row, its own new rows, then product rows). On SQLite
 * transactions take turns anyway (plain read). Retry-After is the time until the first of the
 * shopper's holding orders expires (and is closed, freeing its slot).
 */
interface HoldingRow {
  id: string | number;
  expires_at: Date | string;
  product_id: string | number;
  quantity: number;
}

export async function assertWithinHoldings(manager: EntityManager, userId: string, lines: WantedLine[], limits: HoldingLimits, nowMs: number): Promise<void> {
  const checksUnits = limits.maxReservedPerProduct > 0 && lines.some((line) => line.stocked);
  if (limits.maxOpenPerUser <= 0 && !checksUnits) return;
  const mysql = manager.connection.options.type === 'mysql' || manager.connection.options.type === 'mariadb';
  // SQLite needs no lock: its transactions take turns (inTransaction), and another process's write
  // between this count and this transaction's first write fails that write (SQLITE_BUSY) rather than
  // letting both pass.
  // MariaDB: LEFT JOINs from the locked users row, so that it is read (and locked) first and even a
  // shopper holding nothing gets one row (its NULLs are dropped below).
  const rows: HoldingRow[] = (
    (await manager.query(
      mysql
        ? `SELECT o.id, o.expires_at, i.product_id, i.quantity FROM (SELECT id FROM users WHERE id = ? FOR UPDATE) u
             LEFT JOIN orders o ON o.user_id = u.id AND o.status = 'NOTPAY' LEFT JOIN order_items i ON i.order_id = o.id`
        : "SELECT o.id, o.expires_at, i.product_id, i.quantity FROM orders o JOIN order_items i ON i.order_id = o.id WHERE o.user_id = ? AND o.status = 'NOTPAY'",
      [userId],
    )) as Array<HoldingRow | { id: null; product_id: null }>
  ).filter((r): r is HoldingRow => r.id !== null && r.product_id !== null);
  const retryAfter = (expiries: Array<Date | string>) => {
    const first = Math.min(...expiries.map((e) => fromDbDate(e)!.getTime()));
    return Math.max(1, Math.ceil((first - nowMs) / 1000));
  };
  if (limits.maxOpenPerUser > 0) {
    const open = new Map(rows.map((r) => [String(r.id), r.expires_at]));
    if (open.size >= limits.maxOpenPerUser) {
      const s = retryAfter([...open.values()]);
      throw new TooManyRequestsError(
        'TOO_MANY_OPEN_ORDERS',
        `you already have ${open.size} unpaid orders (at most ${limits.maxOpenPerUser}); pay or cancel one first, or retry after ${s} s`,
        s,
        { openOrders: open.size, limit: limits.maxOpenPerUser },
      );
    }
  }
  if (checksUnits) {
    for (const line of lines) {
      if (!line.stocked) continue;
      const held = rows.filter((r) => String(r.product_id) === String(line.productId));
      const units = held.reduce((sum, r) => sum + Number(r.quantity), 0);
      if (units + line.quantity > limits.maxReservedPerProduct) {
        if (!held.length) {
          // Waiting cannot help: the request alone is over the limit.
          throw new BadRequestError('QUANTITY_OVER_LIMIT', `at most ${limits.maxReservedPerProduct} units of ${line.name} (product ${line.productId}) per shopper; ${line.quantity} requested`, {
            productId: Number(line.productId),
            limit: limits.maxReservedPerProduct,
          });
        }
        const s = retryAfter(held.map((r) => r.expires_at));
        throw new TooManyRequestsError(
          'TOO_MANY_RESERVED_UNITS',
          `at most ${limits.maxReservedPerProduct} units of ${line.name} (product ${line.productId}) can wait unpaid per shopper; ${units} are already in your unpaid orders`,
          s,
          { productId: Number(line.productId), heldUnits: units, requested: line.quantity, limit: limits.maxReservedPerProduct },
        );
      }
    }
  }
}
