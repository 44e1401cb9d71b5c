import { Injectable } from '@nestjs/common';
import { InjectDataSource, InjectRepository } from '@nestjs/typeorm';
import { DataSource, In, IsNull, LessThanOrEqual, Repository } from 'typeorm';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { LeaseService } from '../database/lease.service';
import { inTransaction } from '../database/transactions';
import { OrderEvent } from './entities/order-event.entity';
import { OrderItem } from './entities/order-item.entity';
import { Order } from './entities/order.entity';
import { Product } from './entities/product.entity';
import { OrderTimeline } from './order-timeline';
import { OutOfStockError } from './payment.errors';

/** Rolls back a reinstatement whose order was settled by someone else meanwhile. */
class AfterCloseSettled extends Error {}

/**
 * Settling a payment that arrived after its order was closed (PAID_AFTER_CLOSE): reinstate it when
 * the stock allows, or decide — once — to refund it; and the sweep's view of those still unresolved.
 */
@Injectable()
export class AfterCloseSettlement {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @InjectRepository(Order) private readonly orders: Repository<Order>,
    private readonly timeline: OrderTimeline,
    private readonly config: AppConfig,
    private readonly clock: Clock,
    private readonly leases: LeaseService,
  ) {}

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
        await this.timeline.record(outTradeNo, eventType, detail, manager);
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
      await this.timeline.record(order.outTradeNo, 'after_close:retry', { action: order.afterCloseAction ?? this.config.orders.paidAfterCloseAction, by: this.leases.owner }, manager);
      return true;
    });
  }

}
