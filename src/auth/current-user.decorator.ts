import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { SessionRequest } from './session.guard';
import type { SessionUser } from './session-user';

/** The shopper SessionGuard authenticated. */
export const CurrentUser = createParamDecorator((_data: unknown, context: ExecutionContext): SessionUser => {
  const user = context.switchToHttp().getRequest<SessionRequest>().sessionUser;
  if (!user) throw new Error('@CurrentUser() used on a route without SessionGuard');
  return user;
});
