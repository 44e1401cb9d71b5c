import type { NextFunction, Request, Response } from 'express';

/**
 * The paths WeChat serves at the root of its hosts: Pay APIv3 (/v3/…, api.mch.weixin.qq.com), Pay APIv2
 * (/pay/… and /secapi/…, same host), the official-account APIs (/sns/…,
 * /cgi-bin/…, api.weixin.qq.com) and the OAuth authorize page (open.weixin.qq.com).
 */
const ROOT_PREFIXES = ['/v3/', '/pay/', '/secapi/', '/sns/', '/cgi-bin/'];
const ROOT_PAGES = ['/connect/oauth2/authorize'];

function isWechatRootPath(url: string): boolean {
  const path = url.split('?', 1)[0];
  return ROOT_PREFIXES.some((p) => path.startsWith(p)) || ROOT_PAGES.includes(path.replace(/\/$/, ''));
}

/**
 * The standalone sandbox (`npm run sandbox`) also answers WeChat's paths at the root, so that an SDK only
 * changes its host. The request is routed to the same handler as under /sandbox (every current and future
 * sandbox route under these prefixes gets the alias), while `req.originalUrl` keeps the path the client
 * used: that is the path its signature covers (`/v3/…`, never `/sandbox/v3/…`).
 */
export function sandboxRootAlias(req: Request, _res: Response, next: NextFunction): void {
  if (isWechatRootPath(req.url)) req.url = `/sandbox${req.url}`;
  next();
}

/** '' when the request came in at the root (standalone alias), '/sandbox' otherwise: where to link back to. */
export function sandboxPrefixOf(req: Request): '' | '/sandbox' {
  const original = req.originalUrl ?? req.url;
  return original === '/sandbox' || original.startsWith('/sandbox/') || original.startsWith('/sandbox?') ? '/sandbox' : '';
}

/** WeChat Pay's API hosts (main and backup). */
const WECHATPAY_HOSTS = ['api.mch.weixin.qq.com', 'api2.mch.weixin.qq.com'];

/**
 * Where a URL the sandbox hands back (a bill's download_url) must point for this client: the root alias or
 * /sandbox, on the host the client used. A request naming WeChat Pay's own host came through a host mapping
 * (a hosts-file entry or DNS pointing api.mch.weixin.qq.com at the sandbox, a TLS-terminating proxy): such
 * a client gets WeChat's URL as WeChat writes it, https and that host, since SDKs sign the download's path
 * by stripping exactly `https://api.mch.weixin.qq.com`.
 */
export function sandboxBaseOf(req: Request): string {
  const host = req.get('host') ?? '';
  const hostname = host.replace(/:\d+$/, '').toLowerCase();
  if (WECHATPAY_HOSTS.includes(hostname)) return `https://${hostname}${sandboxPrefixOf(req)}`;
  return `${req.protocol}://${host}${sandboxPrefixOf(req)}`;
}
