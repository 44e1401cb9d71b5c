import { Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { REFUND_NOTIFICATION_SINK } from '../notify/refund-notification.sink';
import { PaymentModule } from '../payment/payment.module';
import { REFUND_PROGRESS } from '../payment/refund-progress';
import { Refund } from './entities/refund.entity';
import { RefundController } from './refund.controller';
import { RefundJobs } from './refund.jobs';
import { RefundMetrics } from './refund.metrics';
import { RefundService } from './refund.service';

/**
 * Refunds; also the handler of refund notifications (REFUND_NOTIFICATION_SINK) for the notify module,
 * and what the payment module asks about refunds under way (REFUND_PROGRESS).
 */
@Global()
@Module({
  imports: [TypeOrmModule.forFeature([Refund]), PaymentModule],
  controllers: [RefundController],
  providers: [
    RefundService,
    RefundJobs,
    RefundMetrics,
    { provide: REFUND_NOTIFICATION_SINK, useExisting: RefundService },
    { provide: REFUND_PROGRESS, useExisting: RefundService },
  ],
  exports: [RefundService, REFUND_NOTIFICATION_SINK, REFUND_PROGRESS],
})
export class RefundModule {}
