import { createServer, IncomingHttpHeaders, Server } from 'node:http';
import { AddressInfo } from 'node:net';

export interface Received {
  at: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A tiny HTTP endpoint standing in for a merchant's notify_url, with a scripted answer. */
export class NotifyReceiver {
  readonly received: Received[] = [];
  private server?: Server;
  /** Status to answer for the n-th request (0-based); 'hang' never answers. */
  answer: (n: number) => number | 'hang' = () => 204;

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const n = this.received.length;
        this.received.push({ at: Date.now(), headers: req.headers, body: Buffer.concat(chunks) });
        const status = this.answer(n);
        if (status === 'hang') return;
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(status >= 400 ? '{"code":"FAIL","message":"失败"}' : '');
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}/notify`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
