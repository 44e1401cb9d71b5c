import { Global, Module } from '@nestjs/common';
import { ThrottlerModule } from '@nestjs/throttler';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AppConfig } from '../config/app-config';
import { AdminAuditInterceptor } from './admin-audit.interceptor';
import { AdminAuditService } from './admin-audit.service';
import { AdminThrottlerGuard } from './admin-throttler.guard';
import { AdminController } from './admin.controller';
import { AdminGuard } from './admin.guard';
import { AdminAuditEntry } from './entities/admin-audit.entity';

/**
 * Admin access shared by every module with /admin/* routes (products, refunds, orders, bills):
 * bearer-token guard, per-client rate limit, and the admin_audit trail. Use `@AdminOnly()` on a
 * controller and `@Audit('action', target)` on handlers that move money or data.
 */
@Global()
@Module({
  imports: [
    TypeOrmModule.forFeature([
      AdminAuditEntry,
    ]),
    ThrottlerModule.forRootAsync({
      inject: [AppConfig],
      useFactory: (config: AppConfig) => ({
        throttlers: [{ name: 'admin', ttl: 60_000, limit: config.admin.rateLimitPerMinute }],
        errorMessage: 'Too many admin requests; slow down and retry in a minute',
      }),
    }),
  ],
  controllers: [AdminController],
  providers: [AdminGuard, AdminThrottlerGuard, AdminAuditService, AdminAuditInterceptor],
  exports: [AdminGuard, AdminThrottlerGuard, AdminAuditService, AdminAuditInterceptor, ThrottlerModule],
})
export class AdminModule {}
