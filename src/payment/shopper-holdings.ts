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
 * Creates of one shopper take turns on a row of shopper_order_locks (an upsert takes its row lock
 * until commit), so N parallel requests of one shopper — the hoarding attack — cannot all pass the
 * count before any of them commits. On SQLite transactions take turns anyway (no lock row is written). Retry-After is the time
 * until the first of the shopper's holding orders expires (and is closed, freeing its slot).
 */
export async function assertWithinHoldings(manager: EntityManager, userId: string, lines: WantedLine[], limits: HoldingLimits, nowMs: number): Promise<void> {
  const checksUnits = limits.maxReservedPerProduct > 0 && lines.some((line) => line.stocked);
  if (limits.maxOpenPerUser <= 0 && !checksUnits) return;
  const mysql = manager.connection.options.type === 'mysql' || manager.connection.options.type === 'mariadb';
  // SQLite needs no lock row: its transactions take turns (inTransaction), and another process's
  // write between this count and this transaction's first write fails that write (SQLITE_BUSY) rather
  // than letting both pass.
  if (mysql) {
    await manager.query('INSERT INTO shopper_order_locks (user_id, creates) VALUES (?, 1) ON DUPLICATE KEY UPDATE creates = creates + 1', [userId]);
  }
  const rows: Array<{ id: string | number; expires_at: Date | string; product_id: string | number; quantity: number }> = await manager.query(
    "SELECT o.id, o.expires_at, i.product_id, i.quantity FROM orders o JOIN order_items i ON i.order_id = o.id WHERE o.user_id = ? AND o.status = 'NOTPAY'",
    [userId],
  );
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
