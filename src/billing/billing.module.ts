import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { PaymentModule } from '../payment/payment.module';
import { BillsController, ReconciliationsController } from './billing.controller';
import { BillingJobs } from './billing.jobs';
import { BillingService } from './billing.service';
import { Reconciliation } from './entities/reconciliation.entity';
import { ReconciliationService } from './reconciliation.service';

/** Bill downloads and the daily reconciliation of WeChat's bill against our orders and refunds. */
@Module({
  imports: [TypeOrmModule.forFeature([Reconciliation]), PaymentModule],
  controllers: [BillsController, ReconciliationsController],
  providers: [BillingService, ReconciliationService, BillingJobs],
  exports: [BillingService, ReconciliationService],
})
export class BillingModule {}
