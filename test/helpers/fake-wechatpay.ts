import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { createCipheriv, createPrivateKey, createPublicKey, createVerify, KeyObject, randomBytes, sign } from 'node:crypto';

/**
 * A minimal stand-in for WeChat Pay, for client unit tests that need a specific server behaviour
 * (rotation, unknown serials, errors, timeouts). It plays WeChat's side with its own few lines of
 * node:crypto, independent of src/wechat. The full simulator is the sandbox (src/sandbox).
 */
export interface FakeSigningKey {
  serial: string;
  privateKeyPem: string;
}

export interface FakeRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
  /** Whether the Authorization header verified against the merchant public key (when one was given). */
  authorizationValid?: boolean;
}

export type FakeHandler = (
  req: FakeRequest,
) => { status: number; body?: string | Buffer; headers?: Record<string, string>; sign?: boolean; signWith?: FakeSigningKey } | 'hang';

export class FakeWechatPay {
  readonly requests: FakeRequest[] = [];
  signingKey: FakeSigningKey;
  now: () => number = () => Math.floor(Date.now() / 1000);
  private server?: Server;
  private readonly merchantPublicKey?: KeyObject;

  constructor(
    signingKey: FakeSigningKey,
    public handler: FakeHandler,
    merchantPublicKeyPem?: string,
  ) {
    this.signingKey = signingKey;
    this.merchantPublicKey = merchantPublicKeyPem ? createPublicKey(merchantPublicKeyPem) : undefined;
  }

  get count(): number {
    return this.requests.length;
  }

  async listen(): Promise<string> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const record: FakeRequest = { method: req.method!, url: req.url!, headers: req.headers, body };
      if (this.merchantPublicKey) record.authorizationValid = this.checkAuthorization(record);
      this.requests.push(record);
      const answer = this.handler(record);
      if (answer === 'hang') return; // never answer
      const payload = typeof answer.body === 'string' ? Buffer.from(answer.body) : (answer.body ?? Buffer.alloc(0));
      const headers: Record<string, string> = {
        'Content-Type': 'application/json; charset=utf-8',
        'Request-ID': `08F5B8C2B506102C18FDDFEEA30620BE821E28ED${randomBytes(2).toString('hex').toUpperCase()}-${answer.status < 300 ? 0 : 268435461}`,
        ...answer.headers,
      };
      if (answer.sign !== false) Object.assign(headers, signResponse(answer.signWith ?? this.signingKey, payload, this.now()));
      res.writeHead(answer.status, headers);
      res.end(payload);
    });
  }

  private checkAuthorization(req: FakeRequest): boolean {
    const header = String(req.headers.authorization ?? '');
    const match = /^WECHATPAY2-SHA256-RSA2048 (.*)$/.exec(header);
    if (!match) return false;
    const fields: Record<string, string> = {};
    for (const pair of match[1].split(',')) {
      const m = /^(\w+)="(.*)"$/.exec(pair);
      if (m) fields[m[1]] = m[2];
    }
    const message = `${req.method}\n${req.url}\n${fields.timestamp}\n${fields.nonce_str}\n${req.body.toString('utf8')}\n`;
    const verifier = createVerify('RSA-SHA256');
    verifier.update(message);
    return verifier.verify(this.merchantPublicKey!, Buffer.from(fields.signature ?? '', 'base64'));
  }
}

export function signResponse(key: FakeSigningKey, body: Buffer, timestamp: number): Record<string, string> {
  const nonce = randomBytes(16).toString('hex');
  const message = Buffer.concat([Buffer.from(`${timestamp}\n${nonce}\n`), body, Buffer.from('\n')]);
  return {
    'Wechatpay-Timestamp': String(timestamp),
    'Wechatpay-Nonce': nonce,
    'Wechatpay-Serial': key.serial,
    'Wechatpay-Signature': sign('sha256', message, createPrivateKey(key.privateKeyPem)).toString('base64'),
    'Wechatpay-Signature-Type': 'WECHATPAY2-SHA256-RSA2048',
  };
}

export function encryptResource(apiv3Key: string, plaintext: string, associatedData: string) {
  const nonce = randomBytes(6).toString('hex');
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(apiv3Key), Buffer.from(nonce));
  cipher.setAAD(Buffer.from(associatedData));
  const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return { algorithm: 'AEAD_AES_256_GCM', ciphertext: data.toString('base64'), nonce, associated_data: associatedData };
}
