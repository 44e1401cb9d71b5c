import { createServer, Server as HttpServer } from 'node:http';
import { AddressInfo, createServer as createNetServer, Server as NetServer, Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { rsaKeyPair, randomSerial, selfSignedCertificate } from '../../../test/helpers/keys';
import { BODY_IDLE_TIMEOUT, TransportError, readAll, send, sendStreaming } from './transport';

/** Servers started by a test, closed after it (sockets first, so nothing keeps jest waiting). */
const servers: Array<{ server: HttpServer | NetServer; sockets: Set<Socket> }> = [];

async function listen<S extends HttpServer | NetServer>(server: S): Promise<{ server: S; port: number }> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  servers.push({ server, sockets });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

afterEach(async () => {
  for (const { server, sockets } of servers.splice(0)) {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

const get = (url: string, extra: { timeoutMs?: number; idleTimeoutMs?: number } = {}) => ({
  method: 'GET',
  url: new URL(url),
  headers: {},
  timeoutMs: extra.timeoutMs ?? 2_000,
  idleTimeoutMs: extra.idleTimeoutMs,
});

async function failure(promise: Promise<unknown>): Promise<TransportError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TransportError);
  return error as TransportError;
}

describe('transport: was the request sent?', () => {
  it('a refused connection was not sent', async () => {
    const { server, port } = await listen(createNetServer());
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const error = await failure(send(get(`http://127.0.0.1:${port}/x`)));
    expect(error).toMatchObject({ sent: false, code: 'ECONNREFUSED' });
  });

  it('a plain-http connection dropped after connecting may have been sent', async () => {
    const { port } = await listen(createNetServer((socket) => socket.once('data', () => socket.destroy())));
    const error = await failure(send(get(`http://127.0.0.1:${port}/x`)));
    expect(error.sent).toBe(true);
  });

  it('https: garbage instead of a TLS handshake means not sent', async () => {
    const { port } = await listen(createNetServer((socket) => socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\nnot tls')));
    const error = await failure(send(get(`https://127.0.0.1:${port}/x`)));
    expect(error.sent).toBe(false);
  });

  it('https: a server that accepts TCP and closes before the handshake means not sent', async () => {
    const { port } = await listen(createNetServer((socket) => socket.destroy()));
    const error = await failure(send(get(`https://127.0.0.1:${port}/x`)));
    expect(error.sent).toBe(false);
  });

  it('https: a handshake that never completes times out as not sent', async () => {
    const { port } = await listen(createNetServer(() => undefined)); // accepts, never answers
    const error = await failure(send(get(`https://127.0.0.1:${port}/x`, { timeoutMs: 300 })));
    expect(error).toMatchObject({ sent: false, timedOut: true });
  });

  it('https: an untrusted certificate fails the handshake: not sent', async () => {
    const keys = rsaKeyPair();
    const cert = await selfSignedCertificate({ keys, serial: randomSerial(), notBefore: new Date(Date.now() - 86_400_000), notAfter: new Date(Date.now() + 86_400_000) });
    const { port } = await listen(createTlsServer({ key: keys.privateKeyPem, cert }, (socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')));
    const error = await failure(send(get(`https://127.0.0.1:${port}/x`)));
    expect(error.sent).toBe(false);
  });
});

describe('transport: streaming body idle timeout', () => {
  it('fails a body that stops arriving, with a typed error, and closes the connection', async () => {
    let serverSocketClosed = false;
    const { port } = await listen(
      createServer((req, res) => {
        res.socket!.on('close', () => (serverSocketClosed = true));
        res.writeHead(200, { 'Content-Length': '1000', 'Request-ID': 'RID-1' });
        res.write('first bytes,'); // and then nothing
      }),
    );
    const started = Date.now();
    const res = await sendStreaming(get(`http://127.0.0.1:${port}/bill`, { idleTimeoutMs: 250 }));
    expect(res.status).toBe(200);
    const error = await failure(readAll(res.stream));
    expect(error).toMatchObject({ code: BODY_IDLE_TIMEOUT, sent: true, timedOut: true });
    expect(Date.now() - started).toBeGreaterThanOrEqual(240);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(serverSocketClosed).toBe(true);
  });

  it('a body that keeps trickling in is not a stall, however long it takes in total', async () => {
    const { port } = await listen(
      createServer((req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/csv' });
        let n = 0;
        const timer = setInterval(() => {
          res.write(`row ${n}\n`);
          if (++n === 8) {
            clearInterval(timer);
            res.end();
          }
        }, 60);
      }),
    );
    const res = await sendStreaming(get(`http://127.0.0.1:${port}/bill`, { idleTimeoutMs: 200 }));
    const body = (await readAll(res.stream)).toString();
    expect(body.split('\n').filter(Boolean)).toHaveLength(8);
  });

  it('a slow reader is not a stall (back-pressure)', async () => {
    const payload = Buffer.alloc(4 * 1024 * 1024, 'x');
    const { port } = await listen(createServer((req, res) => res.end(payload)));
    const res = await sendStreaming(get(`http://127.0.0.1:${port}/bill`, { idleTimeoutMs: 100 }));
    // Nobody reads for 4 idle periods while the data waits in the buffers.
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect((await readAll(res.stream)).length).toBe(payload.length);
  });

  it('a body cut short ends with a typed error', async () => {
    const { port } = await listen(
      createServer((req, res) => {
        res.writeHead(200, { 'Content-Length': '1000' });
        res.write('partial');
        setTimeout(() => res.socket!.destroy(), 30);
      }),
    );
    const res = await sendStreaming(get(`http://127.0.0.1:${port}/bill`, { idleTimeoutMs: 5_000 }));
    const error = await failure(readAll(res.stream));
    expect(error).toMatchObject({ sent: true, timedOut: false });
  });
});

describe('transport: keep-alive pool and the server\'s Keep-Alive hint', () => {
  it("closes a pooled idle socket before the server's announced keep-alive timeout, so a request never takes a socket the server is closing", async () => {
    const server = createServer((_req, res) => res.end('ok'));
    server.keepAliveTimeout = 2000; // announced as Keep-Alive: timeout=2
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const closedByClient: boolean[] = [];
    server.on('connection', (socket: Socket) => {
      // the server sees the client end the connection (FIN) before its own 2 s keep-alive timer fires
      const opened = Date.now();
      socket.on('end', () => closedByClient.push(Date.now() - opened < 1900));
    });
    try {
      const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      const first = await send({ url, method: 'GET', headers: {}, timeoutMs: 5000 });
      expect(first.headers['keep-alive']).toBe('timeout=2');
      await new Promise((r) => setTimeout(r, 1500));
      expect(closedByClient).toEqual([true]);
      // the next request opens a new connection and succeeds
      expect((await send({ url, method: 'GET', headers: {}, timeoutMs: 5000 })).body.toString()).toBe('ok');
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
