import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { Observable, from, lastValueFrom } from 'rxjs';
import { AppError } from '../common/errors/app-error';
import { AdminAuditService, auditClient } from './admin-audit.service';
import type { AdminRequest } from './admin.guard';

export const AUDIT_METADATA = 'whp:admin-audit';

export interface AuditMetadata {
  action: string;
  /**
   * Names the object acted on, from the request and the handler's result (on success) or the error
   * (on failure: e.g. a number the handler generated, carried in the error's details).
   */
  target?: (req: AdminRequest, result?: unknown, error?: unknown) => string | undefined;
  /** Extra detail of a successful action, from its result (kept small: it is stored per audit row). */
  detail?: (req: AdminRequest, result: unknown) => Record<string, unknown> | undefined;
  /** Extra detail of a failed action, beside the error's message (e.g. what was asked for). */
  errorDetail?: (req: AdminRequest, error: unknown) => Record<string, unknown> | undefined;
}

/**
 * Records every audited admin action with its outcome, after the handler has finished either way,
 * with the client's IP and user agent. A handler may add to its row through `req.auditDetail`.
 */
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
        const detail = { ...safeDetail(meta, req, result), ...req.auditDetail };
        await this.audit.record({
          tokenFingerprint: req.adminFingerprint ?? 'unknown',
          action: meta.action,
          target: safeTarget(meta, req, result),
          outcome: 'ok',
          detail: Object.keys(detail).length ? detail : undefined,
          ...auditClient(req),
        });
        return result;
      } catch (error) {
        const code = error instanceof AppError ? error.code : ((error as { name?: string })?.name ?? 'ERROR');
        await this.audit.record({
          tokenFingerprint: req.adminFingerprint ?? 'unknown',
          action: meta.action,
          target: safeTarget(meta, req, undefined, error),
          outcome: `error:${code}`,
          detail: { message: (error as Error)?.message, ...safeErrorDetail(meta, req, error) },
          ...auditClient(req),
        });
        throw error;
      }
    };
    return from(run());
  }
}

function safeTarget(meta: AuditMetadata, req: AdminRequest, result?: unknown, error?: unknown): string | undefined {
  try {
    return meta.target?.(req, result, error);
  } catch {
    return undefined;
  }
}

function safeDetail(meta: AuditMetadata, req: AdminRequest, result: unknown): Record<string, unknown> | undefined {
  try {
    return meta.detail?.(req, result);
  } catch {
    return undefined;
  }
}

function safeErrorDetail(meta: AuditMetadata, req: AdminRequest, error: unknown): Record<string, unknown> | undefined {
  try {
    return meta.errorDetail?.(req, error);
  } catch {
    return undefined;
  }
}

/** The `details` of an AppError (e.g. to name an audit target from a failed action). */
export function errorDetails(error: unknown): Record<string, unknown> | undefined {
  return error instanceof AppError ? error.details : undefined;
}
