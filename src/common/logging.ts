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

export function buildLoggerModule(config: AppConfig, stream?: DestinationStream): DynamicModule {
  const trusted = fromTrustedProxy(config.trustProxy);
  const options = {
        level: config.logLevel,
        redact: { paths: REDACT_PATHS, censor: '[Redacted]' },
        genReqId: (req: IncomingMessage, res: ServerResponse) => {
          // A client could otherwise pick (and collide) the ids that tie log lines together.
          const incoming = trusted(req) ? req.headers['x-request-id'] : undefined;
          const id =
            typeof incoming === 'string' && /^[\w.:-]{1,64}$/.test(incoming) ? incoming : randomUUID();
          res.setHeader('X-Request-Id', id);
          return id;
        },
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
  return LoggerModule.forRoot({ pinoHttp: stream ? [options, stream] : options });
}
