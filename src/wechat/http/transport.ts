import http, { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';

/**
 * One HTTP exchange over keep-alive agents, with a deadline and an answer to the question every
 * retry decision needs: did the request leave this process? Errors before the connection was
 * established (DNS, refused, unreachable, connect timeout) are `sent: false` and safe to retry
 * anywhere; later ones are only safe to retry for idempotent calls.
 */
export class TransportError extends Error {
  constructor(
    message: string,
    readonly sent: boolean,
    readonly timedOut: boolean,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'TransportError';
  }
}

export interface TransportRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body?: Buffer;
  timeoutMs: number;
}

export interface TransportResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface StreamingResponse {
  status: number;
  headers: IncomingHttpHeaders;
  stream: IncomingMessage;
}

const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 64, keepAliveMsecs: 15_000 });
const httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 64, keepAliveMsecs: 15_000 });

export function agentFor(url: URL): http.Agent {
  return url.protocol === 'https:' ? httpsAgent : httpAgent;
}

function open(req: TransportRequest, onResponse: (res: IncomingMessage, finish: (error?: Error) => void) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let connected = false;
    let settled = false;
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) reject(error);
      else resolve();
    };
    const lib = req.url.protocol === 'https:' ? https : http;
    const outgoing = lib.request(
      req.url,
      {
        method: req.method,
        headers: { ...req.headers, ...(req.body ? { 'Content-Length': String(req.body.length) } : {}) },
        agent: agentFor(req.url),
      },
      (res) => onResponse(res, finish),
    );
    const timer = setTimeout(() => {
      outgoing.destroy(new TransportError(`no answer within ${req.timeoutMs} ms`, connected, true, 'ETIMEDOUT'));
    }, req.timeoutMs);
    outgoing.on('socket', (socket) => {
      if (!socket.connecting) connected = true;
      else socket.once('connect', () => (connected = true));
    });
    outgoing.on('error', (error: NodeJS.ErrnoException) => {
      if (error instanceof TransportError) return finish(error);
      finish(new TransportError(error.message, connected, false, error.code));
    });
    outgoing.end(req.body);
  });
}

export async function send(req: TransportRequest): Promise<TransportResponse> {
  let result: TransportResponse | undefined;
  await open(req, (res, finish) => {
    const chunks: Buffer[] = [];
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.on('end', () => {
      result = { status: res.statusCode ?? 0, headers: res.headers, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks) };
      finish();
    });
    res.on('error', (error: NodeJS.ErrnoException) => finish(new TransportError(error.message, true, false, error.code)));
  });
  return result!;
}

/** Like send, but hands over the body as a stream once the headers arrive (bill downloads). */
export async function sendStreaming(req: TransportRequest): Promise<StreamingResponse> {
  let result: StreamingResponse | undefined;
  await open(req, (res, finish) => {
    result = { status: res.statusCode ?? 0, headers: res.headers, stream: res };
    finish();
  });
  return result!;
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}
