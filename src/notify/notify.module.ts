import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { PaymentModule } from '../payment/payment.module';
import { PaymentEvent } from './entities/payment-event.entity';
import { AdminNotificationsController, NotifyController } from './notify.controller';
import { NotifyFastPath } from './notify-fast-path';
import { NotifyJobs } from './notify.jobs';
import { NotifyService } from './notify.service';

/** WeChat Pay notifications: verified on raw bytes, stored, decrypted, applied once. */
@Module({
  imports: [TypeOrmModule.forFeature([PaymentEvent]), PaymentModule],
  controllers: [NotifyController, AdminNotificationsController],
  providers: [NotifyService, NotifyFastPath, NotifyJobs],
  exports: [NotifyService],
})
export class NotifyModule {}
