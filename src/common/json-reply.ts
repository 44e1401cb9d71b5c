import { StreamableFile, type HttpServer } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';

type Reply = (response: ServerResponse & { req?: IncomingMessage }, body: unknown, statusCode?: number) => unknown;

/**
 * Nest answers a handler's object through Express's res.json() → res.send(), which on every answer
 * expands the Content-Type through mime-types, parses and re-formats it with content-type to add the
 * charset, consults the ETag setting and the request's freshness, and only then writes. For the common
 * case — an object or array, no Content-Type chosen by the handler, not HEAD, a status with a body, no
 * conditional request headers — this writes the very same bytes and headers directly
 * (`Content-Type: application/json; charset=utf-8`, `Content-Length`, JSON.stringify of the body, as
 * Express without `json spaces`/`json replacer`/`json escape`, which the app never sets). Everything
 * else (strings, null, streams, errors, HEAD, 204/205/304, If-None-Match / If-Modified-Since) goes
 * through Nest's own reply unchanged.
 */
export function installFastJsonReply(adapter: HttpServer): void {
  const original = adapter.reply.bind(adapter) as Reply;
  const fast: Reply = (response, body, statusCode) => {
    if (typeof body !== 'object' || body === null || body instanceof StreamableFile || body instanceof Error || ArrayBuffer.isView(body)) {
      return original(response, body, statusCode);
    }
    const req = response.req;
    const status = statusCode ?? response.statusCode;
    if (
      !req ||
      req.method === 'HEAD' ||
      status === 204 ||
      status === 205 ||
      status === 304 ||
      req.headers['if-none-match'] !== undefined ||
      req.headers['if-modified-since'] !== undefined ||
      response.hasHeader('content-type') ||
      !Number.isInteger(status) ||
      status < 100 ||
      status > 999
    ) {
      return original(response, body, statusCode);
    }
    const text = JSON.stringify(body);
    if (text === undefined) return original(response, body, statusCode);
    response.statusCode = status;
    response.setHeader('Content-Type', 'application/json; charset=utf-8');
    response.setHeader('Content-Length', String(Buffer.byteLength(text)));
    response.end(text, 'utf8');
    return response;
  };
  (adapter as unknown as { reply: Reply }).reply = fast;
}
