import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { Observable, from, lastValueFrom } from 'rxjs';
import { AppError } from '../common/errors/app-error';
import { AdminAuditService } from './admin-audit.service';
import type { AdminRequest } from './admin.guard';

export const AUDIT_METADATA = 'whp:admin-audit';

export interface AuditMetadata {
  action: string;
  /** Names the object acted on, from the request and (on success) the handler's result. */
  target?: (req: AdminRequest, result?: unknown) => string | undefined;
}

/** Records every audited admin action with its outcome, after the handler has finished either way. */
@Injectable()
export class AdminAuditInterceptor implements NestInterceptor {
  constructor(
    private readonly reflector: Reflector,
    private readonly audit: AdminAuditService,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const meta = this.reflector.get<AuditMetadata | undefined>(AUDIT_METADATA, context.getHandler());
    if (!meta) return next.handle();
    const req = context.switchToHttp().getRequest<AdminRequest>();
    const run = async () => {
      try {
        const result = await lastValueFrom(next.handle(), { defaultValue: undefined });
        await this.audit.record({
          tokenFingerprint: req.adminFingerprint ?? 'unknown',
          action: meta.action,
          target: safeTarget(meta, req, result),
          outcome: 'ok',
        });
        return result;
      } catch (error) {
        const code = error instanceof AppError ? error.code : ((error as { name?: string })?.name ?? 'ERROR');
        await this.audit.record({
          tokenFingerprint: req.adminFingerprint ?? 'unknown',
          action: meta.action,
          target: safeTarget(meta, req),
          outcome: `error:${code}`,
          detail: { message: (error as Error)?.message },
        });
        throw error;
      }
    };
    return from(run());
  }
}

function safeTarget(meta: AuditMetadata, req: AdminRequest, result?: unknown): string | undefined {
  try {
    return meta.target?.(req, result);
  } catch {
    return undefined;
  }
}
