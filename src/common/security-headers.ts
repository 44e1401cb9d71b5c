import helmet from 'helmet';
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * Security headers (issue 11 item 8), set by helmet on every response — HTML pages, static files and
 * JSON alike:
 *
 * - `Content-Security-Policy`: `default-src 'self'`, no inline script or style, no plugins,
 *   `frame-ancestors 'none'` (no page of another site can frame ours: no clickjacking of the pay
 *   button or the console), `base-uri 'self'`, `form-action 'self'`; `upgrade-insecure-requests` only
 *   when the site itself is https. Per page:
 *   - the demo shop (`/`): scripts also from WeChat's JS-SDK origins (res.wx.qq.com, res2.wx.qq.com);
 *     images also from any https origin (WeChat's avatars on *.qlogo.cn, product images on the
 *     merchant's CDN; on an http site — development — from http origins too);
 *   - the sandbox's WeChat pages (`/sandbox/…`): the same strict policy; the pages that need more
 *     (the consent form that redirects to the merchant, the cashier framed by the merchant's page)
 *     widen it themselves (see sandbox/pages/csp.ts);
 *   - the API docs (`/docs`, sandbox mode by default): Swagger UI's inline styles.
 * - `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` (older browsers' frame-ancestors),
 *   `Referrer-Policy: strict-origin-when-cross-origin` (other sites see our origin, never a path with
 *   an order number; the sandbox's H5 cashier checks the Referer's origin),
 *   `Cross-Origin-Opener-Policy: same-origin`, `Cross-Origin-Resource-Policy: same-origin`
 *   (`cross-origin` under /sandbox, which stands in for WeChat's third-party origins).
 * - `Strict-Transport-Security` only when the public base URL is https: sent over http (localhost)
 *   it would be ignored at best and pin a development host to https at worst.
 */
export interface SecurityHeaderOptions {
  /** The externally visible base URL (PUBLIC_BASE_URL): https turns on HSTS and upgrade-insecure-requests. */
  publicBaseUrl: string;
  /** Extra script origins on the shop page (WeChat's JS-SDK). */
  shopScriptOrigins?: string[];
  /** Extra image sources on the shop page (avatars, product images). */
  shopImageSources?: string[];
  /** Serve the demo shop's policy at / (DEMO_SHOP). */
  shop?: boolean;
  /** `npm run sandbox`: every path is the sandbox's (it stands in for WeChat's origins, whatever the path). */
  sandboxOnly?: boolean;
}

type Middleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

/** WeChat's JS-SDK is served from these (jweixin-1.6.0.js; res2 is WeChat's documented fallback). */
export const WECHAT_JSSDK_ORIGINS = ['https://res.wx.qq.com', 'https://res2.wx.qq.com'];

type Directives = Record<string, string[]>;

export function baseDirectives(https: boolean): Directives {
  const directives: Directives = {
    'default-src': ["'self'"],
    'base-uri': ["'self'"],
    'script-src': ["'self'"],
    'script-src-attr': ["'none'"],
    'style-src': ["'self'"],
    'img-src': ["'self'", 'data:'],
    'font-src': ["'self'"],
    'connect-src': ["'self'"],
    'object-src': ["'none'"],
    'form-action': ["'self'"],
    'frame-ancestors': ["'none'"],
  };
  if (https) directives['upgrade-insecure-requests'] = [];
  return directives;
}

/** A directive map as a header value (for pages that build their own policy). */
export function cspHeader(directives: Directives): string {
  return Object.entries(directives)
    .map(([name, values]) => [name, ...values].join(' '))
    .join('; ');
}

/**
 * What a helmet middleware does to a response, recorded once: with static options (no per-request
 * directive functions, no nonces) it sets the same headers on every response, so they are replayed
 * from a list instead of helmet rebuilding each header value per request.
 */
function precomputed(middleware: Middleware): Middleware {
  const steps: Array<[name: string, value: string | undefined]> = [];
  const recorder = {
    setHeader: (name: string, value: unknown) => steps.push([name, String(value)]),
    removeHeader: (name: string) => steps.push([name, undefined]),
  };
  let passed = false;
  middleware({ method: 'GET', url: '/', headers: {} } as IncomingMessage, recorder as unknown as ServerResponse, (err) => {
    if (err) throw err;
    passed = true;
  });
  if (!passed) throw new Error('security headers: helmet did not complete synchronously');
  return (_req, res, next) => {
    for (const [name, value] of steps) {
      if (value === undefined) res.removeHeader(name);
      else res.setHeader(name, value);
    }
    next();
  };
}

function withHeaders(https: boolean, directives: Directives, resourcePolicy: 'same-origin' | 'cross-origin'): Middleware {
  return precomputed(helmetFor(https, directives, resourcePolicy));
}

function helmetFor(https: boolean, directives: Directives, resourcePolicy: 'same-origin' | 'cross-origin'): Middleware {
  return helmet({
    contentSecurityPolicy: { useDefaults: false, directives },
    crossOriginOpenerPolicy: { policy: 'same-origin' },
    crossOriginResourcePolicy: { policy: resourcePolicy },
    crossOriginEmbedderPolicy: false,
    referrerPolicy: { policy: 'strict-origin-when-cross-origin' },
    strictTransportSecurity: https ? { maxAge: 180 * 24 * 3600, includeSubDomains: false } : false,
    xFrameOptions: { action: 'deny' },
    xContentTypeOptions: true,
  }) as Middleware;
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

export function isHttps(publicBaseUrl: string): boolean {
  try {
    return new URL(publicBaseUrl).protocol === 'https:';
  } catch {
    return false;
  }
}

/** One middleware for the whole server: picks the policy by path. */
export function securityHeaders(options: SecurityHeaderOptions): Middleware {
  const https = isHttps(options.publicBaseUrl);
  const base = baseDirectives(https);
  const app = withHeaders(https, base, 'same-origin');
  const sandbox = withHeaders(https, base, 'cross-origin');
  const docs = withHeaders(https, { ...base, 'style-src': ["'self'", "'unsafe-inline'"] }, 'same-origin');
  const shop = withHeaders(
    https,
    {
      ...base,
      'script-src': ["'self'", ...(options.shopScriptOrigins ?? [])],
      'img-src': [...base['img-src'], ...(options.shopImageSources ?? [])],
    },
    'same-origin',
  );
  return (req, res, next) => {
    const path = pathOf(req);
    if (options.sandboxOnly || path === '/sandbox' || path.startsWith('/sandbox/')) return sandbox(req, res, next);
    if (path === '/docs' || path.startsWith('/docs/')) return docs(req, res, next);
    if (options.shop && (path === '/' || path === '/index.html')) return shop(req, res, next);
    return app(req, res, next);
  };
}
