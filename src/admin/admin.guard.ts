import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { UnauthorizedError } from '../common/errors/app-error';
import { AppConfig } from '../config/app-config';
import { bearerToken, matchesAnyToken, tokenFingerprint } from './admin-token';

export interface AdminRequest extends Request {
  /** Fingerprint of the admin token that authenticated this request. */
  adminFingerprint?: string;
}

/** `Authorization: Bearer <one of ADMIN_TOKENS>`, compared in constant time; otherwise 401. */
@Injectable()
export class AdminGuard implements CanActivate {
  constructor(private readonly config: AppConfig) {}

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<AdminRequest>();
    const token = bearerToken(req.headers.authorization);
    if (!token) {
      throw new UnauthorizedError('ADMIN_TOKEN_MISSING', 'Admin routes need "Authorization: Bearer <admin token>"');
    }
    if (!matchesAnyToken(token, this.config.admin.tokens)) {
      throw new UnauthorizedError('ADMIN_TOKEN_INVALID', 'The admin token is not valid');
    }
    req.adminFingerprint = tokenFingerprint(token);
    return true;
  }
}
