import type { NextFunction, Request, Response } from 'express';
import { STATUS_CODES } from 'node:http';

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** Not browser-session routes: WeChat's notifications (signed) and the sandbox's own WeChat pages and APIs. */
const EXEMPT_PREFIXES = ['/notify/', '/sandbox/', '/sandbox'];

/**
 * State-changing routes that no cookie authenticates, so a forged cross-site request gains nothing:
 * mini-program login (wx.request sends Referer https://servicewechat.com/…, never our origin, and the
 * answer is a token the forging page cannot read). Their bodies must still be JSON.
 */
const COOKIELESS = new Set(['/auth/miniprogram/login']);

function exempt(path: string): boolean {
  return EXEMPT_PREFIXES.some((prefix) => path === prefix || path.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`));
}

function originOf(value: string): string | undefined {
  try {
    return new URL(value).origin;
  } catch {
    return undefined;
  }
}

function refuse(req: Request, res: Response, status: number, code: string, message: string): void {
  res.status(status).json({ statusCode: status, error: STATUS_CODES[status], message, code, requestId: typeof req.id === 'string' ? req.id : undefined });
}

function hasBody(req: Request): boolean {
  return Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
}

/**
 * Cross-site request forgery and content-type confusion on our JSON routes (everything but /notify and
 * /sandbox):
 * - a state-changing request authenticated by the session cookie (no Authorization header: a browser
 *   never adds that one by itself) whose Origin — or, without one, Referer — names another site is 403
 *   CROSS_SITE_REQUEST: SameSite=Lax alone still lets a top-level cross-site form POST through in some
 *   browsers and lets sibling sites in. Requests without either header (curl, SDKs) are not browsers' forms.
 * - a body that is not JSON is 415 UNSUPPORTED_MEDIA_TYPE (a cross-site HTML form can only send
 *   urlencoded, multipart or text/plain, and none of those is read as JSON).
 * Our own origin is PUBLIC_BASE_URL's, or the origin the request itself was addressed to.
 */
export function crossSiteGuard(publicBaseUrl: string) {
  const ours = originOf(publicBaseUrl);
  return (req: Request, res: Response, next: NextFunction): void => {
    if (!STATE_CHANGING.has(req.method) || exempt(req.path)) return next();
    if (!req.headers.authorization && !COOKIELESS.has(req.path)) {
      const claimed = req.headers.origin ?? req.headers.referer;
      if (claimed !== undefined) {
        const origin = claimed === 'null' ? 'null' : originOf(claimed);
        const addressed = `${req.protocol}://${req.headers.host ?? ''}`;
        if (origin !== ours && origin !== addressed) {
          return refuse(
            req,
            res,
            403,
            'CROSS_SITE_REQUEST',
            `${req.headers.origin !== undefined ? 'Origin' : 'Referer'} ${JSON.stringify(String(claimed).slice(0, 100))} is not this site (${ours}): state-changing requests must come from the shop's own pages`,
          );
        }
      }
    }
    if (hasBody(req)) {
      const type = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
      if (type !== 'application/json' && !/^application\/[a-z0-9.+-]+\+json$/.test(type)) {
        return refuse(req, res, 415, 'UNSUPPORTED_MEDIA_TYPE', `this route takes a JSON body (Content-Type: application/json), not ${JSON.stringify(type || '(none)')}`);
      }
    }
    next();
  };
}
