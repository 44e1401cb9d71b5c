import { Injectable, Logger, Module, OnApplicationBootstrap } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AppConfig } from '../config/app-config';
import { AdminOrdersController } from './admin-orders.controller';
import { CatalogService } from './catalog.service';
import { OrderEvent } from './entities/order-event.entity';
import { OrderItem } from './entities/order-item.entity';
import { Order } from './entities/order.entity';
import { Product } from './entities/product.entity';
import { OrderService } from './order.service';
import { OrdersController } from './orders.controller';
import { ORDER_PAID_AFTER_CLOSE, PaymentApplier } from './payment-applier.service';
import { PaymentJobs } from './payment.jobs';
import { AdminProductsController, ProductsController } from './products.controller';

@Injectable()
class PaymentLifecycle implements OnApplicationBootstrap {
  private readonly logger = new Logger('Payment');

  constructor(
    private readonly config: AppConfig,
    private readonly catalog: CatalogService,
    private readonly orders: OrderService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (this.config.wechatMode === 'sandbox' && this.config.orders.seedDemoProducts) await this.catalog.seedDemo();
  }

  /** A payment for an order we had closed: with PAID_AFTER_CLOSE_ACTION=reinstate, take it if stock allows. */
  @OnEvent(ORDER_PAID_AFTER_CLOSE, { async: true, promisify: true })
  async onPaidAfterClose(event: { outTradeNo: string }): Promise<void> {
    this.logger.warn(`order ${event.outTradeNo} was paid after it had been closed (action: ${this.config.orders.paidAfterCloseAction})`);
    if (this.config.orders.paidAfterCloseAction === 'reinstate') await this.orders.reinstate(event.outTradeNo);
  }
}

/** Catalog, orders, JSAPI prepay, and the jobs that reconcile and close unpaid orders. */
@Module({
  imports: [TypeOrmModule.forFeature([Product, Order, OrderItem, OrderEvent])],
  controllers: [ProductsController, AdminProductsController, OrdersController, AdminOrdersController],
  providers: [CatalogService, OrderService, PaymentApplier, PaymentJobs, PaymentLifecycle],
  exports: [CatalogService, OrderService, PaymentApplier, PaymentJobs],
})
export class PaymentModule {}
