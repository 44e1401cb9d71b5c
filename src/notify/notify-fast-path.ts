import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { AppConfig } from '../config/app-config';
import { NotifyAnswer, NotifyService } from './notify.service';
import { v2NotificationAnswer } from '../wechat/pay-v2/notifications';

/** Express's own client-address resolver (what req.ip uses); it ships no types. */
const proxyAddr = require('proxy-addr') as (req: IncomingMessage, trust: unknown) => string;

export const TRANSACTION_NOTIFY_PATH = '/notify/wechatpay/transaction';
export const REFUND_NOTIFY_PATH = '/notify/wechatpay/refund';
export const V2_TRANSACTION_NOTIFY_PATH = '/notify/wechatpay/v2/transaction';
export const V2_REFUND_NOTIFY_PATH = '/notify/wechatpay/v2/refund';
/** Largest notification body accepted (WeChat's are about 1 KiB). */
export const NOTIFY_MAX_BODY = 64 * 1024;

type Listener = (req: IncomingMessage, res: ServerResponse) => void;
export type RawIncoming = IncomingMessage & { rawBody?: Buffer };

/** The path of a request target, as Express routes it (case-insensitive, trailing slash ignored). */
function routePath(url: string | undefined): string {
  const path = (url ?? '').split('?', 1)[0].toLowerCase();
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/**
 * Reads a notification's body as raw bytes, whatever its Content-Type, up to NOTIFY_MAX_BODY; a
 * larger one is answered 413 (in APIv3's JSON or APIv2's XML, as `shape` says) and its connection dropped once that answer has been flushed (dropping
 * it at once could cut the answer off and leave the sender with a bare reset).
 */
export function readNotificationBody(
  req: IncomingMessage,
  res: ServerResponse,
  onBody: (body: Buffer) => void,
  timeoutMs = 10_000,
  shape: 'json' | 'v2-xml' = 'json',
): void {
  let chunks: Buffer[] = [];
  let size = 0;
  let refused = false;
  const refuse = (status = 413, message = `body larger than ${NOTIFY_MAX_BODY} bytes`) => {
    refused = true;
    chunks = [];
    clearTimeout(timer);
    res.once('finish', () => req.destroy());
    // In the shape the sender reads: APIv3's JSON, or APIv2's XML FAIL.
    const [type, text] = shape === 'v2-xml' ? ['text/xml; charset=utf-8', v2NotificationAnswer(false, message)] : ['application/json; charset=utf-8', JSON.stringify({ code: 'FAIL', message })];
    res.writeHead(status, { 'Content-Type': type, Connection: 'close' }).end(text);
  };
  // A body trickled in slowly (slow-loris) holds a connection: cut it off after timeoutMs.
  const timer = setTimeout(() => {
    if (!refused && !res.headersSent) refuse(408, `body not received within ${timeoutMs} ms`);
  }, timeoutMs);
  timer.unref();
  res.once('close', () => clearTimeout(timer));
  if (Number(req.headers['content-length']) > NOTIFY_MAX_BODY) {
    refuse();
    return;
  }
  req.on('data', (chunk: Buffer) => {
    if (refused) return;
    size += chunk.length;
    if (size > NOTIFY_MAX_BODY) {
      refuse();
      return;
    }
    chunks.push(chunk);
  });
  req.on('end', () => {
    clearTimeout(timer);
    if (refused || res.writableEnded) return;
    onBody(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
  });
  req.on('error', () => res.destroy());
}

/** APIv2's answer: XML, SUCCESS (HTTP 200) only once applied, FAIL with the reason otherwise (429 with Retry-After). */
export function v2Answer(result: NotifyAnswer): { status: number; headers: Record<string, string>; body: string } {
  const headers: Record<string, string> = { 'Content-Type': 'text/xml; charset=utf-8' };
  if (result.status === 429) headers['Retry-After'] = String(result.retryAfterS);
  if (result.status === 204) return { status: 200, headers, body: v2NotificationAnswer(true) };
  return { status: result.status, headers, body: v2NotificationAnswer(false, result.message) };
}

/**
 * The notify routes, at the Node HTTP server, before Express:
 *
 * - POST /notify/wechatpay/transaction is the hottest write path of the shop (WeChat delivers bursts,
 *   and retries them). Express, its middleware and Nest's pipeline cost more per request than
 *   verifying, decrypting and committing the notification (bench/notify.ts), so it is answered right
 *   here by the same NotifyService the controller uses. So are APIv2's XML notifications, POST
 *   /notify/wechatpay/v2/transaction (the same apply step) and POST /notify/wechatpay/v2/refund (the
 *   same refund step), with WeChat's XML answers. NOTIFY_FAST_PATH=false turns all three off.
 * - Otherwise (the APIv3 refund route always, the payment route with NOTIFY_FAST_PATH=false) the body is
 *   read here as raw bytes, whatever its Content-Type, into `req.rawBody`, and the request then goes
 *   through Express to NotifyController. Express's body parsers skip a request whose body was already
 *   read, so a body that is not JSON (or not declared as JSON) reaches the signature check exactly as
 *   sent, rather than being refused with Express's 400 before verification or arriving empty.
 */
@Injectable()
export class NotifyFastPath implements OnApplicationBootstrap {
  private readonly logger = new Logger(NotifyFastPath.name);

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly notify: NotifyService,
    private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    const server = this.adapterHost.httpAdapter?.getHttpServer() as Server | undefined;
    if (!server) return;
    const original = server.listeners('request') as Listener[];
    if (original.length !== 1) {
      this.logger.warn(`not installing the notification routes before Express: ${original.length} request listeners`);
      return;
    }
    const express = original[0];
    const fast = this.config.orders.notifyFastPath;
    server.removeAllListeners('request');
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (req.method === 'POST') {
        const path = routePath(req.url);
        if (path === TRANSACTION_NOTIFY_PATH && fast) {
          // The client address as Express's req.ip computes it (its 'trust proxy' setting).
          const trust = (this.adapterHost.httpAdapter.getInstance() as { get(name: string): unknown }).get('trust proxy fn');
          this.handle(req, res, proxyAddr(req, trust));
          return;
        }
        if ((path === V2_TRANSACTION_NOTIFY_PATH || path === V2_REFUND_NOTIFY_PATH) && fast) {
          const trust = (this.adapterHost.httpAdapter.getInstance() as { get(name: string): unknown }).get('trust proxy fn');
          this.handleV2(path === V2_REFUND_NOTIFY_PATH ? 'refund' : 'transaction', req, res, proxyAddr(req, trust));
          return;
        }
        if (path === TRANSACTION_NOTIFY_PATH || path === REFUND_NOTIFY_PATH) {
          readNotificationBody(
            req,
            res,
            (body) => {
              (req as RawIncoming).rawBody = body;
              express(req, res);
            },
            this.config.orders.notifyBodyTimeoutMs,
          );
          return;
        }
      }
      express(req, res);
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse, clientIp: string): void {
    readNotificationBody(req, res, (body) => {
      this.notify.transaction(req.headers, body, clientIp).then(
        (answer) => {
          if (answer.status === 204) res.writeHead(204).end();
          else if (answer.status === 429) res.writeHead(429, { 'Content-Type': 'application/json; charset=utf-8', 'Retry-After': String(answer.retryAfterS) }).end(JSON.stringify({ code: answer.code, message: answer.message }));
          else res.writeHead(answer.status, { 'Content-Type': 'application/json; charset=utf-8' }).end(JSON.stringify({ code: answer.code, message: answer.message }));
        },
        (error: Error) => {
          this.logger.error(`notification failed: ${error.message}`);
          res.writeHead(500, { 'Content-Type': 'application/json; charset=utf-8' }).end('{"code":"FAIL","message":"系统繁忙，请稍后重试"}');
        },
      );
    }, this.config.orders.notifyBodyTimeoutMs);
  }

  /** APIv2 notifications: the raw XML to NotifyService.transactionV2 or refundV2, its answer as WeChat's XML. */
  private handleV2(kind: 'transaction' | 'refund', req: IncomingMessage, res: ServerResponse, clientIp: string): void {
    readNotificationBody(
      req,
      res,
      (body) => {
        (kind === 'refund' ? this.notify.refundV2(body, clientIp) : this.notify.transactionV2(body, clientIp)).then(
          (result) => {
            const answer = v2Answer(result);
            res.writeHead(answer.status, answer.headers).end(answer.body);
          },
          (error: Error) => {
            this.logger.error(`v2 ${kind === 'refund' ? 'refund ' : ''}notification failed: ${error.message}`);
            res.writeHead(500, { 'Content-Type': 'text/xml; charset=utf-8' }).end(v2NotificationAnswer(false, '系统繁忙，请稍后重试'));
          },
        );
      },
      this.config.orders.notifyBodyTimeoutMs,
      'v2-xml',
    );
  }
}
