import { Logger } from '@nestjs/common';
import type { IncomingHttpHeaders } from 'node:http';
import { redactUrl } from '../../common/logging';
import type { ClockSkew } from '../clock-skew';
import { WechatCallObserver, payEndpointName } from '../http/call-observer';
import { TransportError, TransportResponse, StreamingResponse, headerValue, send, sendStreaming } from '../http/transport';
import {
  HEADER_NONCE,
  HEADER_REQUEST_ID,
  HEADER_SERIAL,
  HEADER_SIGNATURE,
  HEADER_SIGNATURE_TYPE,
  HEADER_TIMESTAMP,
  USER_AGENT,
} from './constants';
import { WechatPayApiError, WechatPayBadAnswerError, WechatPayNetworkError, WechatPaySignatureError } from './errors';
import { canonicalUrl } from './formatter';
import { WechatPaySigner } from './signer';
import { SignedHeaders, VerificationKeySource, verifySigned } from './verifier';

export interface WechatPayHttpOptions {
  signer: WechatPaySigner;
  keys: VerificationKeySource;
  baseUrl: string;
  /**
   * Used when the primary fails at the network level, like the official Java SDK: for any request
   * that never left (no connection, or no completed TLS handshake), and for GETs on any network error.
   */
  backupBaseUrl?: string;
  timeoutMs: number;
  /** Bill downloads: longest silence of the body once the headers arrived (default 30 s). */
  bodyIdleTimeoutMs?: number;
  /** Milliseconds since the epoch (injected clock). */
  now: () => number;
  /** Retries of safe requests (default 2) and the first backoff (default 200 ms, doubling). */
  maxRetries?: number;
  backoffMs?: number;
  /** Waits between retries (injectable for tests; default a timer). */
  sleep?: (ms: number) => Promise<void>;
  /**
   * The Wechatpay-Serial sent with every request: the key WeChat is asked to sign its answer with
   * (the PUB_KEY_ID_… in public-key mode, else the newest platform certificate's serial), as the
   * official Go and Java SDKs send it. Undefined (no certificate known yet) sends none.
   */
  requestSerial?: () => string | undefined;
  /** Fed with the time of every answer (Wechatpay-Timestamp, else Date) against `now`. */
  clockSkew?: ClockSkew;
  /** Told of every attempt (endpoint name, status or timeout/network_error, latency): the metrics. */
  observe?: WechatCallObserver;
}

export interface PayRequest {
  method: 'GET' | 'POST';
  path: string;
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  /** Verify the response signature (default true; only 2xx responses are signed). */
  verify?: boolean;
  timeoutMs?: number;
}

export interface PayResponse<T> {
  status: number;
  headers: IncomingHttpHeaders;
  rawBody: Buffer;
  body: T | undefined;
  requestId?: string;
}

export function signedHeadersOf(headers: IncomingHttpHeaders): SignedHeaders {
  return {
    timestamp: headerValue(headers, HEADER_TIMESTAMP),
    nonce: headerValue(headers, HEADER_NONCE),
    signature: headerValue(headers, HEADER_SIGNATURE),
    serial: headerValue(headers, HEADER_SERIAL),
    signatureType: headerValue(headers, HEADER_SIGNATURE_TYPE),
  };
}

function queryString(query: PayRequest['query']): string {
  if (!query) return '';
  const pairs = Object.entries(query)
    .filter(([, value]) => value !== undefined && value !== '')
    .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`);
  return pairs.length ? `?${pairs.join('&')}` : '';
}

/**
 * WeChat's `detail` as one log-safe line: the echo of our signed message (sign_information's
 * truncated_sign_message, which holds the start of the request body) is left out, and the whole is
 * cut at 500 characters.
 */
export function describeDetail(detail: unknown): string | undefined {
  if (detail === undefined || detail === null) return undefined;
  const text = JSON.stringify(detail, (key, value: unknown) => (key === 'truncated_sign_message' ? '[omitted]' : value));
  if (!text || text === '{}') return undefined;
  return text.length > 500 ? `${text.slice(0, 500)}…` : text;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The signed, verified HTTP layer of APIv3: signs each request over the exact bytes sent, verifies
 * each 2xx response over the exact bytes received, turns error bodies into WechatPayApiError, retries
 * only what is safe (GETs; any request that never left), and fails over to the backup domain on the
 * same condition: a network error of a GET, or of any request before its connection (TCP, and TLS
 * handshake for https) was established. Logs method, path, status, latency and Request-ID — never
 * bodies.
 */
export class WechatPayHttp {
  private readonly logger = new Logger('WechatPayHttp');

  constructor(private readonly options: WechatPayHttpOptions) {}

  async request<T>(req: PayRequest): Promise<PayResponse<T>> {
    const bodyText = req.body === undefined ? '' : JSON.stringify(req.body);
    const res = await this.exchange(req.method, (base) => new URL(base + req.path + queryString(req.query)), bodyText, req.timeoutMs);
    const requestId = headerValue(res.headers, HEADER_REQUEST_ID);
    if (res.status < 200 || res.status >= 300) throw this.logged(req, this.apiError(res, requestId));
    if (req.verify !== false) {
      await verifySigned(signedHeadersOf(res.headers), res.body, this.options.keys, Math.floor(this.options.now() / 1000)).catch((error: unknown) => {
        throw this.badAnswer(req, error, requestId);
      });
      const contentType = headerValue(res.headers, 'content-type');
      if (res.body.length > 0 && !/^application\/json\b/i.test(contentType ?? '')) {
        throw this.badAnswer(req, new WechatPayBadAnswerError('unexpected_content_type', `Content-Type ${contentType ?? '(none)'} is not application/json`, requestId), requestId);
      }
    }
    let body: T | undefined;
    if (res.body.length > 0) {
      try {
        body = JSON.parse(res.body.toString('utf8')) as T;
      } catch {
        throw new WechatPayApiError(res.status, 'INVALID_RESPONSE', 'response body is not JSON', requestId);
      }
    }
    return { status: res.status, headers: res.headers, rawBody: res.body, body, requestId };
  }

  /**
   * Signed GET of an absolute URL (bill download_url); the answer is a stream and is not verified.
   * `timeoutMs` bounds the wait for the headers, `idleTimeoutMs` any later silence of the body.
   */
  async download(
    absoluteUrl: string,
    options: { timeoutMs?: number; idleTimeoutMs?: number } = {},
  ): Promise<StreamingResponse & { requestId?: string }> {
    // A download_url on the primary base fails over to the same path on the backup, like any GET.
    const urls = [absoluteUrl];
    const { baseUrl, backupBaseUrl } = this.options;
    if (backupBaseUrl && backupBaseUrl !== baseUrl && absoluteUrl.startsWith(`${baseUrl}/`)) {
      urls.push(backupBaseUrl + absoluteUrl.slice(baseUrl.length));
    }
    const started = Date.now();
    let used = new URL(absoluteUrl);
    const res = await this.withRetries('GET', urls, async (target, failedOver) => {
      used = new URL(target);
      // The file is not JSON (CSV or gzip): Accept */*, as the official SDKs send for downloads.
      const headers = this.headers('GET', used, '', '*/*');
      if (failedOver) headers['User-Agent'] += ' (Retried-V1)';
      const sentAt = this.options.now();
      const answer = await this.observed('GET', used, () =>
        sendStreaming({
          method: 'GET',
          url: used,
          headers,
          timeoutMs: options.timeoutMs ?? this.options.timeoutMs,
          idleTimeoutMs: options.idleTimeoutMs ?? this.options.bodyIdleTimeoutMs,
        }),
      );
      this.observeClock(answer.headers, sentAt);
      return answer;
    });
    const requestId = headerValue(res.headers, HEADER_REQUEST_ID);
    this.logger.log(`GET ${redactUrl(used.pathname + used.search)} -> ${res.status} ${Date.now() - started}ms request-id=${requestId ?? '-'}`);
    return { ...res, requestId };
  }

  /** A failed verification of WeChat's answer: logged at error with the Request-ID, a 502 to our caller. */
  private badAnswer(req: PayRequest, error: unknown, requestId?: string): Error {
    if (!(error instanceof WechatPaySignatureError) && !(error instanceof WechatPayBadAnswerError)) return error as Error;
    const bad =
      error instanceof WechatPayBadAnswerError ? error : new WechatPayBadAnswerError(error.reason, error.message, requestId, error.serial);
    this.logger.error(`${req.method} ${redactUrl(req.path)}: answer failed verification (${bad.reason}): ${bad.message} request-id=${requestId ?? '-'}`);
    return bad;
  }

  /** Every answer (signed or not, success or error) tells WeChat's time: measured against ours. */
  private observeClock(headers: IncomingHttpHeaders, sentAt: number): void {
    this.options.clockSkew?.observe({ timestamp: headerValue(headers, HEADER_TIMESTAMP), date: headerValue(headers, 'date') }, sentAt, this.options.now());
  }

  /**
   * Every error WeChat answers is logged with its `detail` (a SIGN_ERROR's names e.g. the time
   * offset), and with the measured clock skew when that is past WECHATPAY_CLOCK_SKEW_MAX. A 404 is
   * often an expected answer (order unknown yet, public-key mode's /v3/certificates): info, not warn.
   */
  private logged(req: PayRequest, error: WechatPayApiError): WechatPayApiError {
    const detail = describeDetail(error.detail);
    const skew = this.options.clockSkew?.degraded ? `; ${this.options.clockSkew.describe()}` : '';
    const line =
      `${req.method} ${redactUrl(req.path)}: WeChat Pay answered ${error.httpStatus} ${error.wechatCode}: ${error.wechatMessage}` +
      `${detail ? ` detail=${detail}` : ''}${skew} request-id=${error.requestId ?? '-'}`;
    if (error.httpStatus === 404) this.logger.log(line);
    else this.logger.warn(line);
    return error;
  }

  private headers(method: string, url: URL, body: string, accept = 'application/json'): Record<string, string> {
    const timestamp = Math.floor(this.options.now() / 1000);
    const serial = this.options.requestSerial?.();
    return {
      Authorization: this.options.signer.authorization(method, canonicalUrl(url), body, timestamp),
      Accept: accept,
      'User-Agent': USER_AGENT,
      ...(serial ? { 'Wechatpay-Serial': serial } : {}),
      ...(body ? { 'Content-Type': 'application/json' } : {}),
    };
  }

  private async exchange(
    method: 'GET' | 'POST',
    urlFor: (base: string) => URL,
    body: string,
    timeoutMs?: number,
  ): Promise<TransportResponse> {
    const bases = [this.options.baseUrl];
    if (this.options.backupBaseUrl && this.options.backupBaseUrl !== this.options.baseUrl) bases.push(this.options.backupBaseUrl);
    const payload = body ? Buffer.from(body, 'utf8') : undefined;
    return this.withRetries(method, bases, async (base, failedOver) => {
      const url = urlFor(base);
      const started = Date.now();
      const headers = this.headers(method, url, body);
      if (failedOver) headers['User-Agent'] += ' (Retried-V1)';
      const sentAt = this.options.now();
      const res = await this.observed(method, url, () => send({ method, url, headers, body: payload, timeoutMs: timeoutMs ?? this.options.timeoutMs }));
      this.observeClock(res.headers, sentAt);
      this.logger.log(
        `${method} ${redactUrl(url.pathname + url.search)} -> ${res.status} ${Date.now() - started}ms request-id=${headerValue(res.headers, HEADER_REQUEST_ID) ?? '-'}`,
      );
      return res;
    });
  }

  /** One attempt, reported to `observe` (never lets the observer's own failure change the outcome). */
  private async observed<R extends { status: number }>(method: string, url: URL, attempt: () => Promise<R>): Promise<R> {
    const observe = this.options.observe;
    if (!observe) return attempt();
    const started = Date.now();
    const report = (status: string) => {
      try {
        observe({ api: 'pay', endpoint: payEndpointName(method, url.pathname), status, durationMs: Date.now() - started });
      } catch {
        // metrics must never break a payment
      }
    };
    try {
      const res = await attempt();
      report(String(res.status));
      return res;
    } catch (error) {
      report(error instanceof TransportError && error.timedOut ? 'timeout' : 'network_error');
      throw error;
    }
  }

  private async withRetries<R extends { status: number }>(
    method: string,
    bases: string[],
    attempt: (base: string, failedOver: boolean) => Promise<R>,
  ): Promise<R> {
    const maxRetries = this.options.maxRetries ?? 2;
    let baseIndex = 0;
    let retries = 0;
    for (;;) {
      try {
        const res = await attempt(bases[baseIndex], baseIndex > 0);
        if (res.status >= 500 && method === 'GET' && retries < maxRetries) {
          await this.sleep(this.backoff(retries++));
          continue;
        }
        return res;
      } catch (error) {
        if (!(error instanceof TransportError)) throw error;
        // Safe to repeat: a request that never left, or an idempotent GET. A POST that may have
        // reached WeChat is neither retried nor sent to the other domain.
        const safe = method === 'GET' || !error.sent;
        if (safe && baseIndex + 1 < bases.length) {
          this.logger.warn(
            `${method} to ${bases[baseIndex]} failed (${error.code ?? error.message}${error.sent ? '' : ', not sent'}); failing over to ${bases[baseIndex + 1]}`,
          );
          baseIndex++;
          continue;
        }
        if (safe && retries < maxRetries) {
          await this.sleep(this.backoff(retries++));
          continue;
        }
        throw new WechatPayNetworkError(
          `WeChat Pay ${error.timedOut ? 'timed out' : 'unreachable'}: ${error.message}`,
          error.sent,
          error.timedOut,
          error.code,
        );
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return (this.options.sleep ?? sleep)(ms);
  }

  private backoff(retry: number): number {
    const base = (this.options.backoffMs ?? 200) * 2 ** retry;
    return base + Math.floor(Math.random() * base * 0.2);
  }

  private apiError(res: TransportResponse, requestId?: string): WechatPayApiError {
    try {
      const parsed = JSON.parse(res.body.toString('utf8')) as { code?: string; message?: string; detail?: unknown };
      if (parsed && typeof parsed.code === 'string') {
        return new WechatPayApiError(res.status, parsed.code, parsed.message ?? '', requestId, parsed.detail);
      }
    } catch {
      // not JSON: fall through
    }
    return new WechatPayApiError(res.status, `HTTP_${res.status}`, res.body.toString('utf8').slice(0, 200), requestId);
  }
}
