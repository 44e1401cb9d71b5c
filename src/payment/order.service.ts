import { Injectable } from '@nestjs/common';
import { InjectDataSource, InjectRepository } from '@nestjs/typeorm';
import { createHash, randomBytes } from 'node:crypto';
import { DataSource, EntityManager, In, Repository } from 'typeorm';
import type { SessionUser } from '../auth/session-user';
import { Clock } from '../common/clock';
import { BadRequestError } from '../common/errors/app-error';
import { AppConfig } from '../config/app-config';
import { isDuplicateKey } from '../database/lease.service';
import { dbDate, inTransaction, isSqlite } from '../database/transactions';
import { CatalogService } from './catalog.service';
import { CreateOrderDto, ListQueryDto, OrderDto } from './dto/order.dto';
import { OrderEvent } from './entities/order-event.entity';
import { OrderItem } from './entities/order-item.entity';
import { Order, OrderStatus } from './entities/order.entity';
import { PaymentAttempt } from './entities/payment-attempt.entity';
import { Product } from './entities/product.entity';
import { OrderLifecycle } from './order-lifecycle.service';
import { OrderPayService, ownOrder, ownOrderWithChildren, PayAnswer } from './order-pay.service';
import { OrderTimeline, TimelineEntry } from './order-timeline';
import { PaymentAttempts } from './payment-attempts';
import { IdempotencyConflictError, OrderNotFoundError, OutOfStockError, ProductNotFoundError } from './payment.errors';
import { orderDescription } from './order-description';
import { assertWithinHoldings } from './shopper-holdings';
import { ShopperLimits } from './shopper-limits';
import { SubMerchantsService } from './sub-merchants.service';

export type { TimelineEntry } from './order-timeline';

const MAX_ORDER_TOTAL = 100_000_000; // 1,000,000 yuan

/** Reconciliation's view of one out_trade_no of a bill (an attempt's): the order, or the attempt's own payment when it paid twice. */
export interface ReconcileOrder {
  outTradeNo: string;
  /** The order's own number. */
  orderOutTradeNo: string;
  status: OrderStatus;
  total: number;
  paidTotal: number | null;
  transactionId: string | null;
  /** The order's sub-merchant (service-provider mode); null in direct mode. Set by reconcileView. */
  subMchid?: string | null;
}

function newOutTradeNo(now: Date): string {
  // W + yyMMddHHmmss (Beijing) + 10 random base-36 characters: 23 chars of [0-9A-Z].
  const stamp = new Date(now.getTime() + 8 * 3600_000).toISOString().replace(/\D/g, '').slice(2, 14);
  let rand = '';
  const bytes = randomBytes(10);
  for (const b of bytes) rand += (b % 36).toString(36).toUpperCase();
  return `W${stamp}${rand}`;
}

/**
 * Checkout (create, with stock reserved atomically), the shopper's and the operator's reads, and what
 * other modules need of an order (refunds, reconciliation). Paying is OrderPayService's, the order's
 * life after checkout (query, cancel, close) OrderLifecycle's, payments after close
 * AfterCloseSettlement's. Every state change is a guarded UPDATE.
 */
@Injectable()
export class OrderService {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @InjectRepository(Order) private readonly orders: Repository<Order>,
    @InjectRepository(OrderItem) private readonly items: Repository<OrderItem>,
    private readonly catalog: CatalogService,
    private readonly payments: OrderPayService,
    private readonly lifecycle: OrderLifecycle,
    private readonly attempts: PaymentAttempts,
    private readonly timelines: OrderTimeline,
    private readonly config: AppConfig,
    private readonly clock: Clock,
    private readonly limits: ShopperLimits,
    private readonly subMerchants: SubMerchantsService,
  ) {}

  // ------------------------------------------------------------------ create

  async create(user: SessionUser, dto: CreateOrderDto, idempotencyKey?: string): Promise<{ order: OrderDto; replayed: boolean }> {
    if (idempotencyKey !== undefined && !/^[\x21-\x7e]{1,64}$/.test(idempotencyKey)) {
      throw new BadRequestError('INVALID_IDEMPOTENCY_KEY', 'Idempotency-Key must be 1-64 printable ASCII characters');
    }
    const requestHash = createHash('sha256')
      .update(JSON.stringify(dto.items.map((i) => [i.productId, i.quantity])))
      .digest('hex');
    if (idempotencyKey) {
      const replay = await this.replay(user, idempotencyKey, requestHash);
      if (replay) return { order: replay, replayed: true };
    }
    // A replay above is free; a new order counts against ORDER_CREATE_RATE_LIMIT.
    this.limits.take(user, 'create');
    // Merge repeated product lines, validate against the catalog (prices come from here only).
    const quantities = new Map<number, number>();
    for (const item of dto.items) quantities.set(item.productId, (quantities.get(item.productId) ?? 0) + item.quantity);
    for (const [productId, quantity] of quantities) {
      if (quantity > 99) throw new BadRequestError('VALIDATION_FAILED', `quantity of product ${productId} must be at most 99 in total`);
    }
    const products = await this.catalog.findActive([...quantities.keys()]);
    const pricedAt = performance.now();
    const found = new Map(products.map((p) => [Number(p.id), p]));
    const missing = [...quantities.keys()].filter((id) => !found.has(id));
    if (missing.length) throw new ProductNotFoundError(missing);
    const lines = [...quantities.entries()].map(([productId, quantity]) => {
      const product = found.get(productId)!;
      return { product, quantity, subtotal: product.price * quantity };
    });
    const total = lines.reduce((sum, line) => sum + line.subtotal, 0);
    if (total > MAX_ORDER_TOTAL) throw new BadRequestError('ORDER_TOO_LARGE', `order total ${total} fen exceeds the limit of ${MAX_ORDER_TOTAL} fen`);
    const description = orderDescription(lines.map((line) => line.product.name));
    // Service-provider mode: one sub-merchant per order (400 mixed, 409 disabled), checked before anything is written.
    const subMchid = await this.subMerchants.forOrder(lines.map((line) => line.product.subMchid));

    // Fail fast (a sale's sold-out product): the stock just read is already short, so the guarded
    // UPDATE below could only refuse; answer without a transaction or a wait on the product's row lock.
    // A stock read as enough is still only a hint: the guarded UPDATE decides.
    for (const line of lines) {
      if (line.product.stock !== null && line.product.stock < line.quantity) throw new OutOfStockError(line.product.name, line.product.id);
    }
    // A sale (one stocked product): creates beyond the hinted stock wait here for those in flight to
    // settle instead of queueing on the product's row lock, and are refused from memory once they sold it.
    const stocked = lines.filter((line) => line.product.stock !== null);
    const admitted = stocked.length === 1 ? await this.catalog.admit(stocked[0].product.id, stocked[0].quantity) : undefined;
    if (admitted === 'short') throw new OutOfStockError(stocked[0].product.name, stocked[0].product.id);
    try {
      return await this.insertOrder(user, lines, total, description, subMchid, idempotencyKey, requestHash, pricedAt);
    } finally {
      admitted?.();
    }
  }

  /** The create transaction: holdings, order, items, then the guarded stock UPDATE; the catalog's stock hint learns from it. */
  private async insertOrder(
    user: SessionUser,
    lines: Array<{ product: Product; quantity: number; subtotal: number }>,
    total: number,
    description: string,
    subMchid: string | null,
    idempotencyKey: string | undefined,
    requestHash: string,
    pricedAt: number,
  ): Promise<{ order: OrderDto; replayed: boolean }> {
    const now = this.clock.now();
    const outTradeNo = newOutTradeNo(now);
    let created: { order: Order; items: OrderItem[] } | undefined;
    let short: (typeof lines)[number] | undefined;
    try {
      await inTransaction(this.dataSource, async (_runner, manager) => {
        const wanted = lines.map((l) => ({ productId: l.product.id, name: l.product.name, quantity: l.quantity, stocked: l.product.stock !== null }));
        await assertWithinHoldings(manager, String(user.userId), wanted, this.config.orders.limits, now.getTime());
        const row: Omit<Order, 'id'> = {
          outTradeNo,
          userId: String(user.userId),
          appid: user.appid,
          openid: user.openid,
          status: 'NOTPAY',
          subMchid,
          total,
          currency: 'CNY',
          description,
          idempotencyKey: idempotencyKey ?? null,
          requestHash,
          // Whole seconds: time_expire has no fraction, so WeChat's deadline is exactly ours.
          expiresAt: new Date(Math.ceil((now.getTime() + this.config.orders.closeAfterMs) / 1000) * 1000),
          refundedTotal: 0,
          prepayId: null,
          prepayAt: null,
          transactionId: null,
          payerOpenid: null,
          paidTotal: null,
          paidAt: null,
          paidBatch: null,
          closedAt: null,
          anomalyReason: null,
          afterCloseAction: null,
          lastQueriedAt: null,
          createdAt: now,
          updatedAt: now,
        };
        const inserted = await manager.insert(Order, row);
        const orderId = String(inserted.identifiers[0].id);
        const items = lines.map((line) => ({
          orderId,
          productId: line.product.id,
          name: line.product.name,
          unitPrice: line.product.price,
          quantity: line.quantity,
          subtotal: line.subtotal,
        }));
        await manager.insert(OrderItem, items);
        // The answer is built from what was written: no re-read of the order, its items or (none yet) attempts.
        created = { order: Object.assign(new Order(), row, { id: orderId }), items: items as OrderItem[] };
        // The timeline's 'created' entry is this order row and its items (OrderTimeline.list): no row of its own.
        // Atomic reservation, last: two shoppers racing for the last unit cannot both get it, and the
        // product's row lock (the hot row of a sale) is held from here to the commit only, not across
        // the inserts above (a refusal rolls them back). Products in id order: no lock-order deadlock.
        for (const line of [...lines].sort((a, b) => Number(a.product.id) - Number(b.product.id))) {
          if (line.product.stock === null) continue;
          const res = await manager
            .createQueryBuilder()
            .update(Product)
            .set({ stock: () => 'stock - :q' })
            .where('id = :id AND stock IS NOT NULL AND stock >= :q', { id: line.product.id, q: line.quantity })
            .setParameter('q', line.quantity)
            .execute();
          if (!res.affected) {
            short = line;
            throw new OutOfStockError(line.product.name, line.product.id);
          }
        }
      });
    } catch (error) {
      // The cached catalog's stock hint (CatalogService): the next shopper for a sold-out product is refused from memory.
      if (short) this.catalog.noteStock(short.product.id, pricedAt, { lessThan: short.quantity });
      if (idempotencyKey && isDuplicateKey(error)) {
        // Another request with the same key won the race; answer with its order.
        const replay = await this.replay(user, idempotencyKey, requestHash);
        if (replay) return { order: replay, replayed: true };
      }
      throw error;
    }
    for (const line of lines) if (line.product.stock !== null) this.catalog.noteStock(line.product.id, pricedAt, { took: line.quantity });
    return { order: orderView(created!.order, created!.items, [], null, false), replayed: false };
  }

  private async replay(user: SessionUser, key: string, requestHash: string): Promise<OrderDto | undefined> {
    const existing = await this.orders.findOneBy({ userId: String(user.userId), idempotencyKey: key });
    if (!existing) return undefined;
    if (existing.requestHash !== requestHash) throw new IdempotencyConflictError();
    return this.view(existing);
  }

  // ------------------------------------------------------------------ read

  async list(user: SessionUser, query: ListQueryDto) {
    const page = query.page ?? 1;
    const pageSize = query.pageSize ?? 20;
    const where = { userId: String(user.userId), ...(query.status ? { status: query.status as OrderStatus } : {}) };
    const [rows, total] = await this.orders.findAndCount({ where, order: { id: 'DESC' }, skip: (page - 1) * pageSize, take: pageSize });
    return { items: await this.views(rows), page, pageSize, total };
  }

  /** The shopper's own order (another user's is 404). Asks WeChat first when a payment may be pending. */
  async getForUser(user: SessionUser, outTradeNo: string): Promise<OrderDto> {
    const { order, items, attempts } = await ownOrderWithChildren(this.orders, user, outTradeNo);
    // Something changed (WeChat asked): read it all again; otherwise answer from the one joined read.
    if (await this.lifecycle.maybeQuery(order, user, attempts)) return this.view(await this.orders.findOneByOrFail({ outTradeNo }));
    const closeReason = order.status === 'CLOSED' ? ((await this.closeReasons([order.outTradeNo])).get(order.outTradeNo) ?? null) : null;
    return orderView(order, items, attempts, closeReason, false);
  }

  private own(user: SessionUser, outTradeNo: string): Promise<Order> {
    return ownOrder(this.orders, user, outTradeNo);
  }

  // ------------------------------------------------------------------ pay and cancel (OrderPayService, OrderLifecycle)

  async pay(user: SessionUser, outTradeNo: string, body: unknown, clientIp?: string): Promise<PayAnswer> {
    // The channel first: a bad one is refused before anything is looked up or written.
    const channel = OrderPayService.parseChannel(body);
    return this.payments.pay(user, outTradeNo, channel, clientIp);
  }

  async cancel(user: SessionUser, outTradeNo: string): Promise<OrderDto> {
    return this.view(await this.lifecycle.cancel(await this.own(user, outTradeNo)));
  }

  // ------------------------------------------------------------------ for jobs and other modules

  /**
   * GuestOrdersMerger: a guest logged in with WeChat in the same browser, so the guest's orders become
   * that shopper's. Idempotency keys the shopper already used are dropped from the moved orders (the
   * pair is unique). One transaction that holds the shopper's create lock (their users row, as
   * assertWithinHoldings takes it), so it cannot interleave with that shopper's order creates; on
   * SQLite transactions take turns anyway.
   */
  async reassignUser(fromUserId: number, toUserId: number): Promise<void> {
    await inTransaction(this.dataSource, async (_runner, manager) => {
      if (!isSqlite(this.dataSource)) await manager.query('SELECT id FROM users WHERE id = ? FOR UPDATE', [String(toUserId)]);
      const taken = await manager.find(Order, { select: ['idempotencyKey'], where: { userId: String(toUserId) } });
      const keys = taken.map((o) => o.idempotencyKey).filter((k): k is string => k !== null);
      if (keys.length) await manager.update(Order, { userId: String(fromUserId), idempotencyKey: In(keys) }, { idempotencyKey: null });
      await manager.update(Order, { userId: String(fromUserId) }, { userId: String(toUserId) });
    });
  }

  async findByOutTradeNo(outTradeNo: string): Promise<Order | null> {
    return this.orders.findOneBy({ outTradeNo });
  }

  async recordEvent(outTradeNo: string, type: string, detail: unknown, manager?: EntityManager): Promise<void> {
    await this.timelines.record(outTradeNo, type, detail, manager);
  }

  timeline(outTradeNo: string): Promise<TimelineEntry[]> {
    return this.timelines.list(outTradeNo);
  }

  /**
   * Locks an order row for the rest of the caller's transaction (refunds: "how much is left" must not
   * change underneath). SQLite transactions are already serialised.
   */
  async lockForUpdate(manager: EntityManager, outTradeNo: string): Promise<Order | null> {
    const qb = manager.createQueryBuilder(Order, 'o').where('o.out_trade_no = :no', { no: outTradeNo });
    if (!isSqlite(this.dataSource)) qb.setLock('pessimistic_write');
    return qb.getOne();
  }

  /** Adds a completed refund to the order; a full refund makes it REFUNDED. Guarded, within the caller's transaction. */
  async addRefunded(manager: EntityManager, outTradeNo: string, amount: number): Promise<OrderStatus | undefined> {
    const now = dbDate(this.dataSource, this.clock.now());
    await manager.query(
      // status first: MySQL evaluates SET assignments left to right, each seeing the ones before it.
      `UPDATE orders SET status = CASE WHEN refunded_total + ? >= COALESCE(paid_total, total) THEN 'REFUNDED' ELSE status END,
         refunded_total = refunded_total + ?,
         updated_at = ?
       WHERE out_trade_no = ? AND status IN ('PAID', 'PAID_AFTER_CLOSE', 'ANOMALY')`,
      [amount, amount, now, outTradeNo],
    );
    const order = await manager.findOneBy(Order, { outTradeNo });
    if (order?.status === 'REFUNDED' && order.transactionId) {
      await manager.query(`UPDATE payment_attempts SET status = 'REFUNDED', updated_at = ? WHERE order_id = ? AND transaction_id = ? AND status = 'PAID'`, [
        now,
        order.id,
        order.transactionId,
      ]);
    }
    return order?.status;
  }

  /** The out_trade_no a refund of the order's payment goes to: the attempt that paid it. */
  async paidAttemptNumber(order: Order): Promise<string> {
    return (await this.paidAttempt(order)).outTradeNo;
  }

  /** The attempt that paid the order: its number and the appid it was prepaid with (null: not known, e.g. an order from before attempts). */
  async paidAttempt(order: Order): Promise<{ outTradeNo: string; appid: string | null }> {
    const attempt = await this.attempts.paidOf(order);
    return { outTradeNo: attempt?.outTradeNo ?? order.outTradeNo, appid: attempt?.appid ?? null };
  }

  /** The appid attempt `outTradeNo` was prepaid with, if known. */
  async attemptAppid(outTradeNo: string): Promise<string | null> {
    return (await this.attempts.byNumber(outTradeNo))?.appid ?? null;
  }

  /** An attempt paid on top of the order's payment (a duplicate): its number, transaction, state and appid; null otherwise. */
  async duplicatePayment(order: Order, attemptOutTradeNo: string): Promise<{ outTradeNo: string; transactionId: string; status: string; appid: string | null } | null> {
    const attempt = await this.attempts.byNumber(attemptOutTradeNo);
    if (!attempt || String(attempt.orderId) !== String(order.id) || !attempt.transactionId || attempt.transactionId === order.transactionId) return null;
    return { outTradeNo: attempt.outTradeNo, transactionId: attempt.transactionId, status: attempt.status, appid: attempt.appid ?? null };
  }

  /** A duplicate payment's attempt fully refunded → REFUNDED, in the caller's transaction. */
  async markAttemptRefunded(manager: EntityManager, attemptOutTradeNo: string): Promise<void> {
    await this.attempts.markRefunded(manager, attemptOutTradeNo);
  }

  async adminList(filters: { status?: string; from?: Date; to?: Date; openid?: string; subMchid?: string; page: number; pageSize: number }) {
    const qb = this.orders.createQueryBuilder('o').orderBy('o.id', 'DESC').skip((filters.page - 1) * filters.pageSize).take(filters.pageSize);
    if (filters.status) qb.andWhere('o.status = :status', { status: filters.status });
    if (filters.openid) qb.andWhere('o.openid = :openid', { openid: filters.openid });
    if (filters.subMchid) qb.andWhere('o.sub_mchid = :subMchid', { subMchid: filters.subMchid });
    if (filters.from) qb.andWhere('o.created_at >= :from', { from: filters.from });
    if (filters.to) qb.andWhere('o.created_at < :to', { to: filters.to });
    const [rows, total] = await qb.getManyAndCount();
    return { items: await this.views(rows, true), page: filters.page, pageSize: filters.pageSize, total };
  }

  async adminGet(outTradeNo: string) {
    const order = await this.orders.findOneBy({ outTradeNo });
    if (!order) throw new OrderNotFoundError(outTradeNo);
    return { ...(await this.view(order, true)), timeline: await this.timeline(outTradeNo) };
  }

  /**
   * Reconciliation: our view of the given out_trade_nos of a bill (attempt numbers; missing ones are
   * absent from the map). An attempt that paid on top of the order's payment is shown with its own
   * transaction and state; one that did not pay while the order is paid by another shows the
   * attempt's state (NOTPAY or CLOSED), so that WeChat's word for it is applied (as a duplicate).
   */
  async reconcileView(outTradeNos: string[]): Promise<Map<string, ReconcileOrder>> {
    if (!outTradeNos.length) return new Map();
    const rows: Array<Record<string, unknown>> = await this.orders
      .createQueryBuilder('o')
      .innerJoin('payment_attempts', 'a', 'a.order_id = o.id')
      .select([
        'a.out_trade_no AS attempt_no',
        'a.status AS attempt_status',
        'a.transaction_id AS attempt_transaction_id',
        'o.out_trade_no AS out_trade_no',
        'o.status AS status',
        'o.total AS total',
        'o.paid_total AS paid_total',
        'o.transaction_id AS transaction_id',
        'o.sub_mchid AS sub_mchid',
      ])
      .where('a.out_trade_no IN (:...nos)', { nos: outTradeNos })
      .getRawMany();
    // Orders never prepaid here have no attempt: their own number stands for the first one.
    const found = new Set(rows.map((r) => String(r.attempt_no)));
    const missing = outTradeNos.filter((no) => !found.has(no));
    if (missing.length) {
      const orphans: Array<Record<string, unknown>> = await this.orders
        .createQueryBuilder('o')
        .select(['o.out_trade_no AS out_trade_no', 'o.status AS status', 'o.total AS total', 'o.paid_total AS paid_total', 'o.transaction_id AS transaction_id', 'o.sub_mchid AS sub_mchid'])
        .where('o.out_trade_no IN (:...nos)', { nos: missing })
        .getRawMany();
      for (const o of orphans) rows.push({ ...o, attempt_no: o.out_trade_no, attempt_status: null, attempt_transaction_id: null });
    }
    return new Map(
      rows.map((r) => {
        const attemptTx = (r.attempt_transaction_id as string | null) ?? null;
        const orderTx = (r.transaction_id as string | null) ?? null;
        const base = { outTradeNo: String(r.attempt_no), orderOutTradeNo: String(r.out_trade_no), total: Number(r.total), subMchid: (r.sub_mchid as string | null) ?? null };
        let view: ReconcileOrder;
        if (attemptTx && attemptTx !== orderTx) {
          view = { ...base, status: String(r.attempt_status) as OrderStatus, paidTotal: Number(r.total), transactionId: attemptTx };
        } else if (!attemptTx && orderTx && r.attempt_no !== r.out_trade_no) {
          view = { ...base, status: (r.attempt_status === 'CLOSED' ? 'CLOSED' : 'NOTPAY') as OrderStatus, paidTotal: null, transactionId: null };
        } else {
          view = { ...base, status: String(r.status) as OrderStatus, paidTotal: r.paid_total === null ? null : Number(r.paid_total), transactionId: orderTx };
        }
        return [view.outTradeNo, view];
      }),
    );
  }

  /** Reconciliation (service-provider mode): the sub-merchant of each of these orders (by the order's own number). */
  async subMchidsOf(outTradeNos: string[]): Promise<Map<string, string | null>> {
    if (!outTradeNos.length) return new Map();
    const rows: Array<{ out_trade_no: string; sub_mchid: string | null }> = await this.orders
      .createQueryBuilder('o')
      .select(['o.out_trade_no AS out_trade_no', 'o.sub_mchid AS sub_mchid'])
      .where('o.out_trade_no IN (:...nos)', { nos: [...new Set(outTradeNos)] })
      .getRawMany();
    return new Map(rows.map((r) => [String(r.out_trade_no), r.sub_mchid ?? null]));
  }

  /**
   * Reconciliation: every order paid (per WeChat's success time) in [from, to), in id order, a page at a
   * time, by the number of the attempt that paid it; with `subMchid`, only that sub-merchant's orders.
   */
  async *paidBetween(from: Date, to: Date, pageSize = 5000, subMchid?: string): AsyncGenerator<ReconcileOrder[]> {
    let lastId = '0';
    for (;;) {
      const qb = this.orders
        .createQueryBuilder('o')
        .leftJoin('payment_attempts', 'a', 'a.order_id = o.id AND a.transaction_id = o.transaction_id')
        .select([
          'o.id AS id',
          'o.out_trade_no AS out_trade_no',
          'a.out_trade_no AS attempt_no',
          'o.status AS status',
          'o.total AS total',
          'o.paid_total AS paid_total',
          'o.transaction_id AS transaction_id',
        ])
        .where('o.paid_at >= :from AND o.paid_at < :to', { from, to })
        .andWhere('o.id > :lastId', { lastId });
      if (subMchid) qb.andWhere('o.sub_mchid = :subMchid', { subMchid });
      const rows: Array<Record<string, unknown>> = await qb.orderBy('o.id', 'ASC').limit(pageSize).getRawMany();
      if (!rows.length) return;
      lastId = String(rows[rows.length - 1].id);
      yield rows.map((r) => ({
        outTradeNo: String(r.attempt_no ?? r.out_trade_no),
        orderOutTradeNo: String(r.out_trade_no),
        status: String(r.status) as OrderStatus,
        total: Number(r.total),
        paidTotal: r.paid_total === null ? null : Number(r.paid_total),
        transactionId: (r.transaction_id as string | null) ?? null,
      }));
      if (rows.length < pageSize) return;
    }
  }

  // ------------------------------------------------------------------ views

  /** Why each closed order was closed ('cancelled' by the shopper or 'expired'), from its 'closed' timeline entry. */
  private async closeReasons(outTradeNos: string[]): Promise<Map<string, 'cancelled' | 'expired'>> {
    const reasons = new Map<string, 'cancelled' | 'expired'>();
    if (!outTradeNos.length) return reasons;
    const rows = await this.dataSource.getRepository(OrderEvent).find({ where: { outTradeNo: In(outTradeNos), type: 'closed' }, order: { id: 'ASC' } });
    for (const row of rows) {
      const reason = (row.detail ? (JSON.parse(row.detail) as { reason?: unknown }) : {}).reason;
      if (reason === 'cancelled' || reason === 'expired') reasons.set(row.outTradeNo, reason);
    }
    return reasons;
  }

  async view(order: Order, admin = false): Promise<OrderDto & Record<string, unknown>> {
    return (await this.views([order], admin))[0];
  }

  private async views(orders: Order[], admin = false): Promise<Array<OrderDto & Record<string, unknown>>> {
    if (!orders.length) return [];
    const lines = await this.items.findBy({ orderId: In(orders.map((o) => o.id)) });
    const attemptRows = await this.attempts.rowsOf(orders.map((o) => String(o.id)));
    const closeReasons = await this.closeReasons(orders.filter((o) => o.status === 'CLOSED').map((o) => o.outTradeNo));
    return orders.map((o) =>
      orderView(
        o,
        lines.filter((l) => String(l.orderId) === String(o.id)),
        attemptRows.get(String(o.id)) ?? [],
        closeReasons.get(o.outTradeNo) ?? null,
        admin,
      ),
    );
  }
}

/** The order's JSON from its row, its items and its attempts (oldest first). */
function orderView(
  o: Order,
  lines: Array<Pick<OrderItem, 'productId' | 'name' | 'unitPrice' | 'quantity' | 'subtotal'>>,
  attempts: PaymentAttempt[],
  closeReason: 'cancelled' | 'expired' | null,
  admin: boolean,
): OrderDto & Record<string, unknown> {
  const prepaid = admin ? [...attempts].reverse().find((a) => a.prepayAt) : undefined;
  return {
    outTradeNo: o.outTradeNo,
    status: o.status,
    total: o.total,
    currency: o.currency,
    description: o.description,
    items: lines.map((l) => ({ productId: Number(l.productId), name: l.name, unitPrice: l.unitPrice, quantity: l.quantity, subtotal: l.subtotal })),
    createdAt: o.createdAt.toISOString(),
    paidAt: o.paidAt ? o.paidAt.toISOString() : null,
    expiresAt: o.expiresAt.toISOString(),
    closedAt: o.closedAt ? o.closedAt.toISOString() : null,
    closeReason: o.status === 'CLOSED' ? closeReason : null,
    refundedTotal: o.refundedTotal,
    transactionId: o.transactionId,
    payments: attempts.map((a) => ({ outTradeNo: a.outTradeNo, channel: a.channel, status: a.status, createdAt: a.createdAt.toISOString() })),
    // Service-provider mode only: direct mode's order JSON is unchanged.
    ...(o.subMchid ? { subMchid: o.subMchid } : {}),
    ...(admin
      ? {
          openid: o.openid,
          userId: Number(o.userId),
          paidTotal: o.paidTotal,
          payerOpenid: o.payerOpenid,
          // the current prepay: the latest attempt's (pay writes it there only); an order from before attempts: its own columns
          prepayId: prepaid ? prepaid.prepayId : o.prepayId,
          // the attempt whose payment the order holds (refunds go there); other paid ones are duplicates
          paidOutTradeNo: o.transactionId ? (attempts.find((a) => a.transactionId === o.transactionId)?.outTradeNo ?? o.outTradeNo) : null,
          prepayAt: prepaid ? prepaid.prepayAt!.toISOString() : o.prepayAt ? o.prepayAt.toISOString() : null,
          anomalyReason: o.anomalyReason,
        }
      : {}),
  };
}

