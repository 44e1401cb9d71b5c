import { createServer, IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import { AddressInfo, createServer as createNetServer, Server as NetServer, Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { FakeWechatPay, signResponse } from '../../../test/helpers/fake-wechatpay';
import { TestKeyPair, randomSerial, rsaKeyPair, selfSignedCertificate } from '../../../test/helpers/keys';
import { WechatPayNetworkError } from './errors';
import { WechatPaySigner } from './signer';
import { PublicKeySource } from './verifier';
import { WechatPayHttp, WechatPayHttpOptions } from './wechat-pay.http';

const PUB_ID = 'PUB_KEY_ID_0114232134912410000000000077';
const MCHID = '1900000109';

let merchant: TestKeyPair;
let wechatpay: TestKeyPair;

beforeAll(() => {
  merchant = rsaKeyPair();
  wechatpay = rsaKeyPair();
});

/** Servers started by a test, closed after it. */
const closers: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

async function listen<S extends HttpServer | NetServer>(server: S, port = 0): Promise<{ server: S; port: number; connections: () => number }> {
  const sockets = new Set<Socket>();
  let connections = 0;
  server.on('connection', (socket: Socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  closers.push(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, connections: () => connections };
}

/**
 * A plain HTTP stand-in whose behaviour per request is up to the test: `'drop'` destroys the
 * connection once the request arrived (the request was sent, no answer), otherwise a signed answer.
 */
async function scripted(behaviour: (n: number, req: IncomingMessage) => 'drop' | 'hang' | { status: number; body?: string }, port = 0) {
  const seen: Array<{ method: string; url: string; userAgent: string }> = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, userAgent: String(req.headers['user-agent']) });
      const answer = behaviour(seen.length, req);
      if (answer === 'drop') return req.socket.destroy();
      if (answer === 'hang') return;
      const body = Buffer.from(answer.body ?? '');
      res.writeHead(answer.status, {
        'Content-Type': 'application/json',
        'Request-ID': `RID-${seen.length}-0`,
        ...signResponse({ serial: PUB_ID, privateKeyPem: wechatpay.privateKeyPem }, body, Math.floor(Date.now() / 1000)),
      });
      res.end(body);
    });
  });
  const listening = await listen(server, port);
  return { ...listening, base: `http://127.0.0.1:${listening.port}`, seen };
}

async function closedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function payHttp(baseUrl: string, extra: Partial<WechatPayHttpOptions> = {}): WechatPayHttp {
  return new WechatPayHttp({
    signer: new WechatPaySigner(MCHID, 'ABCDEF0123456789ABCDEF0123456789ABCDEF01', merchant.privateKeyPem),
    keys: new PublicKeySource(PUB_ID, wechatpay.publicKeyPem),
    baseUrl,
    timeoutMs: 1_000,
    now: () => Date.now(),
    maxRetries: 2,
    sleep: async () => undefined,
    ...extra,
  });
}

const query = { method: 'GET' as const, path: '/v3/pay/transactions/out-trade-no/T1', query: { mchid: MCHID } };
const close = { method: 'POST' as const, path: '/v3/pay/transactions/out-trade-no/T1/close', body: { mchid: MCHID } };

async function networkError(promise: Promise<unknown>): Promise<WechatPayNetworkError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(WechatPayNetworkError);
  return error as WechatPayNetworkError;
}

describe('WechatPayHttp retries', () => {
  it('retries a GET whose connection broke after it was sent', async () => {
    const wechat = await scripted((n) => (n === 1 ? 'drop' : { status: 200, body: '{"trade_state":"NOTPAY"}' }));
    const res = await payHttp(wechat.base).request<{ trade_state: string }>(query);
    expect(res.body?.trade_state).toBe('NOTPAY');
    expect(res.requestId).toBe('RID-2-0');
    expect(wechat.seen.map((r) => r.url)).toEqual([`/v3/pay/transactions/out-trade-no/T1?mchid=${MCHID}`, `/v3/pay/transactions/out-trade-no/T1?mchid=${MCHID}`]);
  });

  it('gives up on a GET after maxRetries network errors, with a typed error', async () => {
    const wechat = await scripted(() => 'drop');
    const error = await networkError(payHttp(wechat.base, { maxRetries: 2 }).request(query));
    expect(error.sent).toBe(true);
    expect(wechat.seen).toHaveLength(3);
  });

  it('retries a POST refused before it was sent, and sends it exactly once', async () => {
    const port = await closedPort();
    let wechat: Awaited<ReturnType<typeof scripted>> | undefined;
    const waits: number[] = [];
    const http = payHttp(`http://127.0.0.1:${port}`, {
      backoffMs: 50,
      // The first attempt found nothing listening; WeChat comes up during the back-off.
      sleep: async (ms) => {
        waits.push(ms);
        wechat ??= await scripted(() => ({ status: 204 }), port);
      },
    });
    const res = await http.request(close);
    expect(res.status).toBe(204);
    expect(waits).toHaveLength(1);
    expect(waits[0]).toBeGreaterThanOrEqual(50);
    expect(wechat!.seen).toHaveLength(1);
    expect(wechat!.seen[0].method).toBe('POST');
  });

  it('does not retry a POST whose connection broke after it was sent', async () => {
    const wechat = await scripted(() => 'drop');
    let slept = 0;
    const error = await networkError(payHttp(wechat.base, { sleep: async () => void slept++ }).request(close));
    expect(error.sent).toBe(true);
    expect(wechat.seen).toHaveLength(1);
    expect(slept).toBe(0);
  });
});

describe('WechatPayHttp failover to the backup base', () => {
  async function backupServer(status = 200, body = '{"trade_state":"SUCCESS"}') {
    return scripted(() => ({ status, body }));
  }

  it('fails a POST over when the TLS handshake is answered with garbage (nothing was sent)', async () => {
    const primary = await listen(createNetServer((socket) => socket.end('HTTP/1.1 400 Bad Request\r\n\r\nthis is not TLS')));
    const backup = await backupServer(204, '');
    const res = await payHttp(`https://127.0.0.1:${primary.port}`, { backupBaseUrl: backup.base }).request(close);
    expect(res.status).toBe(204);
    expect(primary.connections()).toBe(1);
    expect(backup.seen).toHaveLength(1);
    expect(backup.seen[0].userAgent).toContain('(Retried-V1)');
  });

  it('fails a POST over when the server accepts TCP and closes before the TLS handshake', async () => {
    const primary = await listen(createNetServer((socket) => socket.destroy()));
    const backup = await backupServer(204, '');
    await expect(payHttp(`https://127.0.0.1:${primary.port}`, { backupBaseUrl: backup.base }).request(close)).resolves.toMatchObject({ status: 204 });
    expect(primary.connections()).toBe(1);
    expect(backup.seen).toHaveLength(1);
  });

  it('fails a POST over when the TLS certificate is not trusted', async () => {
    const keys = rsaKeyPair();
    const cert = await selfSignedCertificate({ keys, serial: randomSerial(), notBefore: new Date(Date.now() - 86_400_000), notAfter: new Date(Date.now() + 86_400_000) });
    let decrypted = 0;
    const primary = await listen(createTlsServer({ key: keys.privateKeyPem, cert }, () => decrypted++));
    const backup = await backupServer(204, '');
    await expect(payHttp(`https://127.0.0.1:${primary.port}`, { backupBaseUrl: backup.base }).request(close)).resolves.toMatchObject({ status: 204 });
    expect(decrypted).toBe(0); // no request ever reached the primary
    expect(backup.seen).toHaveLength(1);
  });

  it('fails a GET over on a network error after it was sent', async () => {
    const primary = await scripted(() => 'drop');
    const backup = await backupServer();
    const res = await payHttp(primary.base, { backupBaseUrl: backup.base }).request<{ trade_state: string }>(query);
    expect(res.body?.trade_state).toBe('SUCCESS');
    expect(primary.seen).toHaveLength(1);
    expect(backup.seen).toHaveLength(1);
    expect(backup.seen[0].userAgent).toContain('(Retried-V1)');
  });

  it('fails a GET over when the primary does not answer in time', async () => {
    const primary = await scripted(() => 'hang');
    const backup = await backupServer();
    const res = await payHttp(primary.base, { backupBaseUrl: backup.base, timeoutMs: 200 }).request(query);
    expect(res.status).toBe(200);
    expect(primary.seen).toHaveLength(1);
    expect(backup.seen).toHaveLength(1);
  });

  it('keeps a POST that may have been sent off the backup (neither retried nor failed over)', async () => {
    const primary = await scripted(() => 'drop');
    const backup = await backupServer(204, '');
    const error = await networkError(payHttp(primary.base, { backupBaseUrl: backup.base }).request(close));
    expect(error.sent).toBe(true);
    expect(primary.seen).toHaveLength(1);
    expect(backup.seen).toHaveLength(0);

    const hanging = await scripted(() => 'hang');
    const timedOut = await networkError(payHttp(hanging.base, { backupBaseUrl: backup.base, timeoutMs: 200 }).request(close));
    expect(timedOut).toMatchObject({ sent: true, timedOut: true });
    expect(backup.seen).toHaveLength(0);
  });

  it('does not fail over on an answer, even an error one', async () => {
    const primary = await scripted(() => ({ status: 500, body: '{"code":"SYSTEM_ERROR","message":"busy"}' }));
    const backup = await backupServer();
    await expect(payHttp(primary.base, { backupBaseUrl: backup.base }).request(query)).rejects.toMatchObject({ httpStatus: 500, wechatCode: 'SYSTEM_ERROR' });
    expect(primary.seen).toHaveLength(3); // GET retried on 5xx, on the same base
    expect(backup.seen).toHaveLength(0);
  });

  it('with FakeWechatPay as the backup, the failed-over request is signed for the backup', async () => {
    const fake = new FakeWechatPay({ serial: PUB_ID, privateKeyPem: wechatpay.privateKeyPem }, () => ({ status: 200, body: '{"trade_state":"SUCCESS"}' }), merchant.publicKeyPem);
    const backupBase = await fake.listen();
    closers.push(() => fake.close());
    const primary = await scripted(() => 'drop');
    await payHttp(primary.base, { backupBaseUrl: `${backupBase}/prefix` }).request(query);
    expect(fake.requests[0].url).toBe(`/prefix/v3/pay/transactions/out-trade-no/T1?mchid=${MCHID}`);
    expect(fake.requests[0].authorizationValid).toBe(true);
  });
});
