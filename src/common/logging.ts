import { DynamicModule } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LoggerModule } from 'nestjs-pino';
import type { Options } from 'pino-http';
import type { DestinationStream } from 'pino';
import { AppConfig } from '../config/app-config';

/** Query parameters whose values never reach a log line. */
const SECRET_QUERY_PARAMS = new Set([
  'access_token',
  'refresh_token',
  'secret',
  'appsecret',
  'code',
  'js_code',
  'session_key',
  'token',
  'ticket',
  'jsapi_ticket',
  'session',
  'state',
]);

/**
 * Keys whose values are censored at the top level and one level down (`{ err: { access_token } }`).
 * Kept short on purpose: pino applies redaction when building every request's child logger, and each
 * wildcard path costs time on every request. Request/response serializers below already drop headers
 * and bodies; app code logs strings, never token-bearing objects.
 */
const SECRET_KEYS = ['authorization', 'cookie', 'access_token', 'refresh_token', 'secret', 'appsecret', 'apiv3Key', 'privateKey', 'ticket', 'password', 'session_key'];

export const REDACT_PATHS = SECRET_KEYS.flatMap((key) => [key, `*.${key}`]);

/** Replaces the values of secret query parameters: `/x?code=abc&a=1` -> `/x?code=[Redacted]&a=1`. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const raw = (eq < 0 ? pair : pair.slice(0, eq)).replace(/\+/g, ' ');
      let name: string;
      try {
        name = decodeURIComponent(raw);
      } catch {
        name = raw; // a malformed % escape: the request is answered 400; the log must not throw
      }
      return SECRET_QUERY_PARAMS.has(name.toLowerCase()) && eq >= 0 ? `${pair.slice(0, eq)}=[Redacted]` : pair;
    });
  return `${url.slice(0, q)}?${params.join('&')}`;
}

// Express's own matcher for 'trust proxy' lists (a dependency of express; no types published).
const proxyAddr = require('proxy-addr') as { compile(value: string[]): (address: string, hop: number) => boolean };

/** Whether the peer that sent this request is a proxy TRUST_PROXY trusts (so its X-Request-Id counts). */
export function fromTrustedProxy(trustProxy: AppConfig['trustProxy']): (req: IncomingMessage) => boolean {
  if (trustProxy === false) return () => false;
  if (typeof trustProxy === 'number') return () => true;
  const trust = proxyAddr.compile(trustProxy);
  return (req) => {
    const peer = req.socket?.remoteAddress;
    return peer !== undefined && trust(peer, 0);
  };
}

/** The request's id (X-Request-Id from a trusted proxy, else a fresh UUID), also answered as X-Request-Id. */
export function requestIdGenerator(config: Pick<AppConfig, 'trustProxy'>): (req: IncomingMessage, res: ServerResponse) => string {
  const trusted = fromTrustedProxy(config.trustProxy);
  return (req, res) => {
    // A client could otherwise pick (and collide) the ids that tie log lines together.
    const incoming = trusted(req) ? req.headers['x-request-id'] : undefined;
    const id = typeof incoming === 'string' && /^[\w.:-]{1,64}$/.test(incoming) ? incoming : randomUUID();
    res.setHeader('X-Request-Id', id);
    return id;
  };
}

/**
 * Whether a request can lead to any log line. At LOG_LEVEL=silent nothing is ever written, so pino-http
 * (a child logger per request) and nestjs-pino's AsyncLocalStorage context are not mounted at all
 * (issue 16: ~0.75 ms of CPU per checkout); requestIdMiddleware keeps ids and X-Request-Id.
 */
export function requestLoggingEnabled(config: Pick<AppConfig, 'logLevel'>): boolean {
  return config.logLevel !== 'silent';
}

/** Sets req.id and X-Request-Id as pino-http does, for when request logging is not mounted. */
export function requestIdMiddleware(config: Pick<AppConfig, 'trustProxy'>) {
  const genReqId = requestIdGenerator(config);
  return (req: IncomingMessage & { id?: string }, res: ServerResponse, next: () => void): void => {
    req.id = genReqId(req, res);
    next();
  };
}

export function buildLoggerModule(config: AppConfig, stream?: DestinationStream): DynamicModule {
  const options = {
        level: config.logLevel,
        redact: { paths: REDACT_PATHS, censor: '[Redacted]' },
        genReqId: requestIdGenerator(config),
        serializers: {
          req: (req: { id: string; method: string; url: string }) => ({
            id: req.id,
            method: req.method,
            url: redactUrl(req.url),
          }),
          res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
        },
        customLogLevel: (_req, res, err) =>
          err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
        // The health probes, Prometheus scrapes and static assets would drown the log.
        autoLogging: { ignore: (req) => /^\/(health(\/live|\/ready)?|metrics)$/.test(req.url ?? '') || /\.(js|css|png|svg|ico)$/.test(req.url ?? '') },
        quietReqLogger: true,
  } satisfies Options;
  // Not mounted on any route when nothing would be logged (the logger itself still backs app logs).
  return LoggerModule.forRoot({ pinoHttp: stream ? [options, stream] : options, ...(requestLoggingEnabled(config) ? {} : { forRoutes: [] }) });
}
