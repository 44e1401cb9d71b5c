import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource, InjectRepository } from '@nestjs/typeorm';
import { DataSource, Repository } from 'typeorm';
import type { ColumnMetadata } from 'typeorm/metadata/ColumnMetadata';
import type { EntityMetadata } from 'typeorm/metadata/EntityMetadata';
import { autocommitted } from '../database/transactions';
import type { SessionUser } from '../auth/session-user';
import { Clock } from '../common/clock';
import { BadRequestError } from '../common/errors/app-error';
import { AppConfig } from '../config/app-config';
import { isDuplicateKey } from '../database/lease.service';
import { ClockSkew } from '../wechat/clock-skew';
import { WechatPayApiError, WechatPayNetworkError } from '../wechat/pay/errors';
import { InvokeParams, MerchantRef, PAYMENT_GATEWAY, PaymentGateway, PrepayResult } from '../wechat/pay/payment-gateway';
import { OrderItem } from './entities/order-item.entity';
import { Order } from './entities/order.entity';
import { PAY_CHANNELS, PayChannel, PaymentAttempt } from './entities/payment-attempt.entity';
import { isPaidOutcome, isRetryable, OrderLifecycle, withRetries } from './order-lifecycle.service';
import { OrderTimeline } from './order-timeline';
import { PaymentAttempts } from './payment-attempts';
import { OrderNotFoundError, OrderStateError, PrepayUnavailableError } from './payment.errors';
import { AttemptDirectory } from './attempt-directory';
import { SubMerchantsService } from './sub-merchants.service';
import { beijingRfc3339, timeExpireMs } from './time';

/** How long a prepay is used again: a prepay_id and a code_url live 2 hours, an h5_url 5 minutes (a margin below each). */
const PREPAY_REUSE_MS: Record<PayChannel, number> = {
  jsapi: 2 * 3600_000 - 5 * 60_000,
  miniprogram: 2 * 3600_000 - 5 * 60_000,
  native: 2 * 3600_000 - 5 * 60_000,
  h5: 5 * 60_000 - 30_000,
};
/** A prepay needs this much time before the order's expiry (capped at a quarter of ORDER_CLOSE_AFTER). */
const PREPAY_MIN_REMAINING_MS = 1000;

export type PayAnswer = { channel: PayChannel; outTradeNo: string } & InvokeParams;

/** The order of `user` with this number (another shopper's is 404, like a missing one). */
export async function ownOrder(orders: Repository<Order>, user: SessionUser, outTradeNo: string): Promise<Order> {
  const order = /^[0-9A-Za-z_\-|*]{1,32}$/.test(outTradeNo) ? await orders.findOneBy({ outTradeNo }) : null;
  if (!order || String(order.userId) !== String(user.userId)) throw new OrderNotFoundError(outTradeNo);
  return order;
}

/** An order with its items (by id) and its attempts (oldest first), read in one query. */
export interface OrderWithChildren {
  order: Order;
  items: OrderItem[];
  attempts: PaymentAttempt[];
}

/**
 * The order of `user` with this number, its items and its attempts in one joined query (a status poll
 * and a pay need all three; items × attempts rows, both few). Another shopper's is 404.
 */
export async function ownOrderWithChildren(orders: Repository<Order>, user: SessionUser, outTradeNo: string): Promise<OrderWithChildren> {
  const found = /^[0-9A-Za-z_\-|*]{1,32}$/.test(outTradeNo) ? await readWithChildren(orders.manager.connection, outTradeNo) : null;
  if (!found || String(found.order.userId) !== String(user.userId)) throw new OrderNotFoundError(outTradeNo);
  return found;
}

/**
 * The joined read of an order, its items (by id) and attempts (by seq) as TypeORM's query builder
 * made it (leftJoinAndMapMany twice, getOne) — the same SQL shape and the same entities, each column
 * hydrated by the driver as TypeORM does — but with the SQL built once per data source and the rows
 * mapped by hand: the builder's per-call query building and result transformation were the largest
 * TypeORM cost of a checkout (a pay and every status poll run this).
 */
interface JoinedRead {
  sql: string;
  parts: Array<{ metadata: EntityMetadata; columns: Array<{ alias: string; column: ColumnMetadata }>; key: string }>;
}
const joinedReads = new WeakMap<DataSource, JoinedRead>();

function joinedRead(dataSource: DataSource): JoinedRead {
  let read = joinedReads.get(dataSource);
  if (read) return read;
  const q = (name: string) => dataSource.driver.escape(name);
  const parts = (
    [
      [Order, 'o'],
      [OrderItem, 'i'],
      [PaymentAttempt, 'a'],
    ] as const
  ).map(([target, alias]) => {
    const metadata = dataSource.getMetadata(target);
    const columns = metadata.columns.map((column) => ({ alias: `${alias}_${column.databaseName}`, column }));
    return { metadata, alias, columns, key: `${alias}_${metadata.primaryColumns[0].databaseName}` };
  });
  const select = parts.flatMap((p) => p.columns.map((c) => `${q(p.alias)}.${q(c.column.databaseName)} AS ${q(c.alias)}`)).join(', ');
  const sql =
    `SELECT ${select} FROM ${q('orders')} ${q('o')}` +
    ` LEFT JOIN ${q('order_items')} ${q('i')} ON ${q('i')}.${q('order_id')} = ${q('o')}.${q('id')}` +
    ` LEFT JOIN ${q('payment_attempts')} ${q('a')} ON ${q('a')}.${q('order_id')} = ${q('o')}.${q('id')}` +
    ` WHERE ${q('o')}.${q('out_trade_no')} = ? ORDER BY ${q('i')}.${q('id')} ASC, ${q('a')}.${q('seq')} ASC`;
  read = { sql, parts };
  joinedReads.set(dataSource, read);
  return read;
}

async function readWithChildren(dataSource: DataSource, outTradeNo: string): Promise<OrderWithChildren | null> {
  const { sql, parts } = joinedRead(dataSource);
  const rows = (await dataSource.query(sql, [outTradeNo])) as Array<Record<string, unknown>>;
  if (!rows.length) return null;
  const [orderPart, itemPart, attemptPart] = parts;
  const hydrate = <T>(part: JoinedRead['parts'][number], row: Record<string, unknown>): T => {
    const entity = part.metadata.create(undefined, { fromDeserializer: true }) as Record<string, unknown>;
    for (const { alias, column } of part.columns) {
      const value = row[alias];
      if (value !== undefined) column.setEntityValue(entity, dataSource.driver.prepareHydratedValue(value, column));
    }
    return entity as T;
  };
  const distinct = <T>(part: JoinedRead['parts'][number]): T[] => {
    const seen = new Map<string, T>();
    for (const row of rows) {
      const id = row[part.key];
      if (id === null || id === undefined || seen.has(String(id))) continue;
      seen.set(String(id), hydrate<T>(part, row));
    }
    return [...seen.values()];
  };
  return { order: hydrate<Order>(orderPart, rows[0]), items: distinct<OrderItem>(itemPart), attempts: distinct<PaymentAttempt>(attemptPart) };
}

export function assertPayable(order: Order): void {
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
 * POST /orders/:no/pay { channel }: reuses the current attempt's prepay while it is usable for the
 * same channel and payer; otherwise retires that attempt (query → close at WeChat, so at most one is
 * unpaid there) and opens the next one. The channel only changes which prepay is made and what the
 * front end gets (the gateway's channel table); nothing here branches on how WeChat is called.
 */
@Injectable()
export class OrderPayService {
  private readonly logger = new Logger(OrderPayService.name);

  constructor(
    @InjectRepository(Order) private readonly orders: Repository<Order>,
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly attempts: PaymentAttempts,
    private readonly lifecycle: OrderLifecycle,
    private readonly timeline: OrderTimeline,
    @Inject(PAYMENT_GATEWAY) private readonly gateway: PaymentGateway,
    private readonly config: AppConfig,
    private readonly clock: Clock,
    private readonly clockSkew: ClockSkew,
    private readonly subMerchants: SubMerchantsService,
    private readonly directory: AttemptDirectory,
  ) {}

  /** The payment notify_url: the adapter's own when it has one (APIv2's XML route), else the APIv3 route. */
  get notifyUrl(): string {
    return this.gateway.paymentNotifyUrl ?? `${this.config.publicBaseUrl}/notify/wechatpay/transaction`;
  }

  /** Where WeChat's H5 cashier sends the shopper back (whether or not they paid): the shop's result page for the order. */
  resultPage(orderOutTradeNo: string): string {
    return `${this.config.publicBaseUrl}/?result=${encodeURIComponent(orderOutTradeNo)}`;
  }

  static parseChannel(body: unknown): PayChannel {
    const raw = body && typeof body === 'object' ? (body as Record<string, unknown>).channel : undefined;
    if (raw === undefined || raw === null) return 'jsapi';
    if (typeof raw === 'string' && (PAY_CHANNELS as readonly string[]).includes(raw)) return raw as PayChannel;
    throw new BadRequestError('INVALID_CHANNEL', `channel must be one of ${PAY_CHANNELS.join(', ')}`, { validChannels: [...PAY_CHANNELS] });
  }

  async pay(user: SessionUser, outTradeNo: string, channel: PayChannel, clientIp?: string): Promise<PayAnswer> {
    const { order, items, attempts } = await ownOrderWithChildren(this.orders, user, outTradeNo);
    assertPayable(order);
    // The order's sub-merchant (service-provider mode), with its own official account when it has one.
    const merchant = await this.subMerchants.merchantRef(order);
    const payer = this.payerFor(channel, user, merchant);
    const ip = clientIp && /^[0-9a-fA-F.:]{3,45}$/.test(clientIp) ? clientIp : undefined;
    if (channel === 'h5' && !ip) throw new BadRequestError('CLIENT_IP_UNKNOWN', "H5 pay needs the shopper's IP address, which this request does not show");
    const now = this.clock.now();
    // WeChat sees the expiry to the second (time_expire) and refuses a prepay whose time_expire has
    // passed; an order with less than a moment left is answered here, as expired, not as a 502.
    const margin = Math.min(PREPAY_MIN_REMAINING_MS, this.config.orders.closeAfterMs / 4);
    if (timeExpireMs(order.expiresAt) - now.getTime() < margin) {
      throw new OrderStateError('ORDER_EXPIRED', 'the order expired unpaid and is being closed; place a new order', order.status);
    }
    const attempt = await this.attemptFor(order, channel, payer, attempts.length ? attempts[attempts.length - 1] : null);
    if (attempt.prepayAt && (attempt.prepayId || attempt.prepayUrl)) {
      return this.answer(order, attempt, storedPrepay(attempt));
    }
    const { prepayRetries, prepayRetryBackoffMs } = this.config.orders;
    let calls = 0;
    // Built once per time_expire: every retry sends exactly the same body, which WeChat answers with
    // the same prepay. A prepay again of this attempt repeats the time_expire it was first sent with
    // (WeChat refuses a repeated out_trade_no whose parameters differ).
    const prepayWith = (timeExpire: Date) =>
      withRetries(
        () => {
          calls++;
          return this.gateway.prepay(channel, {
            outTradeNo: attempt.outTradeNo,
            description: order.description,
            total: order.total,
            expiresAt: timeExpire,
            notifyUrl: this.notifyUrl,
            goods: items.map((i) => ({ id: String(i.productId), name: i.name, quantity: i.quantity, unitPrice: i.unitPrice })),
            payer: payer.openid ? { appid: payer.appid, openid: payer.openid } : undefined,
            clientIp: ip,
            site: this.config.orders.h5,
            merchant,
          });
        },
        prepayRetries + 1,
        prepayRetryBackoffMs,
      );
    const sentBefore = attempt.timeExpire ? new Date(Date.parse(attempt.timeExpire)) : undefined;
    let timeExpire = sentBefore ?? this.wechatTimeExpire(order);
    let prepay: PrepayResult;
    try {
      try {
        prepay = await prepayWith(timeExpire);
      } catch (error) {
        // The first answer of a fresh process may be the one that reveals WeChat's clock: a first
        // prepay refused (400, e.g. 订单已过期) while a newly measured skew moves time_expire is sent
        // once more, shifted (WeChat created nothing for the refused one).
        const shifted = this.wechatTimeExpire(order);
        if (sentBefore || !(error instanceof WechatPayApiError) || error.httpStatus !== 400 || shifted.getTime() === timeExpire.getTime()) throw error;
        this.logger.warn(
          `prepay of ${attempt.outTradeNo} refused (${error.wechatCode}: ${error.wechatMessage}) with time_expire ${beijingRfc3339(timeExpire)}; ${this.clockSkew.describe()}: sending again with time_expire ${beijingRfc3339(shifted)}`,
        );
        timeExpire = shifted;
        prepay = await prepayWith(timeExpire);
      }
    } catch (error) {
      throw await this.prepayFailed(order.outTradeNo, attempt.outTradeNo, calls, error);
    }
    const stored: { prepayId?: string; prepayUrl?: string; timeExpire: string } = {
      ...(prepay.kind === 'prepay_id' ? { prepayId: prepay.prepayId } : { prepayUrl: prepay.kind === 'h5_url' ? prepay.h5Url : prepay.codeUrl }),
      timeExpire: beijingRfc3339(timeExpire),
    };
    // A new attempt is written with its prepay (its unique number is the claim), an existing one's
    // prepay recorded (guarded on NOTPAY): one statement, autocommitted (one commit). The timeline's
    // 'attempt_opened' and 'prepay' entries are that row (OrderTimeline.list), not rows of their own.
    const planned = attempt.id === undefined;
    let recorded: boolean;
    try {
      recorded = await this.writePrepay(attempt, stored);
    } catch (error) {
      if (!planned || !isDuplicateKey(error)) throw error;
      // Another request wrote this attempt at the same moment: the same prepay for the same channel and payer.
      const winner = await this.attempts.latest(order.id);
      if (winner && winner.outTradeNo === attempt.outTradeNo && winner.prepayAt && winner.channel === channel && winner.appid === payer.appid && winner.openid === payer.openid) {
        return this.answer(order, winner, storedPrepay(winner));
      }
      throw new OrderStateError('ORDER_NOT_PAYABLE', `payment ${attempt.outTradeNo} was started by another request meanwhile; ask to pay again`, order.status);
    }
    if (!recorded) {
      // It changed under us (paid by another tab, closed by the job): say what the order is now.
      assertPayable(await this.orders.findOneByOrFail({ id: order.id }));
      throw new OrderStateError('ORDER_NOT_PAYABLE', `payment ${attempt.outTradeNo} was closed meanwhile; ask to pay again`, order.status);
    }
    // Committed: its notification can be applied without reading the attempt first (PaymentApplier).
    this.directory.remember(attempt.outTradeNo, order.outTradeNo, attempt.appid);
    return this.answer(order, attempt, prepay);
  }

  /**
   * pay's one write, a single statement needing no transaction: a new attempt inserted with its prepay,
   * guarded on its order being NOTPAY (INSERT … SELECT), or an existing attempt's prepay recorded,
   * guarded on the attempt being NOTPAY. False: the order or attempt left NOTPAY meanwhile, nothing
   * written. The order's row is not written: its current prepay is its latest attempt's.
   */
  private writePrepay(attempt: PaymentAttempt, stored: { prepayId?: string; prepayUrl?: string; timeExpire: string }): Promise<boolean> {
    const recordedAt = this.clock.now();
    return autocommitted(this.dataSource, (runner) =>
      attempt.id === undefined ? this.attempts.insertPrepaid(runner, attempt, stored, recordedAt) : this.attempts.recordPrepay(attempt, stored, runner.manager, recordedAt),
    );
  }

  /**
   * The order's time_expire as sent to WeChat: its expiry shifted by WeChat's clock as measured, so
   * that it is as far ahead of WeChat's clock as the order's expiry is of ours (a WeChat clock ahead
   * of ours would otherwise refuse a short-lived order as already expired, 订单已过期). Both sides
   * then end the order at the same instant.
   */
  private wechatTimeExpire(order: Order): Date {
    return new Date(timeExpireMs(order.expiresAt) + this.clockSkew.expiryShiftMs());
  }

  /**
   * A prepay that failed for a passing reason even after its retries: recorded on the timeline and
   * answered as PrepayUnavailableError (503, Chinese, the order stays payable). Other failures (WeChat
   * refusing the parameters, a bad signature) are passed on as they are.
   */
  private async prepayFailed(outTradeNo: string, attemptNo: string, calls: number, error: unknown): Promise<unknown> {
    if (!isRetryable(error)) return error;
    const cause =
      error instanceof WechatPayApiError
        ? { wechatStatus: error.httpStatus, wechatCode: error.wechatCode, requestId: error.requestId }
        : { wechatCode: (error as WechatPayNetworkError).code, requestId: (error as WechatPayNetworkError).requestId };
    this.logger.warn(`prepay of ${attemptNo} failed ${calls} time(s), last ${cause.wechatStatus ?? ''} ${cause.wechatCode} request-id=${cause.requestId ?? '-'}; the shopper may retry`);
    await this.timeline.record(outTradeNo, 'prepay_failed', { attempts: calls, ...(attemptNo !== outTradeNo ? { attempt: attemptNo } : {}), ...cause }).catch(() => undefined);
    return new PrepayUnavailableError(outTradeNo, calls, cause);
  }

  /** Who pays and under which appid; refuses a channel this session cannot use (nothing written yet). */
  private payerFor(channel: PayChannel, user: SessionUser, merchant: MerchantRef | undefined): { appid: string; openid: string | null } {
    const appid = this.gateway.appidFor(channel, merchant);
    const kind = user.kind;
    if (channel === 'miniprogram') {
      if (!appid) {
        throw new BadRequestError('CHANNEL_UNAVAILABLE', 'mini-program pay is not configured (WECHAT_MINIPROGRAM_APPID / WECHAT_MINIPROGRAM_APPSECRET); pay with jsapi, h5 or native');
      }
      if (kind !== 'miniprogram' || !user.openid) {
        throw new BadRequestError('CHANNEL_NEEDS_MINIPROGRAM', 'miniprogram pay needs a mini-program session: open the shop in the mini-program (or pay with h5 or native)');
      }
      return { appid, openid: user.openid };
    }
    if (!appid) throw new BadRequestError('CHANNEL_UNAVAILABLE', `${channel} pay is not configured`);
    if (channel === 'jsapi') {
      if (kind !== 'wechat' || !user.openid) {
        throw new BadRequestError('CHANNEL_NEEDS_WECHAT', 'jsapi pay works inside WeChat only: open the shop in WeChat (or pay with h5 or native)');
      }
      // An openid is per official account: the shopper must have logged in through the one this
      // order is paid under (a sub-merchant's own account, or the merchant's).
      if (user.appid && user.appid !== appid) {
        const login = `/auth/wechat/authorize?scope=snsapi_base${merchant ? `&subMchid=${merchant.subMchid}` : ''}`;
        throw new BadRequestError(
          'WECHAT_ACCOUNT_MISMATCH',
          `this order is paid through the official account ${appid}, but this session logged in through ${user.appid}: log in again through ${login}`,
          { appid, loginUrl: login },
        );
      }
      return { appid, openid: user.openid };
    }
    return { appid, openid: null };
  }

  /** The attempt to pay with: the current one while usable for this channel and payer, else the next one (the current retired first). */
  private async attemptFor(
    order: Order,
    channel: PayChannel,
    payer: { appid: string; openid: string | null },
    // read with the order; undefined: read it now (after another request opened one)
    known?: PaymentAttempt | null,
  ): Promise<PaymentAttempt> {
    const latest = known !== undefined ? known : await this.attempts.latest(order.id);
    if (latest && latest.status === 'NOTPAY' && latest.channel === channel && latest.appid === payer.appid && latest.openid === payer.openid) {
      if (!latest.prepayAt) return latest; // not prepaid yet (or the prepay failed): prepay it, same parameters
      if (this.clock.nowMs() - latest.prepayAt.getTime() < PREPAY_REUSE_MS[channel]) return latest;
    }
    if (latest && latest.status === 'NOTPAY') {
      await this.retire(order, latest, latest.channel !== channel ? 'channel_switch' : 'prepay_unusable');
    }
    // Written with its prepay (pay); its 'attempt_opened' timeline entry is that row.
    return this.attempts.planned(order, (latest?.seq ?? 0) + 1, channel, payer);
  }

  /** Query → close at WeChat, then CLOSED here: a paid attempt is applied instead (and the order answered as paid). */
  private async retire(order: Order, attempt: PaymentAttempt, reason: string): Promise<void> {
    if (attempt.prepayAt || attempt.prepayId) {
      const state = await this.lifecycle.queryAndApply(order, attempt, 'switch-check');
      if (isPaidOutcome(state)) throw new OrderStateError('ORDER_PAID', `order ${order.outTradeNo} is already paid`, 'PAID');
      if (state === 'USERPAYING') {
        throw new OrderStateError('PAYMENT_IN_PROGRESS', `payment ${attempt.outTradeNo} is being paid right now; wait for its result before choosing another way to pay`, order.status);
      }
      if (state !== 'CLOSED' && state !== 'REVOKED' && state !== 'ORDER_NOT_EXIST') {
        const closed = await this.lifecycle.closeAttemptAtWechat(order, attempt, reason, 'switch-check');
        if (closed === 'paid') throw new OrderStateError('ORDER_PAID', `order ${order.outTradeNo} is already paid`, 'PAID');
        if (closed !== 'closed') assertPayable(await this.orders.findOneByOrFail({ id: order.id }));
      }
    }
    if (await this.attempts.markClosed(attempt)) {
      await this.timeline.record(order.outTradeNo, 'attempt_closed', { attempt: attempt.outTradeNo, channel: attempt.channel, reason });
    }
    assertPayable(await this.orders.findOneByOrFail({ id: order.id }));
  }

  private answer(order: Order, attempt: PaymentAttempt, prepay: PrepayResult): PayAnswer {
    const params = this.gateway.invokeParams(attempt.channel, prepay, attempt.appid ?? this.gateway.appidFor(attempt.channel)!);
    if (params.h5Url) params.h5Url = `${params.h5Url}&redirect_url=${encodeURIComponent(this.resultPage(order.outTradeNo))}`;
    return { channel: attempt.channel, outTradeNo: attempt.outTradeNo, ...params };
  }
}

function storedPrepay(attempt: PaymentAttempt): PrepayResult {
  if (attempt.prepayId) return { kind: 'prepay_id', prepayId: attempt.prepayId };
  if (attempt.channel === 'h5') return { kind: 'h5_url', h5Url: attempt.prepayUrl! };
  return { kind: 'code_url', codeUrl: attempt.prepayUrl! };
}
