import { SetMetadata, UseGuards, UseInterceptors, applyDecorators } from '@nestjs/common';
import { ApiBearerAuth, ApiTooManyRequestsResponse, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { AUDIT_METADATA, AdminAuditInterceptor, AuditMetadata } from './admin-audit.interceptor';
import { AdminThrottlerGuard } from './admin-throttler.guard';
import { AdminGuard } from './admin.guard';

/** For admin controllers: rate limit, then `Authorization: Bearer <ADMIN_TOKENS entry>`, then auditing. */
export function AdminOnly(): ClassDecorator & MethodDecorator {
  return applyDecorators(
    UseGuards(AdminThrottlerGuard, AdminGuard),
    UseInterceptors(AdminAuditInterceptor),
    ApiBearerAuth(),
    ApiUnauthorizedResponse({ description: 'Missing or invalid admin token' }),
    ApiTooManyRequestsResponse({ description: 'Too many admin requests' }),
  );
}

/** Marks an admin handler whose outcome goes to the admin_audit table. */
export function Audit(
  action: string,
  target?: AuditMetadata['target'],
  detail?: AuditMetadata['detail'],
  errorDetail?: AuditMetadata['errorDetail'],
): MethodDecorator {
  return SetMetadata(AUDIT_METADATA, { action, target, detail, errorDetail } satisfies AuditMetadata);
}
