import { Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { InjectThrottlerOptions, InjectThrottlerStorage, ThrottlerGuard, type ThrottlerModuleOptions, type ThrottlerStorage } from '@nestjs/throttler';
import { AppConfig } from '../config/app-config';
import { bearerToken, matchesAnyToken, tokenFingerprint } from './admin-token';

/**
 * Rate limit, before authentication: per admin token for a token that is one of ADMIN_TOKENS, per
 * client IP for everything else. Keying by an unverified token would give every guessed token a
 * fresh allowance, so a brute force sending a new random token per request would never be limited.
 */
@Injectable()
export class AdminThrottlerGuard extends ThrottlerGuard {
  constructor(
    @InjectThrottlerOptions() options: ThrottlerModuleOptions,
    @InjectThrottlerStorage() storage: ThrottlerStorage,
    reflector: Reflector,
    private readonly config: AppConfig,
  ) {
    super(options, storage, reflector);
  }

  protected override async getTracker(req: { headers?: { authorization?: string }; ip?: string }): Promise<string> {
    const token = bearerToken(req.headers?.authorization);
    if (token && matchesAnyToken(token, this.config.admin.tokens)) return `token:${tokenFingerprint(token)}`;
    return `ip:${req.ip}`;
  }
}
