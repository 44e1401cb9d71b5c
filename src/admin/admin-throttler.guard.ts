import { Injectable } from '@nestjs/common';
import { ThrottlerGuard } from '@nestjs/throttler';
import { bearerToken, tokenFingerprint } from './admin-token';

/** Rate limit per admin token (per client IP for requests without one), before authentication. */
@Injectable()
export class AdminThrottlerGuard extends ThrottlerGuard {
  protected override async getTracker(req: { headers?: { authorization?: string }; ip?: string }): Promise<string> {
    const token = bearerToken(req.headers?.authorization);
    return token ? `token:${tokenFingerprint(token)}` : `ip:${req.ip}`;
  }
}
