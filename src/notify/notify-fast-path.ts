import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { AppConfig } from '../config/app-config';
import { NotifyService } from './notify.service';

export const TRANSACTION_NOTIFY_PATH = '/notify/wechatpay/transaction';
const MAX_BODY = 64 * 1024;

type Listener = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * The payment notification is the hottest write path of the shop (WeChat delivers bursts, and
 * retries them). Express, its middleware and Nest's pipeline cost more per request than verifying,
 * decrypting and committing the notification (bench/notify.ts), so POST /notify/wechatpay/transaction
 * is answered straight from the Node HTTP server, before Express, by the same NotifyService the
 * controller uses. Everything else still goes to Express. NOTIFY_FAST_PATH=false turns this off.
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
    if (!this.config.orders.notifyFastPath) return;
    const server = this.adapterHost.httpAdapter?.getHttpServer() as Server | undefined;
    if (!server) return;
    const original = server.listeners('request') as Listener[];
    if (original.length !== 1) {
      this.logger.warn(`not installing the notification fast path: ${original.length} request listeners`);
      return;
    }
    const express = original[0];
    server.removeAllListeners('request');
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (req.method === 'POST' && (req.url === TRANSACTION_NOTIFY_PATH || req.url?.startsWith(`${TRANSACTION_NOTIFY_PATH}?`))) {
        this.handle(req, res);
      } else {
        express(req, res);
      }
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        res.writeHead(413, { 'Content-Type': 'application/json' }).end('{"code":"FAIL","message":"body too large"}');
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (res.writableEnded) return;
      const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      this.notify.transaction(req.headers, body).then(
        (answer) => {
          if (answer.status === 204) res.writeHead(204).end();
          else res.writeHead(answer.status, { 'Content-Type': 'application/json; charset=utf-8' }).end(JSON.stringify({ code: answer.code, message: answer.message }));
        },
        (error: Error) => {
          this.logger.error(`notification failed: ${error.message}`);
          res.writeHead(500, { 'Content-Type': 'application/json; charset=utf-8' }).end('{"code":"FAIL","message":"系统繁忙，请稍后重试"}');
        },
      );
    });
    req.on('error', () => res.destroy());
  }
}
