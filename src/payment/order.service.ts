import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource, InjectRepository } from '@nestjs/typeorm';
import { createHash, randomBytes } from 'node:crypto';
import { DataSource, EntityManager, In, IsNull, LessThanOrEqual, Repository } from 'typeorm';
import type { SessionUser } from '../auth/session-user';
import { Clock } from '../common/clock';
import { BadRequestError } from '../common/errors/app-error';
import { AppConfig } from '../config/app-config';
import { isDuplicateKey, LeaseService } from '../database/lease.service';
import { dbDate, inTransaction, isSqlite } from '../database/transactions';
import { ClockSkew } from '../wechat/clock-skew';
import { WechatPayApiError, WechatPayNetworkError } from '../wechat/pay/errors';
import type { JsapiInvokeParams, JsapiPrepayResponse, Transaction } from '../wechat/pay/types';
import { PrepayInput, WechatPayClient } from '../wechat/pay/wechat-pay.client';
import { CatalogService } from './catalog.service';
import { CreateOrderDto, ListQueryDto, OrderDto } from './dto/order.dto';
import { OrderEvent } from './entities/order-event.entity';
import { OrderItem } from './entities/order-item.entity';
import { Order, OrderStatus } from './entities/order.entity';
import { Product } from './entities/product.entity';
import { PaymentApplier, PaymentSource } from './payment-applier.service';
import { IdempotencyConflictError, OrderNotFoundError, OrderStateError, OutOfStockError, PrepayUnavailableError, ProductNotFoundError } from './payment.errors';
import { orderDescription } from './order-description';
import { assertWithinHoldings } from './shopper-holdings';
import { ShopperLimits } from './shopper-limits';
import { beijingRfc3339, timeExpireMs } from './time';

/** A prepay_id lives 2 hours at WeChat; stop reusing it a little before. */
const PREPAY_REUSE_MS = 2 * 3600_000 - 5 * 60_000;
/** A prepay needs this much time before the order's expiry (capped at a quarter of ORDER_CLOSE_AFTER). */
const PREPAY_MIN_REMAINING_MS = 1000;
const MAX_ORDER_TOTAL = 100_000_000; // 1,000,000 yuan
const READ_QUERY_SPACING_MS = 2000;

export interface ReconcileOrder {
  outTradeNo: string;
  status: OrderStatus;
  total: number;
  paidTotal: number | null;
  transactionId: string | null;
}

export interface TimelineEntry {
  type: string;
  at: string;
  detail: unknown;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** WeChat's passing failures: SYSTEM_ERROR and other 5xx, 429 FREQUENCY_LIMITED, and the network. */
function isRetryable(error: unknown): boolean {
  return (error instanceof WechatPayApiError && (error.isServerError || error.isRateLimited)) || error instanceof WechatPayNetworkError;
}

/** Rolls back a reinstatement whose order was settled by someone else meanwhile. */
class AfterCloseSettled extends Error {}

function newOutTradeNo(now: Date): string {
  // W + yyMMddHHmmss (Beijing) + 10 random base-36 characters: 23 chars of [0-9A-Z].
  const stamp = new Date(now.getTime() + 8 * 3600_000).toISOString().replace(/\D/g, '').slice(2, 14);
  let rand = '';
  const bytes = randomBytes(10);
  for (const b of bytes) rand += (b % 36).toString(36).toUpperCase();
  return `W${stamp}${rand}`;
}

/**
 * Orders from creation to payment, cancellation and expiry. Every state change is a guarded UPDATE
 * (… WHERE status = 'NOTPAY'), so concurrent requests, jobs on several instances and duplicate
 * notifications cannot apply a change twice.
 */
@Injectable()
export class OrderService {
  private readonly logger = new Logger(OrderService.name);

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @InjectRepository(Order) private readonly orders: Repository<Order>,
    @InjectRepository(OrderItem) private readonly items: Repository<OrderItem>,
    @InjectRepository(OrderEvent) private readonly events: Repository<OrderEvent>,
    private readonly catalog: CatalogService,
    private readonly applier: PaymentApplier,
    private readonly wechat: WechatPayClient,
    private readonly config: AppConfig,
    private readonly clock: Clock,
    private readonly leases: LeaseService,
    private readonly limits: ShopperLimits,
    private readonly clockSkew: ClockSkew,
  ) {}

  get notifyUrl(): string {
    return `${this.config.publicBaseUrl}/notify/wechatpay/transaction`;
  }

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

    const now = this.clock.now();
    const outTradeNo = newOutTradeNo(now);
    try {
      await inTransaction(this.dataSource, async (_runner, manager) => {
        const wanted = lines.map((l) => ({ productId: l.product.id, name: l.product.name, quantity: l.quantity, stocked: l.product.stock !== null }));
        await assertWithinHoldings(manager, String(user.userId), wanted, this.config.orders.limits, now.getTime());
        for (const line of lines) {
          if (line.product.stock === null) continue;
          // Atomic reservation: two shoppers racing for the last unit cannot both get it.
          const res = await manager
            .createQueryBuilder()
            .update(Product)
            .set({ stock: () => 'stock - :q' })
            .where('id = :id AND stock IS NOT NULL AND stock >= :q', { id: line.product.id, q: line.quantity })
            .setParameter('q', line.quantity)
            .execute();
          if (!res.affected) throw new OutOfStockError(line.product.name, line.product.id);
        }
        const inserted = await manager.insert(Order, {
          outTradeNo,
          userId: String(user.userId),
          appid: user.appid,
          openid: user.openid,
          status: 'NOTPAY',
          total,
          currency: 'CNY',
          description,
          idempotencyKey: idempotencyKey ?? null,
          requestHash,
          // Whole seconds: time_expire has no fraction, so WeChat's deadline is exactly ours.
          expiresAt: new Date(Math.ceil((now.getTime() + this.config.orders.closeAfterMs) / 1000) * 1000),
          refundedTotal: 0,
          createdAt: now,
          updatedAt: now,
        });
        const orderId = String(inserted.identifiers[0].id);
        await manager.insert(
          OrderItem,
          lines.map((line) => ({
            orderId,
            productId: line.product.id,
            name: line.product.name,
            unitPrice: line.product.price,
            quantity: line.quantity,
            subtotal: line.subtotal,
          })),
        );
        await manager.insert(OrderEvent, {
          outTradeNo,
          type: 'created',
          detail: JSON.stringify({ total, items: lines.map((l) => ({ productId: Number(l.product.id), quantity: l.quantity })) }),
          createdAt: now,
        });
      });
    } catch (error) {
      if (idempotencyKey && isDuplicateKey(error)) {
        // Another request with the same key won the race; answer with its order.
        const replay = await this.replay(user, idempotencyKey, requestHash);
        if (replay) return { order: replay, replayed: true };
      }
      throw error;
    }
    return { order: await this.view(await this.orders.findOneByOrFail({ outTradeNo })), replayed: false };
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
    let order = await this.own(user, outTradeNo);
    if (await this.maybeQuery(order, user)) order = await this.orders.findOneByOrFail({ outTradeNo });
    return this.view(order);
  }

  private async own(user: SessionUser, outTradeNo: string): Promise<Order> {
    const order = /^[0-9A-Za-z_\-|*]{1,32}$/.test(outTradeNo) ? await this.orders.findOneBy({ outTradeNo }) : null;
    if (!order || String(order.userId) !== String(user.userId)) throw new OrderNotFoundError(outTradeNo);
    return order;
  }

  /** For an unpaid order whose prepay is a few seconds old: the truth from WeChat, applied. */
  private async maybeQuery(order: Order, user: SessionUser): Promise<boolean> {
    const now = this.clock.nowMs();
    if (order.status !== 'NOTPAY' || !order.prepayAt) return false;
    if (now - order.prepayAt.getTime() < this.config.orders.queryOnReadAfterMs) return false;
    if (order.lastQueriedAt && now - order.lastQueriedAt.getTime() < READ_QUERY_SPACING_MS) return false;
    if (!this.limits.mayQueryOnRead(user)) return false;
    try {
      const result = await this.queryAndApply(order.outTradeNo, 'query');
      return result === 'applied' || result === 'duplicate';
    } catch (error) {
      this.logger.warn(`query of ${order.outTradeNo} on read failed: ${(error as Error).message}`);
      return false;
    }
  }

  /** Queries WeChat and applies a SUCCESS; records the query on the timeline. */
  async queryAndApply(outTradeNo: string, source: PaymentSource): Promise<string> {
    const now = this.clock.now();
    await this.orders.update({ outTradeNo }, { lastQueriedAt: now });
    let tx: Transaction;
    try {
      tx = await this.wechat.queryByOutTradeNo(outTradeNo);
    } catch (error) {
      if (error instanceof WechatPayApiError && error.httpStatus === 404) {
        await this.recordEvent(outTradeNo, `${source}:ORDER_NOT_EXIST`, { requestId: error.requestId });
        return 'ORDER_NOT_EXIST';
      }
      throw error;
    }
    if (tx.trade_state === 'SUCCESS' || (tx.trade_state === 'REFUND' && tx.transaction_id)) {
      return (await this.applier.apply({ ...tx, trade_state: 'SUCCESS' }, source)).outcome;
    }
    await this.recordEvent(outTradeNo, `${source}:${tx.trade_state}`, { tradeStateDesc: tx.trade_state_desc });
    return tx.trade_state;
  }

  // ------------------------------------------------------------------ pay

  async pay(user: SessionUser, outTradeNo: string, clientIp?: string): Promise<JsapiInvokeParams> {
    const order = await this.own(user, outTradeNo);
    // JSAPI pay needs the shopper's official-account openid (a guest or a mini-program session has none).
    const openid = user.kind === 'wechat' ? user.openid : null;
    if (!openid) throw new BadRequestError('CHANNEL_UNAVAILABLE', 'jsapi pay needs a WeChat login: open the shop in WeChat');
    this.assertPayable(order);
    const now = this.clock.now();
    // WeChat sees the expiry to the second (time_expire) and refuses a prepay whose time_expire has
    // passed; an order with less than a moment left is answered here, as expired, not as a 502.
    const margin = Math.min(PREPAY_MIN_REMAINING_MS, this.config.orders.closeAfterMs / 4);
    if (timeExpireMs(order.expiresAt) - now.getTime() < margin) {
      throw new OrderStateError('ORDER_EXPIRED', 'the order expired unpaid and is being closed; place a new order', order.status);
    }
    if (order.prepayId && order.prepayAt && now.getTime() - order.prepayAt.getTime() < PREPAY_REUSE_MS) {
      return this.wechat.buildJsapiInvokeParams(order.prepayId);
    }
    const items = await this.items.findBy({ orderId: order.id });
    // Built once per time_expire: every retry sends exactly the same body, which WeChat answers with
    // the same prepay. A prepay again (the first one's prepay_id grew old) repeats the first one's
    // time_expire: WeChat refuses a repeated out_trade_no whose parameters differ.
    const requestFor = (timeExpire: string): PrepayInput => ({
      description: order.description,
      out_trade_no: order.outTradeNo,
      notify_url: this.notifyUrl,
      time_expire: timeExpire,
      amount: { total: order.total, currency: 'CNY' },
      payer: { openid },
      detail: {
        goods_detail: items.map((i) => ({ merchant_goods_id: String(i.productId), goods_name: i.name.slice(0, 256), quantity: i.quantity, unit_price: i.unitPrice })),
      },
      ...(clientIp && /^[0-9a-fA-F.:]{3,45}$/.test(clientIp) ? { scene_info: { payer_client_ip: clientIp } } : {}),
    });
    const { prepayRetries, prepayRetryBackoffMs } = this.config.orders;
    let attempts = 0;
    const prepayWith = (timeExpire: string) => {
      const request = requestFor(timeExpire);
      return this.withRetries(
        () => {
          attempts++;
          return this.wechat.prepayJsapi(request);
        },
        prepayRetries + 1,
        prepayRetryBackoffMs,
      );
    };
    const previous = order.prepayId ? await this.previousTimeExpire(outTradeNo) : undefined;
    let timeExpire = previous ?? this.wechatTimeExpire(order);
    let prepay: JsapiPrepayResponse;
    try {
      try {
        prepay = await prepayWith(timeExpire);
      } catch (error) {
        // The first answer of a fresh process may be the one that reveals WeChat's clock: a first
        // prepay refused (400, e.g. 订单已过期) while a newly measured skew moves time_expire is sent
        // once more, shifted (WeChat created nothing for the refused one).
        const shifted = this.wechatTimeExpire(order);
        if (order.prepayId || !(error instanceof WechatPayApiError) || error.httpStatus !== 400 || shifted === timeExpire) throw error;
        this.logger.warn(`prepay of ${outTradeNo} refused (${error.wechatCode}: ${error.wechatMessage}) with time_expire ${timeExpire}; ${this.clockSkew.describe()}: sending again with time_expire ${shifted}`);
        timeExpire = shifted;
        prepay = await prepayWith(timeExpire);
      }
    } catch (error) {
      throw await this.prepayFailed(outTradeNo, attempts, error);
    }
    const updated = await this.orders.update({ outTradeNo, status: 'NOTPAY' }, { prepayId: prepay.prepay_id, prepayAt: now, updatedAt: now });
    if (!updated.affected) {
      // It changed under us (paid by another tab, closed by the job): say what it is now.
      this.assertPayable(await this.orders.findOneByOrFail({ outTradeNo }));
    }
    await this.recordEvent(outTradeNo, 'prepay', { prepayId: prepay.prepay_id, reused: false, timeExpire });
    return this.wechat.buildJsapiInvokeParams(prepay.prepay_id);
  }

  /**
   * The order's time_expire as sent to WeChat: its expiry shifted by WeChat's clock as measured, so
   * that it is as far ahead of WeChat's clock as the order's expiry is of ours (a WeChat clock ahead
   * of ours would otherwise refuse a short-lived order as already expired, 订单已过期). Both sides
   * then end the order at the same instant.
   */
  private wechatTimeExpire(order: Order): string {
    return beijingRfc3339(new Date(timeExpireMs(order.expiresAt) + this.clockSkew.expiryShiftMs()));
  }

  /** The time_expire the order's last prepay carried (its timeline), if recorded. */
  private async previousTimeExpire(outTradeNo: string): Promise<string | undefined> {
    const last = await this.events.findOne({ where: { outTradeNo, type: 'prepay' }, order: { id: 'DESC' } });
    try {
      const detail = last?.detail ? (JSON.parse(last.detail) as { timeExpire?: unknown }) : undefined;
      return typeof detail?.timeExpire === 'string' ? detail.timeExpire : undefined;
    } catch {
      return undefined;
    }
  }

  private assertPayable(order: Order): void {
    switch (order.status) {
      case 'NOTPAY':
        return;
      case 'PAID':
      case 'REFUNDED':
      case 'PAID_AFTER_CLOSE':
        throw new OrderStateError('ORDER_PAID', `order ${order.outTradeNo} is already paid`, order.status);
      case 'CLOSED':
        throw new OrderStateError('ORDER_CLOSED', `order ${order.outTradeNo} is closed; place a new order`, order.status);
      default:
        throw new OrderStateError('ORDER_NOT_PAYABLE', `order ${order.outTradeNo} is ${order.status} and cannot be paid`, order.status);
    }
  }

  /**
   * A prepay that failed for a passing reason even after its retries: recorded on the timeline and
   * answered as PrepayUnavailableError (503, Chinese, the order stays payable). Other failures (WeChat
   * refusing the parameters, a bad signature) are passed on as they are.
   */
  private async prepayFailed(outTradeNo: string, attempts: number, error: unknown): Promise<unknown> {
    if (!isRetryable(error)) return error;
    const cause =
      error instanceof WechatPayApiError
        ? { wechatStatus: error.httpStatus, wechatCode: error.wechatCode, requestId: error.requestId }
        : { wechatCode: (error as WechatPayNetworkError).code, requestId: (error as WechatPayNetworkError).requestId };
    this.logger.warn(`prepay of ${outTradeNo} failed ${attempts} time(s), last ${cause.wechatStatus ?? ''} ${cause.wechatCode} request-id=${cause.requestId ?? '-'}; the shopper may retry`);
    await this.recordEvent(outTradeNo, 'prepay_failed', { attempts, ...cause }).catch(() => undefined);
    return new PrepayUnavailableError(outTradeNo, attempts, cause);
  }

  /**
   * Idempotent WeChat calls (prepay with the same parameters — same out_trade_no, same body — and close)
   * are retried on 5xx, 429 and network errors, `attempts` calls in all, waiting `backoffMs`, then
   * twice that, … (plus a little jitter) in between.
   */
  private async withRetries<T>(call: () => Promise<T>, attempts = 3, backoffMs = 100): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        if (!isRetryable(error) || attempt >= attempts) throw error;
        const wait = backoffMs * 2 ** (attempt - 1);
        await sleep(wait + Math.floor(Math.random() * Math.min(50, wait / 2 + 1)));
      }
    }
  }

  // ------------------------------------------------------------------ cancel and close

  async cancel(user: SessionUser, outTradeNo: string): Promise<OrderDto> {
    const order = await this.own(user, outTradeNo);
    if (order.status === 'CLOSED') return this.view(order);
    if (order.status !== 'NOTPAY') {
      throw new OrderStateError('ORDER_NOT_CANCELLABLE', `order ${outTradeNo} is ${order.status}; paid orders cannot be cancelled (ask for a refund)`, order.status);
    }
    const result = await this.closeOrder(order, 'cancelled', 'cancel-check');
    if (result === 'paid') {
      throw new OrderStateError('ORDER_PAID', `order ${outTradeNo} was paid in the meantime and cannot be cancelled`, 'PAID');
    }
    return this.view(await this.orders.findOneByOrFail({ outTradeNo }));
  }

  /**
   * Closes at WeChat first (when a prepay exists), then here, releasing stock. If WeChat refuses to
   * close, what it says about the order decides (see afterRefusedClose). Returns what happened.
   */
  async closeOrder(order: Order, reason: 'cancelled' | 'expired', source: PaymentSource): Promise<'closed' | 'paid' | 'unchanged'> {
    if (order.prepayId) {
      try {
        await this.withRetries(() => this.wechat.closeOrder(order.outTradeNo));
      } catch (error) {
        if (error instanceof WechatPayApiError && error.httpStatus >= 400 && error.httpStatus < 500 && !error.isRateLimited) {
          return this.afterRefusedClose(order, reason, source, error);
        }
        throw error;
      }
    }
    return (await this.closeLocally(order.outTradeNo, reason)) ? 'closed' : 'unchanged';
  }

  /**
   * WeChat answered the close with a 4xx. For a paid order its FAQ names ORDER_PAID, but neither that
   * code nor its HTTP status is confirmed, and other implementations answer e.g. 400 INVALID_REQUEST
   * or 403 TRADE_ERROR (404 ORDER_NOT_EXIST is a refusal too). So the code is never trusted to mean
   * "paid" or "not paid": the order is queried and the truth applied — paid: the payment is applied
   * (never closed over); closed, revoked or unknown at WeChat: closed here; still unpaid: closed here
   * only once its time_expire has passed (WeChat takes no payment after it), else the refusal stands.
   */
  private async afterRefusedClose(order: Order, reason: 'cancelled' | 'expired', source: PaymentSource, refusal: WechatPayApiError): Promise<'closed' | 'paid' | 'unchanged'> {
    await this.recordEvent(order.outTradeNo, `${source}:close_refused`, { wechatStatus: refusal.httpStatus, wechatCode: refusal.wechatCode, requestId: refusal.requestId });
    const state = await this.queryAndApply(order.outTradeNo, source);
    switch (state) {
      case 'applied':
      case 'duplicate':
      case 'paid_after_close':
        return 'paid';
      case 'CLOSED':
      case 'REVOKED':
      case 'ORDER_NOT_EXIST':
        return (await this.closeLocally(order.outTradeNo, reason)) ? 'closed' : 'unchanged';
      case 'NOTPAY':
      case 'PAYERROR':
        if (this.clock.nowMs() >= timeExpireMs(order.expiresAt)) {
          return (await this.closeLocally(order.outTradeNo, reason)) ? 'closed' : 'unchanged';
        }
        throw refusal;
      case 'USERPAYING':
        // The shopper is entering the password right now: neither closed nor paid yet.
        throw refusal;
      default:
        // anomaly, conflict, unknown_order: flagged and recorded by the applier; nothing to close.
        return 'unchanged';
    }
  }

  /** NOTPAY → CLOSED and the reserved stock back, in one transaction; false when it was no longer NOTPAY. */
  async closeLocally(outTradeNo: string, reason: string): Promise<boolean> {
    return inTransaction(this.dataSource, async (_runner, manager) => {
      const now = this.clock.now();
      const res = await manager.update(Order, { outTradeNo, status: 'NOTPAY' }, { status: 'CLOSED', closedAt: now, updatedAt: now });
      if (!res.affected) return false;
      const order = await manager.findOneByOrFail(Order, { outTradeNo });
      await this.releaseStock(manager, order.id);
      // `by`: which instance closed it (several may sweep; each order is closed by one).
      await manager.insert(OrderEvent, { outTradeNo, type: 'closed', detail: JSON.stringify({ reason, by: this.leases.owner }), createdAt: now });
      return true;
    });
  }

  private async releaseStock(manager: EntityManager, orderId: string): Promise<void> {
    const lines = await manager.findBy(OrderItem, { orderId });
    for (const line of lines) {
      await manager
        .createQueryBuilder()
        .update(Product)
        .set({ stock: () => 'stock + :q' })
        .where('id = :id AND stock IS NOT NULL', { id: line.productId })
        .setParameter('q', line.quantity)
        .execute();
    }
  }

  /**
   * PAID_AFTER_CLOSE_ACTION=reinstate: takes the stock again for an order paid after it was closed
   * and makes it PAID. When the stock is gone, the order is never left hanging: a refund is decided
   * instead (after_close_action = 'refund', set once by a guarded UPDATE, so a later attempt cannot
   * reinstate an order whose refund is under way). Returns 'reinstated', 'refund' (a refund is due,
   * decided now or before) or 'unchanged' (no longer PAID_AFTER_CLOSE).
   */
  async reinstate(outTradeNo: string): Promise<'reinstated' | 'refund' | 'unchanged'> {
    try {
      return await inTransaction(this.dataSource, async (_runner, manager) => {
        const order = await manager.findOneBy(Order, { outTradeNo, status: 'PAID_AFTER_CLOSE' });
        if (!order) return 'unchanged';
        if (order.afterCloseAction === 'refund') return 'refund';
        for (const line of await manager.findBy(OrderItem, { orderId: order.id })) {
          const res = await manager
            .createQueryBuilder()
            .update(Product)
            .set({ stock: () => 'stock - :q' })
            .where('id = :id AND (stock IS NULL OR stock >= :q)', { id: line.productId })
            .setParameter('q', line.quantity)
            .execute();
          if (!res.affected) throw new OutOfStockError(line.name, line.productId);
        }
        const now = this.clock.now();
        const res = await manager.update(
          Order,
          { outTradeNo, status: 'PAID_AFTER_CLOSE', afterCloseAction: IsNull() },
          { status: 'PAID', afterCloseAction: 'reinstate', updatedAt: now },
        );
        // Settled meanwhile (another instance decided a refund): roll the stock back.
        if (!res.affected) throw new AfterCloseSettled();
        await manager.insert(OrderEvent, { outTradeNo, type: 'reinstated', detail: null, createdAt: now });
        return 'reinstated' as const;
      });
    } catch (error) {
      if (error instanceof OutOfStockError) {
        return this.decideRefundAfterClose(outTradeNo, 'reinstate_failed', { reason: error.message, fallback: 'refund' });
      }
      if (error instanceof AfterCloseSettled) {
        const order = await this.orders.findOneBy({ outTradeNo });
        return order?.status === 'PAID_AFTER_CLOSE' && order.afterCloseAction === 'refund' ? 'refund' : 'unchanged';
      }
      throw error;
    }
  }

  /**
   * Decides, once, that a payment after close is refunded (records the decision and why on the
   * timeline). 'refund' when a refund is due (decided now or before), 'unchanged' when the order is
   * no longer PAID_AFTER_CLOSE or was reinstated.
   */
  async decideRefundAfterClose(outTradeNo: string, eventType: string, detail: unknown): Promise<'refund' | 'unchanged'> {
    return inTransaction(this.dataSource, async (_runner, manager) => {
      const now = this.clock.now();
      const res = await manager.update(Order, { outTradeNo, status: 'PAID_AFTER_CLOSE', afterCloseAction: IsNull() }, { afterCloseAction: 'refund', updatedAt: now });
      if (res.affected) {
        await this.recordEvent(outTradeNo, eventType, detail, manager);
        return 'refund' as const;
      }
      const order = await manager.findOneBy(Order, { outTradeNo });
      return order?.status === 'PAID_AFTER_CLOSE' && order.afterCloseAction === 'refund' ? 'refund' : 'unchanged';
    });
  }

  /**
   * Payments after close still unresolved `olderThanMs` after their last change: PAID_AFTER_CLOSE,
   * with a settlement to pursue (a decided one, or — unless the action is hold — a first decision),
   * oldest first. The caller skips those the refund module is already following (RefundProgress).
   */
  async findUnresolvedAfterClose(olderThanMs: number, limit: number, includeUndecided: boolean): Promise<Order[]> {
    const qb = this.orders
      .createQueryBuilder('o')
      .where("o.status = 'PAID_AFTER_CLOSE'")
      .andWhere('o.updated_at <= :cutoff', { cutoff: new Date(this.clock.nowMs() - olderThanMs) })
      .orderBy('o.updated_at', 'ASC')
      .take(limit);
    if (!includeUndecided) qb.andWhere('o.after_close_action IS NOT NULL');
    return qb.getMany();
  }

  /** Puts payments after close that the refund module is following out of the sweep's way for a while. */
  async deferAfterClose(outTradeNos: string[]): Promise<void> {
    if (!outTradeNos.length) return;
    await this.orders.update({ outTradeNo: In(outTradeNos), status: 'PAID_AFTER_CLOSE' }, { updatedAt: this.clock.now() });
  }

  /** Claims a retry of an unresolved payment after close (guarded: once per sweep), with a timeline entry. */
  async claimAfterCloseRetry(order: Order): Promise<boolean> {
    return inTransaction(this.dataSource, async (_runner, manager) => {
      const now = this.clock.now();
      const res = await manager.update(
        Order,
        { outTradeNo: order.outTradeNo, status: 'PAID_AFTER_CLOSE', updatedAt: LessThanOrEqual(order.updatedAt) },
        { updatedAt: now },
      );
      if (!res.affected) return false;
      await this.recordEvent(order.outTradeNo, 'after_close:retry', { action: order.afterCloseAction ?? this.config.orders.paidAfterCloseAction, by: this.leases.owner }, manager);
      return true;
    });
  }

  // ------------------------------------------------------------------ for jobs and other modules

  /**
   * GuestOrdersMerger: a guest logged in with WeChat in the same browser, so the guest's orders become
   * that shopper's. Idempotency keys the shopper already used are dropped from the moved orders (the
   * pair is unique); the guest's create-lock row goes. One transaction that holds the shopper's
   * create lock, so it cannot interleave with that shopper's order creates.
   */
  async reassignUser(fromUserId: number, toUserId: number): Promise<void> {
    await inTransaction(this.dataSource, async (_runner, manager) => {
      const mysql = !isSqlite(this.dataSource);
      await manager.query(
        mysql
          ? 'INSERT INTO shopper_order_locks (user_id, creates) VALUES (?, 0) ON DUPLICATE KEY UPDATE creates = creates'
          : 'INSERT INTO shopper_order_locks (user_id, creates) VALUES (?, 0) ON CONFLICT (user_id) DO UPDATE SET creates = creates',
        [String(toUserId)],
      );
      const taken = await manager.find(Order, { select: ['idempotencyKey'], where: { userId: String(toUserId) } });
      const keys = taken.map((o) => o.idempotencyKey).filter((k): k is string => k !== null);
      if (keys.length) await manager.update(Order, { userId: String(fromUserId), idempotencyKey: In(keys) }, { idempotencyKey: null });
      await manager.update(Order, { userId: String(fromUserId) }, { userId: String(toUserId) });
      await manager.query('DELETE FROM shopper_order_locks WHERE user_id = ?', [String(fromUserId)]);
    });
  }

  async findStale(kind: 'reconcile' | 'close', limit: number): Promise<Order[]> {
    const now = this.clock.nowMs();
    const qb = this.orders.createQueryBuilder('o').where("o.status = 'NOTPAY'").take(limit);
    if (kind === 'close') {
      qb.andWhere('o.created_at <= :cutoff', { cutoff: new Date(now - this.config.orders.closeAfterMs) }).orderBy('o.created_at', 'ASC');
    } else {
      const cutoff = new Date(now - this.config.orders.reconcileAfterMs);
      qb.andWhere('o.prepay_at IS NOT NULL AND o.prepay_at <= :cutoff', { cutoff })
        .andWhere('(o.last_queried_at IS NULL OR o.last_queried_at <= :cutoff)', { cutoff })
        .orderBy('o.prepay_at', 'ASC');
    }
    return qb.getMany();
  }

  async findByOutTradeNo(outTradeNo: string): Promise<Order | null> {
    return this.orders.findOneBy({ outTradeNo });
  }

  async recordEvent(outTradeNo: string, type: string, detail: unknown, manager?: EntityManager): Promise<void> {
    const row = { outTradeNo, type: type.slice(0, 32), detail: detail === undefined ? null : JSON.stringify(detail), createdAt: this.clock.now() };
    await (manager ? manager.insert(OrderEvent, row) : this.events.insert(row));
  }

  async timeline(outTradeNo: string): Promise<TimelineEntry[]> {
    const rows = await this.events.find({ where: { outTradeNo }, order: { id: 'ASC' } });
    return rows.map((e) => ({ type: e.type, at: e.createdAt.toISOString(), detail: e.detail ? JSON.parse(e.detail) : null }));
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
    return (await manager.findOneBy(Order, { outTradeNo }))?.status;
  }

  async adminList(filters: { status?: string; from?: Date; to?: Date; openid?: string; page: number; pageSize: number }) {
    const qb = this.orders.createQueryBuilder('o').orderBy('o.id', 'DESC').skip((filters.page - 1) * filters.pageSize).take(filters.pageSize);
    if (filters.status) qb.andWhere('o.status = :status', { status: filters.status });
    if (filters.openid) qb.andWhere('o.openid = :openid', { openid: filters.openid });
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

  /** Reconciliation: our view of the given orders (missing ones are absent from the map). */
  async reconcileView(outTradeNos: string[]): Promise<Map<string, ReconcileOrder>> {
    if (!outTradeNos.length) return new Map();
    const rows: Array<Record<string, unknown>> = await this.orders
      .createQueryBuilder('o')
      .select(['o.out_trade_no AS out_trade_no', 'o.status AS status', 'o.total AS total', 'o.paid_total AS paid_total', 'o.transaction_id AS transaction_id'])
      .where('o.out_trade_no IN (:...nos)', { nos: outTradeNos })
      .getRawMany();
    return new Map(
      rows.map((r) => [
        String(r.out_trade_no),
        {
          outTradeNo: String(r.out_trade_no),
          status: String(r.status) as OrderStatus,
          total: Number(r.total),
          paidTotal: r.paid_total === null ? null : Number(r.paid_total),
          transactionId: (r.transaction_id as string | null) ?? null,
        },
      ]),
    );
  }

  /** Reconciliation: every order paid (per WeChat's success time) in [from, to), in id order, a page at a time. */
  async *paidBetween(from: Date, to: Date, pageSize = 5000): AsyncGenerator<ReconcileOrder[]> {
    let lastId = '0';
    for (;;) {
      const rows: Array<Record<string, unknown>> = await this.orders
        .createQueryBuilder('o')
        .select(['o.id AS id', 'o.out_trade_no AS out_trade_no', 'o.status AS status', 'o.total AS total', 'o.paid_total AS paid_total', 'o.transaction_id AS transaction_id'])
        .where('o.paid_at >= :from AND o.paid_at < :to', { from, to })
        .andWhere('o.id > :lastId', { lastId })
        .orderBy('o.id', 'ASC')
        .limit(pageSize)
        .getRawMany();
      if (!rows.length) return;
      lastId = String(rows[rows.length - 1].id);
      yield rows.map((r) => ({
        outTradeNo: String(r.out_trade_no),
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
    const rows = await this.events.find({ where: { outTradeNo: In(outTradeNos), type: 'closed' }, order: { id: 'ASC' } });
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
    const closeReasons = await this.closeReasons(orders.filter((o) => o.status === 'CLOSED').map((o) => o.outTradeNo));
    return orders.map((o) => ({
      outTradeNo: o.outTradeNo,
      status: o.status,
      total: o.total,
      currency: o.currency,
      description: o.description,
      items: lines
        .filter((l) => String(l.orderId) === String(o.id))
        .map((l) => ({ productId: Number(l.productId), name: l.name, unitPrice: l.unitPrice, quantity: l.quantity, subtotal: l.subtotal })),
      createdAt: o.createdAt.toISOString(),
      paidAt: o.paidAt ? o.paidAt.toISOString() : null,
      expiresAt: o.expiresAt.toISOString(),
      closedAt: o.closedAt ? o.closedAt.toISOString() : null,
      closeReason: o.status === 'CLOSED' ? (closeReasons.get(o.outTradeNo) ?? null) : null,
      refundedTotal: o.refundedTotal,
      transactionId: o.transactionId,
      ...(admin
        ? {
            openid: o.openid,
            userId: Number(o.userId),
            paidTotal: o.paidTotal,
            payerOpenid: o.payerOpenid,
            prepayId: o.prepayId,
            prepayAt: o.prepayAt ? o.prepayAt.toISOString() : null,
            anomalyReason: o.anomalyReason,
          }
        : {}),
    }));
  }
}

