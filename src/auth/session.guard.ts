import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { bearerToken } from '../admin/admin-token';
import { LoginRequiredError } from './auth.errors';
import { AuthService } from './auth.service';
import { SessionUser } from './session-user';

export const SESSION_COOKIE = 'whp_session';

export type SessionRequest = Request & { sessionUser?: SessionUser; cookies?: Record<string, string> };

/** The session token from the cookie (browsers) or `Authorization: Bearer` (other clients). */
export function sessionTokenOf(req: SessionRequest): string | undefined {
  return bearerToken(req.headers.authorization) ?? req.cookies?.[SESSION_COOKIE];
}

/** Lets a request through only with a valid shopper session; use @CurrentUser() to read it. */
@Injectable()
export class SessionGuard implements CanActivate {
  constructor(private readonly auth: AuthService) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<SessionRequest>();
    const token = sessionTokenOf(req);
    if (!token) throw new LoginRequiredError();
    const user = await this.auth.resolveSession(token);
    if (!user) throw new LoginRequiredError('The session is invalid or has expired');
    req.sessionUser = user;
    return true;
  }
}
