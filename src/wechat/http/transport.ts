import http, { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { Readable, Transform, TransformCallback } from 'node:stream';
import type { TLSSocket } from 'node:tls';

/**
 * One HTTP exchange over keep-alive agents, with a deadline and an answer to the question every
 * retry decision needs: did the request leave this process? Errors before the connection was
 * established (DNS, refused, unreachable, connect timeout, and for https a TLS handshake that never
 * completed) are `sent: false` and safe to retry anywhere; later ones are only safe to retry for
 * idempotent calls.
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
  /**
   * sendStreaming only: once the headers are in, the body must keep coming — no byte for this long
   * while the reader is waiting for one destroys the stream with a TransportError (code
   * BODY_IDLE_TIMEOUT). Default DEFAULT_BODY_IDLE_TIMEOUT_MS.
   */
  idleTimeoutMs?: number;
  /** An agent of its own (APIv2 /secapi calls present the merchant certificate); default the shared keep-alive one. */
  agent?: http.Agent;
}

/** Code of the TransportError a stalled streaming body ends with. */
export const BODY_IDLE_TIMEOUT = 'EBODYIDLE';
export const DEFAULT_BODY_IDLE_TIMEOUT_MS = 30_000;

export interface TransportResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface StreamingResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body; errors it ends with are TransportErrors (sent: true). */
  stream: Readable;
}

/**
 * Keep-alive pools. `timeout` closes a pooled idle socket after 30 s, and — the reason it is set — only
 * with a timeout does Node's agent honour the server's `Keep-Alive: timeout=N` hint (it then closes
 * the idle socket a second before the server would: Node servers announce 5 s). Without one, a socket
 * the server had just closed could be taken from the pool and the request fail with ECONNRESET (a
 * flake seen under load against the in-process sandbox). On an active socket the timeout only emits
 * an event nobody listens to: request deadlines are `timeoutMs` below.
 */
const POOL = { keepAlive: true, maxSockets: 64, keepAliveMsecs: 15_000, timeout: 30_000 };
const httpAgent = new http.Agent(POOL);
const httpsAgent = new https.Agent(POOL);

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
        agent: req.agent ?? agentFor(req.url),
      },
      (res) => onResponse(res, finish),
    );
    const timer = setTimeout(() => {
      outgoing.destroy(new TransportError(`no answer within ${req.timeoutMs} ms`, connected, true, 'ETIMEDOUT'));
    }, req.timeoutMs);
    outgoing.on('socket', (socket: Socket) => {
      // Nothing of the request is written before the connection is usable: TCP connected for http,
      // TLS handshake completed (secureConnect) for https. A pooled keep-alive socket already is.
      if (outgoing.reusedSocket) connected = true;
      else if ((socket as TLSSocket).encrypted) socket.once('secureConnect', () => (connected = true));
      else if (!socket.connecting) connected = true;
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

/**
 * Like send, but hands over the body as a stream once the headers arrive (bill downloads). The
 * deadline of `timeoutMs` ends with the headers; from then on the body is watched for stalls
 * (`idleTimeoutMs`), so a server that stops sending mid-file cannot hang the reader forever.
 */
export async function sendStreaming(req: TransportRequest): Promise<StreamingResponse> {
  let result: StreamingResponse | undefined;
  await open(req, (res, finish) => {
    result = { status: res.statusCode ?? 0, headers: res.headers, stream: watchIdle(res, req.idleTimeoutMs ?? DEFAULT_BODY_IDLE_TIMEOUT_MS) };
    finish();
  });
  return result!;
}

/**
 * Passes the body through, failing it when no byte arrives for `idleMs` while the reader is waiting.
 * A slow reader is not a stall: while anything is still buffered here (back-pressure) the clock is
 * re-armed instead. On any end short of a complete body the response (and its socket) is destroyed,
 * so a stalled connection never goes back to the keep-alive pool.
 */
function watchIdle(res: IncomingMessage, idleMs: number): Readable {
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (watch.readableLength > 0 || watch.writableLength > 0 || res.readableLength > 0) return arm();
      watch.destroy(new TransportError(`response body stalled: no data for ${idleMs} ms`, true, true, BODY_IDLE_TIMEOUT));
    }, idleMs);
  };
  const watch = new Transform({
    transform(chunk: Buffer, _encoding, done: TransformCallback) {
      arm();
      done(null, chunk);
    },
    flush(done: TransformCallback) {
      clearTimeout(timer);
      done();
    },
  });
  watch.on('close', () => {
    clearTimeout(timer);
    if (!res.complete) res.destroy();
  });
  res.on('error', (error: NodeJS.ErrnoException) => {
    watch.destroy(error instanceof TransportError ? error : new TransportError(error.message, true, false, error.code));
  });
  res.on('close', () => {
    if (!res.complete && !watch.destroyed) watch.destroy(new TransportError('response body cut short', true, false, 'ECONNRESET'));
  });
  res.pipe(watch);
  arm();
  return watch;
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
