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
