import { Injectable, Logger, Module, OnApplicationBootstrap } from '@nestjs/common';
import { EventEmitter2, OnEvent } from '@nestjs/event-emitter';
import { TypeOrmModule } from '@nestjs/typeorm';
import { GUEST_ORDERS_MERGER } from '../auth/guest-orders-merger';
import { AppConfig } from '../config/app-config';
import { AdminOrdersController } from './admin-orders.controller';
import { CatalogService } from './catalog.service';
import { OrderEvent } from './entities/order-event.entity';
import { OrderItem } from './entities/order-item.entity';
import { Order } from './entities/order.entity';
import { Product } from './entities/product.entity';
import { AfterCloseSettlement } from './after-close.service';
import { PaymentAttempt } from './entities/payment-attempt.entity';
import { OrderLifecycle } from './order-lifecycle.service';
import { OrderPayService } from './order-pay.service';
import { OrderService } from './order.service';
import { OrderTimeline } from './order-timeline';
import { AttemptDirectory } from './attempt-directory';
import { PaymentAttempts } from './payment-attempts';
import { OrdersController } from './orders.controller';
import { ORDER_PAID_AFTER_CLOSE, PaidAfterCloseEvent, PaymentApplier } from './payment-applier.service';
import { ShopperLimits } from './shopper-limits';
import { SubMerchant } from './entities/sub-merchant.entity';
import { AdminSubMerchantsController } from './sub-merchants.controller';
import { SubMerchantsService } from './sub-merchants.service';
import { PaymentJobs } from './payment.jobs';
import { PaymentMetrics } from './payment.metrics';
import { AdminProductsController, ProductsController } from './products.controller';

@Injectable()
class PaymentLifecycle implements OnApplicationBootstrap {
  private readonly logger = new Logger('Payment');

  constructor(
    private readonly config: AppConfig,
    private readonly catalog: CatalogService,
    private readonly subMerchants: SubMerchantsService,
    private readonly afterClose: AfterCloseSettlement,
    private readonly events: EventEmitter2,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.subMerchants.seedDefault();
    if (this.config.wechatMode === 'sandbox' && this.config.orders.seedDemoProducts) await this.catalog.seedDemo();
  }

  /**
   * A payment for an order we had closed (also re-emitted by PaymentJobs.resolvePaidAfterClose while
   * unresolved). reinstate: take it if the stock allows, else fall back to a refund (re-emitted with
   * action 'refund' for the refund module); refund: record the decision (the refund module refunds
   * from this same event); hold: an operator decides. Events with action 'refund' are the refund
   * module's alone.
   */
  @OnEvent(ORDER_PAID_AFTER_CLOSE, { async: true, promisify: true })
  async onPaidAfterClose(event: PaidAfterCloseEvent): Promise<void> {
    if (event.action === 'refund') return;
    const action = this.config.orders.paidAfterCloseAction;
    this.logger.warn(`order ${event.outTradeNo} was paid after it had been closed (action: ${action}${event.retry ? ', retry' : ''})`);
    if (action === 'reinstate') {
      if ((await this.afterClose.reinstate(event.outTradeNo)) === 'refund') {
        this.logger.warn(`order ${event.outTradeNo}: no stock to reinstate it; refunding the payment instead`);
        await this.events.emitAsync(ORDER_PAID_AFTER_CLOSE, { outTradeNo: event.outTradeNo, action: 'refund', retry: event.retry } satisfies PaidAfterCloseEvent);
      }
    } else if (action === 'refund') {
      await this.afterClose.decideRefundAfterClose(event.outTradeNo, 'after_close:refund', { reason: 'PAID_AFTER_CLOSE_ACTION=refund' });
    }
  }
}

/** Catalog, orders, JSAPI prepay, and the jobs that reconcile and close unpaid orders. */
@Module({
  imports: [TypeOrmModule.forFeature([Product, Order, OrderItem, OrderEvent, PaymentAttempt, SubMerchant])],
  controllers: [ProductsController, AdminProductsController, OrdersController, AdminOrdersController, AdminSubMerchantsController],
  providers: [
    CatalogService,
    SubMerchantsService,
    OrderService,
    OrderPayService,
    OrderLifecycle,
    AfterCloseSettlement,
    PaymentAttempts,
    AttemptDirectory,
    OrderTimeline,
    PaymentApplier,
    PaymentJobs,
    PaymentLifecycle,
    ShopperLimits,
    PaymentMetrics,
    { provide: GUEST_ORDERS_MERGER, useExisting: OrderService },
  ],
  exports: [CatalogService, SubMerchantsService, OrderService, OrderLifecycle, AfterCloseSettlement, PaymentAttempts, PaymentApplier, PaymentJobs],
})
export class PaymentModule {}
