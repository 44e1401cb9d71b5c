import { CanActivate, ExecutionContext, Injectable, UnauthorizedException } from '@nestjs/common';
import type { Request, Response } from 'express';
import { createHash, timingSafeEqual } from 'node:crypto';
import { AppConfig } from '../config/app-config';

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/**
 * SANDBOX_CONTROL_TOKEN: when set, every /sandbox/control/* call needs `Authorization: Bearer <token>`
 * (compared in constant time); when unset the control API stays open, as the sandbox binds 127.0.0.1.
 */
@Injectable()
export class SandboxControlTokenGuard implements CanActivate {
  private readonly expected?: Buffer;

  constructor(config: AppConfig) {
    this.expected = config.sandbox.controlToken ? digest(config.sandbox.controlToken) : undefined;
  }

  canActivate(context: ExecutionContext): boolean {
    if (!this.expected) return true;
    const http = context.switchToHttp();
    const header = http.getRequest<Request>().headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (match && timingSafeEqual(digest(match[1]), this.expected)) return true;
    http.getResponse<Response>().setHeader('WWW-Authenticate', 'Bearer realm="sandbox-control"');
    throw new UnauthorizedException(
      match
        ? 'the bearer token does not match SANDBOX_CONTROL_TOKEN'
        : 'the sandbox control API requires Authorization: Bearer <SANDBOX_CONTROL_TOKEN>',
    );
  }
}
