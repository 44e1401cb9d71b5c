import { DynamicModule } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LoggerModule, Params } from 'nestjs-pino';
import { Store, storage } from 'nestjs-pino/storage';
import { pinoHttp, type Options } from 'pino-http';
import type { DestinationStream, Logger as PinoInstance } from 'pino';
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
 * Whether a request can lead to any log line. At LOG_LEVEL=silent nothing is ever written, so no
 * per-request logging machinery (child logger, AsyncLocalStorage context) is mounted at all (issue 16:
 * ~0.75 ms of CPU per checkout); requestIdMiddleware keeps ids and X-Request-Id.
 */
export function requestLoggingEnabled(config: Pick<AppConfig, 'logLevel'>): boolean {
  return config.logLevel !== 'silent';
}

/** Sets req.id and X-Request-Id as requestLoggingMiddleware does, for when request logging is not mounted. */
export function requestIdMiddleware(config: Pick<AppConfig, 'trustProxy'>) {
  const genReqId = requestIdGenerator(config);
  return (req: IncomingMessage & { id?: string }, res: ServerResponse, next: () => void): void => {
    req.id = genReqId(req, res);
    next();
  };
}

/** The health probes, Prometheus scrapes and static assets would drown the log: no request line for them. */
function quietUrl(url: string | undefined): boolean {
  return /^\/(health(\/live|\/ready)?|metrics)$/.test(url ?? '') || /\.(js|css|png|svg|ico)$/.test(url ?? '');
}

/** The level of a request's completion line: error for a failure or a 5xx, warn for a 4xx, else info. */
function completionLevel(res: ServerResponse, err: unknown): 'error' | 'warn' | 'info' {
  return err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info';
}

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
const FACADE_STORE = Symbol('whp.facadeStore');
type Facade = PinoInstance & { [FACADE_STORE]: RequestLogStore };

/**
 * What a request's store hands out before its child logger exists: the root logger's own methods and
 * fields, but each level method first asks whether that level is on — a line that would be dropped
 * (`logger.log()` is info; the app runs at warn) makes no child logger — and otherwise writes through
 * the request's child (`reqId`); `child()` derives from that child. One prototype per root logger.
 */
const facadePrototypes = new WeakMap<PinoInstance, PinoInstance>();
function facadePrototype(root: PinoInstance): PinoInstance {
  let proto = facadePrototypes.get(root);
  if (!proto) {
    proto = Object.create(root) as PinoInstance;
    const target = proto as unknown as Record<string, unknown>;
    for (const level of LEVELS) {
      target[level] = function (this: Facade, ...args: unknown[]) {
        if (!root.isLevelEnabled(level)) return;
        (this[FACADE_STORE].child[level] as (...a: unknown[]) => void)(...args);
      };
    }
    target.child = function (this: Facade, ...args: Parameters<PinoInstance['child']>) {
      return this[FACADE_STORE].child.child(...args);
    };
    facadePrototypes.set(root, proto);
  }
  return proto;
}

/**
 * What nestjs-pino's PinoLogger reads (store.logger) for every log line written while a request is
 * handled: the request's child logger (`reqId`), built when a line is actually written. pino-http
 * built two child loggers for every request up front (one serializing the whole request), whether or
 * not anything was logged; most requests log nothing at LOG_LEVEL=warn, and their info lines
 * (PinoLogger asks for store.logger before pino checks the level) make none either.
 */
class RequestLogStore {
  private own?: PinoInstance;
  private facade?: PinoInstance;
  readonly responseLogger = undefined;

  constructor(
    private readonly root: PinoInstance,
    private readonly id: string,
  ) {}

  /** The request's child logger, made now if it was not yet. */
  get child(): PinoInstance {
    return (this.own ??= this.root.child({ reqId: this.id }));
  }

  get logger(): PinoInstance {
    if (this.own) return this.own;
    if (!this.facade) {
      const facade = Object.create(facadePrototype(this.root)) as Facade;
      facade[FACADE_STORE] = this;
      this.facade = facade;
    }
    return this.facade;
  }

  /** PinoLogger.assign() replaces it with a child carrying more fields. */
  set logger(logger: PinoInstance) {
    this.own = logger;
  }
}

type LoggedRequest = IncomingMessage & { id?: string; log?: PinoInstance; originalUrl?: string; [REQUEST_LOG_STORE]?: RequestLogStore };

/** Where a request keeps its log store; `req.log` is a getter on the app's request prototype reading it. */
const REQUEST_LOG_STORE = Symbol('whp.requestLogStore');

/**
 * Defines `req.log` (the request's child logger, as pino-http offered it) once on the application's
 * request prototype (Express's app.request), instead of one property with its own closure per request.
 */
export function defineRequestLog(requestPrototype: object): void {
  Object.defineProperty(requestPrototype, 'log', {
    configurable: true,
    enumerable: false,
    get(this: LoggedRequest) {
      return this[REQUEST_LOG_STORE]?.child;
    },
  });
}

/**
 * The request logger (what pino-http + nestjs-pino's binding middleware did, with the same lines):
 * every request gets its id (req.id, X-Request-Id); every line logged while it is handled carries it
 * as `reqId` (AsyncLocalStorage, nestjs-pino's own store); when it completes, one line `request
 * completed` / `request errored` with `req` (id, method, redacted url), `res` (statusCode) and
 * responseTime, at info / warn (4xx) / error (5xx or a failure), unless that level is off. Child
 * loggers are made only when a line is actually written.
 * `logger`: requestRootLogger() of the app's logger module (its options, serializers, redaction, stream).
 * With defineRequestLog() on the app's request prototype, `req.log` is the request's child logger.
 */
export function requestLoggingMiddleware(config: Pick<AppConfig, 'trustProxy'>, logger: PinoInstance) {
  const genReqId = requestIdGenerator(config);
  return (req: LoggedRequest, res: ServerResponse, next: () => void): void => {
    const id = (req.id = genReqId(req, res));
    const store = new RequestLogStore(logger, id);
    req[REQUEST_LOG_STORE] = store;
    // The completion line is written at info, warn or error: nothing to watch when even error is off.
    // 'close' comes once the answer is written (after 'finish') or the connection is gone; 'error' first
    // for a failed answer. One listener each, left in place (the response is done with), not three
    // added and three removed per request as pino-http does.
    if (logger.isLevelEnabled('error') && !quietUrl(req.originalUrl ?? req.url)) {
      const started = Date.now();
      let logged = false;
      const done = (err?: unknown) => {
        if (logged) return;
        logged = true;
        const failed = err instanceof Error ? err : undefined;
        const level = completionLevel(res, failed);
        if (!logger.isLevelEnabled(level)) return;
        const line = logger.child({ reqId: id }).child({ req });
        const responseTime = Date.now() - started;
        if (failed || res.statusCode >= 500) line[level]({ res, err: failed ?? new Error(`failed with status code ${res.statusCode}`), responseTime }, 'request errored');
        else line[level]({ res, responseTime }, 'request completed');
      };
      res.on('close', done);
      res.on('error', done);
    }
    storage.run(store as unknown as Store, next);
  };
}

/**
 * The pino instance request lines are written with, made from the logger module's own parameters
 * (app.get(PARAMS_PROVIDER_TOKEN).pinoHttp) exactly as pino-http makes its logger (request, response
 * and error serializers wrapped). Per application: nestjs-pino's PinoLogger.root is a global that the
 * last application started overwrites.
 */
export function requestRootLogger(pinoHttpParams: Params['pinoHttp']): PinoInstance {
  const args = (Array.isArray(pinoHttpParams) ? pinoHttpParams : [pinoHttpParams]) as Parameters<typeof pinoHttp>;
  return pinoHttp(...args).logger;
}

export function buildLoggerModule(config: AppConfig, stream?: DestinationStream): DynamicModule {
  const options = {
        level: config.logLevel,
        redact: { paths: REDACT_PATHS, censor: '[Redacted]' },
        serializers: {
          req: (req: { id: string; method: string; url: string }) => ({
            id: req.id,
            method: req.method,
            url: redactUrl(req.url),
          }),
          res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
        },
  } satisfies Options;
  // nestjs-pino's own middleware (pino-http) is mounted on no route: configureApp mounts
  // requestLoggingMiddleware instead, with requestRootLogger() made from these options.
  return LoggerModule.forRoot({ pinoHttp: stream ? [options, stream] : options, forRoutes: [] });
}
