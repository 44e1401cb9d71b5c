import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseAuthorization, publicKeyOf, requestSignMessage, verifyBase64Signature } from './sandbox-crypto';
import { SandboxMpError, SandboxPayError } from './sandbox-errors';
import { FaultKind, SandboxEndpoint, SandboxFaults } from './sandbox-faults';
import { SandboxClock } from './sandbox-clock';
import { SandboxSettings } from './sandbox.settings';

export type PayAnswer =
  | { status: number; body?: unknown }
  /** A file (bill download): sent as is, not signed. */
  | { status: number; file: Buffer | Readable; contentType: string };

export type RawRequest = Request & { rawBody?: Buffer };

const MAX_BODY_BYTES = 1024 * 1024;

/** application/json, with or without parameters (charset). */
function isJsonContentType(value: string | undefined): boolean {
  return !!value && /^application\/json\s*(;|$)/i.test(value.trim());
}

/**
 * The request body's exact bytes. Express's JSON and form parsers keep them as rawBody; a body of
 * another type (text/plain, none declared, …) is still unread and is read here, so that its
 * signature can be checked over what was really sent.
 */
async function rawBodyOf(req: RawRequest): Promise<Buffer> {
  if (req.rawBody) return req.rawBody;
  const declared = Number(req.headers['content-length'] ?? 0);
  if (!(declared > 0) && !req.headers['transfer-encoding']) return Buffer.alloc(0);
  if (req.readableEnded) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new SandboxPayError(400, 'PARAM_ERROR', '请求体过大');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * The transport rules of the simulated WeChat: counts calls, injects faults, checks the merchant's
 * Authorization on every Pay call, signs every Pay answer, and shapes errors as WeChat does.
 */
@Injectable()
export class SandboxHttp implements OnModuleDestroy {
  private readonly logger = new Logger('SandboxHttp');
  private readonly hanging = new Set<Response>();
  private readonly merchantKey;

  constructor(
    private readonly settings: SandboxSettings,
    private readonly faults: SandboxFaults,
    private readonly clock: SandboxClock,
  ) {
    this.merchantKey = publicKeyOf(settings.keystore.merchant.publicKeyPem);
  }

  /** Runs a Pay APIv3 call end to end. */
  async pay(endpoint: SandboxEndpoint, req: RawRequest, res: Response, handler: (body: unknown) => PayAnswer | Promise<PayAnswer>): Promise<void> {
    const fault = this.faults.enter(endpoint);
    if (fault && this.inject(fault, res, 'pay')) return;
    try {
      const raw = await rawBodyOf(req);
      this.verifyMerchant(req, raw);
      let body: unknown;
      if (raw.length > 0) {
        // APIv3's basic rules: bodies are JSON and say so. The exact code WeChat answers is not
        // documented; 400 PARAM_ERROR is its generic "bad request" (protocol E.4), and is what a
        // client should see instead of a SIGN_ERROR over a body the server never read.
        const contentType = req.headers['content-type'];
        if (!isJsonContentType(contentType)) {
          throw new SandboxPayError(400, 'PARAM_ERROR', '请求的 Content-Type 必须是 application/json', {
            field: 'Content-Type',
            value: contentType ?? '',
            issue: 'Content-Type must be application/json',
            location: 'header',
          });
        }
        try {
          body = JSON.parse(raw.toString('utf8'));
        } catch {
          throw new SandboxPayError(400, 'PARAM_ERROR', '请求体不是合法的 JSON');
        }
      }
      const answer = await handler(body);
      if ('file' in answer) {
        res.status(answer.status).setHeader('Content-Type', answer.contentType);
        res.setHeader('Date', new Date(this.clock.signatureNow()).toUTCString());
        if (Buffer.isBuffer(answer.file)) res.end(answer.file);
        else await pipeline(answer.file, res);
        return;
      }
      this.sendSigned(res, answer.status, answer.body);
    } catch (error) {
      if (error instanceof SandboxPayError) {
        this.sendSigned(res, error.status, { code: error.code, message: error.message, ...(error.detail ? { detail: error.detail } : {}) });
        return;
      }
      this.logger.error(`sandbox ${endpoint} failed: ${(error as Error).stack}`);
      this.sendSigned(res, 500, { code: 'SYSTEM_ERROR', message: '系统错误' });
    }
  }

  /** Runs an official-account call: errors are HTTP 200 `{ errcode, errmsg }`. */
  async mp(endpoint: SandboxEndpoint, res: Response, handler: () => unknown): Promise<void> {
    const fault = this.faults.enter(endpoint);
    if (fault && this.inject(fault, res, 'mp')) return;
    try {
      res.status(200).type('application/json; encoding=utf-8').send(JSON.stringify(await handler()));
    } catch (error) {
      if (error instanceof SandboxMpError) {
        res.status(200).type('application/json; encoding=utf-8').send(JSON.stringify({ errcode: error.errcode, errmsg: error.errmsg }));
        return;
      }
      this.logger.error(`sandbox ${endpoint} failed: ${(error as Error).stack}`);
      res.status(200).json({ errcode: -1, errmsg: 'system error' });
    }
  }

  /**
   * Counts a call of a page or browser-side endpoint and plays its fault, if one is due: a timeout
   * holds the request, 500 / 429 are answered by `answer` in that endpoint's own shape. True when
   * the call is consumed.
   */
  fault(endpoint: SandboxEndpoint, res: Response, answer: (kind: '500' | '429') => void): boolean {
    const kind = this.faults.enter(endpoint);
    if (!kind) return false;
    if (kind === 'timeout') this.hang(res);
    else answer(kind);
    return true;
  }

  /** Holds the request open: the client's own deadline decides. Freed after a minute or on shutdown. */
  private hang(res: Response): void {
    this.hanging.add(res);
    const timer = setTimeout(() => {
      this.hanging.delete(res);
      res.socket?.destroy();
    }, 60_000);
    timer.unref();
    res.on('close', () => {
      clearTimeout(timer);
      this.hanging.delete(res);
    });
  }

  /** The answer to a faulted call; true when the call is consumed. */
  private inject(kind: FaultKind, res: Response, flavour: 'pay' | 'mp'): boolean {
    if (kind === 'timeout') {
      this.hang(res);
      return true;
    }
    if (flavour === 'mp') {
      res.status(200).json(kind === '429' ? { errcode: 45009, errmsg: 'reach max api daily quota limit' } : { errcode: -1, errmsg: 'system error' });
      return true;
    }
    if (kind === '429') this.sendSigned(res, 429, { code: 'FREQUENCY_LIMITED', message: '频率超限' });
    else this.sendSigned(res, 500, { code: 'SYSTEM_ERROR', message: '系统错误' });
    return true;
  }

  private verifyMerchant(req: RawRequest, raw: Buffer): void {
    const header = req.headers.authorization;
    const auth = parseAuthorization(header);
    const fail = (issue: string, extra: Record<string, unknown> = {}) =>
      new SandboxPayError(401, 'SIGN_ERROR', '错误的签名，验签失败', { detail: { issue }, field: 'signature', location: 'authorization', ...extra });
    if (!auth) throw fail(header ? 'Authorization 格式错误，应为 WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",signature="…",timestamp="…",serial_no="…"' : '缺少 Authorization 头');
    const missing = (['mchid', 'nonce_str', 'signature', 'timestamp', 'serial_no'] as const).filter((k) => !auth[k]);
    if (missing.length) throw fail(`Authorization 缺少 ${missing.join(', ')}`);
    if (auth.mchid !== this.settings.keystore.mchid) throw fail(`mchid ${auth.mchid} 与商户不匹配`);
    if (auth.serial_no!.toUpperCase() !== this.settings.keystore.merchant.certSerial) throw fail('商户证书序列号有误，请检查 serial_no');
    if (!/^\d{10}$/.test(auth.timestamp!)) throw fail('timestamp 必须是 10 位 Unix 秒');
    const skew = Math.abs(this.clock.signatureSeconds() - Number(auth.timestamp));
    if (skew > 300) throw fail(`服务器时间偏差不超过 5 分钟（偏差 ${skew} 秒）`);
    const target = req.originalUrl;
    const message = requestSignMessage(req.method, target, auth.timestamp!, auth.nonce_str!, raw);
    if (!verifyBase64Signature(message, auth.signature!, this.merchantKey)) {
      const text = message.toString('utf8');
      throw fail('sign not match', {
        sign_information: {
          method: req.method,
          sign_message_length: message.length,
          truncated_sign_message: text.length > 200 ? `${text.slice(0, 200)}…` : text,
          url: target,
        },
      });
    }
  }

  /**
   * JSON (or empty) answer with Wechatpay-* signature headers and a Request-ID, signed with the key
   * the request's Wechatpay-Serial asks for (SANDBOX_SIGN_MODE=migration) or the mode's only key.
   */
  sendSigned(res: Response, status: number, body?: unknown): void {
    const payload = body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body), 'utf8');
    const requested = res.req?.headers['wechatpay-serial'];
    const key = this.settings.answerKey(Array.isArray(requested) ? requested[0] : requested);
    const headers = key.headers(payload, this.clock.signatureSeconds());
    res.status(status);
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    // WeChat's Date is its own clock's (Node would write real time).
    res.setHeader('Date', new Date(this.clock.signatureNow()).toUTCString());
    res.setHeader('Request-ID', `${randomBytes(16).toString('hex').toUpperCase()}-${status < 400 ? 0 : 268435461}`);
    res.setHeader('Cache-Control', 'no-cache, must-revalidate');
    res.setHeader('Content-Language', 'zh-CN');
    if (payload.length) res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.end(payload);
  }

  onModuleDestroy(): void {
    for (const res of this.hanging) res.socket?.destroy();
    this.hanging.clear();
  }
}
