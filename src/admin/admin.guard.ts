import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { UnauthorizedError } from '../common/errors/app-error';
import { AppConfig } from '../config/app-config';
import { AdminAuditService, auditClient } from './admin-audit.service';
import { bearerToken, matchesAnyToken, tokenFingerprint } from './admin-token';

export interface AdminRequest extends Request {
  /** Fingerprint of the admin token that authenticated this request. */
  adminFingerprint?: string;
  /** Detail a handler adds to its own audit row (e.g. a product's values before and after an edit). */
  auditDetail?: Record<string, unknown>;
}

/** The audit action of a request refused by the admin guard. */
export const AUTH_FAILED_ACTION = 'admin.auth_failed';

/**
 * `Authorization: Bearer <one of ADMIN_TOKENS>`, compared in constant time; otherwise 401. A refused
 * request is written to the audit trail here (the audit interceptor never sees it): the presented
 * token's fingerprint (`none` without one, never the token), the route, the client and the reason.
 * Failed attempts are bounded by the admin rate limit, which runs before this guard.
 */
@Injectable()
export class AdminGuard implements CanActivate {
  constructor(
    private readonly config: AppConfig,
    private readonly audit: AdminAuditService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<AdminRequest>();
    const token = bearerToken(req.headers.authorization);
    if (!token) {
      await this.recordFailure(req, 'none', 'ADMIN_TOKEN_MISSING', req.headers.authorization ? 'not a Bearer token' : 'no Authorization header');
      throw new UnauthorizedError('ADMIN_TOKEN_MISSING', 'Admin routes need "Authorization: Bearer <admin token>"');
    }
    if (!matchesAnyToken(token, this.config.admin.tokens)) {
      await this.recordFailure(req, tokenFingerprint(token), 'ADMIN_TOKEN_INVALID', 'token not in ADMIN_TOKENS');
      throw new UnauthorizedError('ADMIN_TOKEN_INVALID', 'The admin token is not valid');
    }
    req.adminFingerprint = tokenFingerprint(token);
    return true;
  }

  private async recordFailure(req: AdminRequest, fingerprint: string, code: string, reason: string): Promise<void> {
    // The path only: a query string is the client's to fill and never needed to name the route.
    const path = (req.originalUrl ?? req.url ?? '').split('?')[0];
    await this.audit.record({
      tokenFingerprint: fingerprint,
      action: AUTH_FAILED_ACTION,
      target: `${req.method} ${path}`,
      outcome: `error:${code}`,
      detail: { reason, route: path.slice(0, 256) },
      ...auditClient(req),
    });
  }
}
