import { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import cookieParser from 'cookie-parser';
import { urlencoded } from 'express';
import { existsSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { Logger, PARAMS_PROVIDER_TOKEN, Params } from 'nestjs-pino';
import { AppModule, AppModuleOptions } from './app.module';
import { crossSiteGuard } from './common/cross-site';
import { defineRequestLog, requestIdMiddleware, requestLoggingEnabled, requestLoggingMiddleware, requestRootLogger } from './common/logging';
import { isHttps, securityHeaders, SecurityHeaderOptions, WECHAT_JSSDK_ORIGINS } from './common/security-headers';
import { AllExceptionsFilter } from './common/errors/all-exceptions.filter';
import { installFastJsonReply } from './common/json-reply';
import { promoteRoutes } from './common/route-order';
import { createValidationPipe } from './common/validation';
import { AppConfig } from './config/app-config';

/** The first path segments of the routes every checkout calls (POST /orders, …/pay, GET /orders/:no polls). */
const HOT_ROUTES = ['orders'];

/** As Nest's own body parsers do with rawBody: true (req.rawBody = the bytes read). */
function keepRawBody(req: IncomingMessage, _res: unknown, buffer: Buffer): void {
  if (Buffer.isBuffer(buffer)) (req as IncomingMessage & { rawBody?: Buffer }).rawBody = buffer;
}

/** Everything an application instance needs beyond its modules; shared by main.ts and the tests. */
export function configureApp(app: INestApplication, config: AppConfig): INestApplication {
  const express = app as NestExpressApplication;
  express.useLogger(app.get(Logger));
  // TRUST_PROXY (default none): only those proxies' X-Forwarded-For becomes req.ip (rate limits, payer_client_ip).
  express.set('trust proxy', config.trustProxy);
  express.disable('x-powered-by');
  // First, so that every answer carries them (also the 400s, 403s and 415s of the guards below).
  express.use(securityHeaders(securityHeaderOptions(config)));
  // Each request's id (X-Request-Id) and, unless LOG_LEVEL=silent, its log context and completion line;
  // before the guards below, so that their refusals carry both.
  if (requestLoggingEnabled(config)) {
    defineRequestLog((express.getHttpAdapter().getInstance() as { request: object }).request);
    express.use(requestLoggingMiddleware(config, requestRootLogger(app.get<Params>(PARAMS_PROVIDER_TOKEN).pinoHttp)));
  } else {
    express.use(requestIdMiddleware(config));
  }
  // Before the body parsers: a cross-site or non-JSON state-changing request is refused unread.
  express.use(crossSiteGuard(config.publicBaseUrl));
  express.useBodyParser('json', { limit: '1mb' });
  // HTML forms: only the sandbox's WeChat pages post them (every other state-changing route refuses a
  // non-JSON body above, and the notify routes read raw bytes), so the parser is mounted there alone.
  // (Live mode has no /sandbox routes: no parser, and no layer for every request to pass.)
  if (config.wechatMode === 'sandbox') express.use('/sandbox', urlencoded({ extended: false, limit: '64kb', verify: keepRawBody }));
  // JSON answers carry no ETag: computing a hash of every body buys nothing for answers that are not
  // cached (orders, payments, admin). Static files keep theirs (serve-static's own).
  express.set('etag', false);
  // A handler's object is written as Express's res.json() would write it, minus its per-answer header
  // parsing (see json-reply.ts).
  installFastJsonReply(app.getHttpAdapter());
  // A malformed % escape in the query string (`/health?%ZZ`) is the client's mistake: 400, before any
  // route, parser or logger trips over it.
  app.use((req: { url?: string }, res: ServerResponse, next: () => void) => {
    const q = req.url?.indexOf('?') ?? -1;
    if (q >= 0) {
      try {
        decodeURIComponent(req.url!.slice(q + 1).replace(/\+/g, ' '));
      } catch {
        res.statusCode = 400;
        res.setHeader('Content-Type', 'application/json; charset=utf-8');
        res.end(JSON.stringify({ statusCode: 400, error: 'Bad Request', code: 'MALFORMED_QUERY', message: 'the query string has a malformed percent-escape (% must be followed by two hex digits)' }));
        return;
      }
    }
    next();
  });
  // Cookies are parsed only when the request has any (req.cookies stays undefined otherwise; every reader
  // uses req.cookies?.[name]): an API client's Bearer request does not pay for two empty objects.
  const parseCookies = cookieParser();
  app.use((req: IncomingMessage, res: ServerResponse, next: () => void) => (req.headers.cookie ? parseCookies(req as never, res as never, next) : next()));
  // WECHAT_MP_VERIFY_FILE: WeChat fetches /MP_verify_<code>.txt from the 网页授权域名 before accepting it.
  const verify = config.wechat.mpVerifyFile;
  if (verify) {
    express.use(`/${verify.name}`, (req: { method: string }, res: ServerResponse, next: () => void) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') return next();
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.setHeader('Cache-Control', 'no-cache');
      res.end(req.method === 'HEAD' ? undefined : verify.content);
    });
  }
  // The admin console (/admin/, always) and the demo shop (/, DEMO_SHOP): plain static files, no build step.
  const publicDir = [join(__dirname, '..', 'public'), join(__dirname, '..', '..', 'public')].find((dir) => existsSync(join(dir, 'admin', 'index.html')));
  if (publicDir) {
    const options = {
      index: 'index.html',
      redirect: true,
      setHeaders: (res: ServerResponse, path: string) => res.setHeader('Cache-Control', path.endsWith('.html') ? 'no-cache' : 'public, max-age=300'),
    };
    express.useStaticAssets(join(publicDir, 'admin'), { ...options, prefix: '/admin/' });
    if (config.shop.demo) express.useStaticAssets(join(publicDir, 'shop'), options);
    // Browsers ask for /favicon.ico on every page without an icon link (the sandbox's WeChat pages, API
    // responses opened in a tab): answer with our icon rather than a 404 in the console.
    const icon = join(publicDir, 'admin', 'favicon.svg');
    express.use('/favicon.ico', (_req: unknown, res: ServerResponse & { sendFile: (path: string, options: object) => void }) =>
      res.sendFile(icon, { headers: { 'Content-Type': 'image/svg+xml', 'Cache-Control': 'public, max-age=86400' } }),
    );
  }
  // Slow clients (slow-loris): bounded header, request and idle keep-alive times for the whole server.
  const server = app.getHttpServer() as import('node:http').Server;
  server.headersTimeout = config.http.headersTimeoutMs;
  server.requestTimeout = config.http.requestTimeoutMs;
  server.keepAliveTimeout = config.http.keepAliveTimeoutMs;
  // Once Nest has registered the routes (init, also from listen()), the shopper's checkout routes go
  // ahead of the admin/sandbox/auth routes Express would otherwise try first on every poll (route-order.ts).
  // (defineProperty: Nest's application proxy ignores plain assignments; listen() calls this.init().)
  // Nest calls it on the application itself (`this`), never through the proxy, as its own init.
  const init = (Reflect.getPrototypeOf(app) as INestApplication).init;
  Object.defineProperty(app, 'init', {
    configurable: true,
    writable: true,
    value: async function (this: INestApplication) {
      await init.call(this);
      promoteRoutes((express.getHttpAdapter().getInstance() as { router: { stack: Parameters<typeof promoteRoutes>[0] } }).router.stack, HOT_ROUTES);
      return this;
    },
  });
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(new AllExceptionsFilter());

  if (!config.apiDocs) return app;
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('wechat-h5-pay')
      .setDescription(
        `WeChat JSAPI payments for an H5 shop. Mode: ${config.wechatMode}. Admin routes take "Authorization: Bearer <ADMIN_TOKENS entry>".`,
      )
      .setVersion('0.1.0')
      .addBearerAuth()
      .addCookieAuth('whp_session')
      .build(),
  );
  SwaggerModule.setup('docs', app, document);
  return app;
}

/**
 * What the shop page may load besides its own origin: WeChat's JS-SDK (in both modes, so the sandbox
 * runs under live's policy); images from https origins (WeChat's avatars, product images on a CDN) and,
 * on an http site (development, a standalone sandbox's avatars), from http origins too.
 */
export function securityHeaderOptions(config: AppConfig): SecurityHeaderOptions {
  return {
    publicBaseUrl: config.publicBaseUrl,
    shop: config.shop.demo,
    shopScriptOrigins: WECHAT_JSSDK_ORIGINS,
    shopImageSources: isHttps(config.publicBaseUrl) ? ['https:'] : ['https:', 'http:'],
  };
}

/** The address main.ts binds (HOST; sandbox mode defaults to 127.0.0.1, live mode to all interfaces). */
export function listenHost(config: AppConfig): string | undefined {
  return config.host;
}

export async function createApp(config: AppConfig, options: AppModuleOptions & { abortOnError?: boolean } = {}): Promise<INestApplication> {
  const { abortOnError, ...moduleOptions } = options;
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config, moduleOptions), {
    rawBody: true,
    bufferLogs: true,
    bodyParser: false,
    // main.ts turns start-up errors into one sentence: Nest neither aborts the process nor prints the
    // error's stack itself (its own console logger stays off; pino takes over in configureApp).
    ...(abortOnError === undefined ? {} : { abortOnError, logger: false as const }),
  });
  return configureApp(app, config);
}
