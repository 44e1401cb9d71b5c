import http, { IncomingMessage, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';

export interface ProxiedCall {
  method: string;
  path: string;
  status: number;
  /** WeChat's error code: of a non-2xx APIv3 answer, or an APIv2 answer's err_code (return_code FAIL: 'FAIL'). */
  code?: string;
  /** The request body as text (APIv2 names the order there, not in the path). */
  body?: string;
}

/** err_code of an APIv2 XML answer (result_code FAIL), 'FAIL' for return_code FAIL, else undefined. */
function v2Code(text: string): string | undefined {
  if (!text.startsWith('<xml>')) return undefined;
  const field = (name: string) => new RegExp(`<${name}>(?:<!\\[CDATA\\[)?([^<\\]]*)`).exec(text)?.[1];
  if (field('return_code') === 'FAIL') return 'FAIL';
  return field('result_code') === 'FAIL' ? field('err_code') : undefined;
}

/** A match on the request line, and on the body when it is needed (APIv2 names the order in its XML, not in the path). */
type Match = (method: string, path: string, body: string) => boolean;

interface Override {
  match: Match;
  remaining: number;
  /** Runs before the call goes on (e.g. "the shopper pays right now"). */
  before?: () => Promise<void>;
  /** Answer this instead of forwarding: an APIv3 error (JSON), or an APIv2 answer (XML, signed by the test as WeChat would). */
  answer?: { status: number; code: string; message: string } | { status: number; xml: string; code?: string };
}

/**
 * A real HTTP proxy between the app and its sandbox's WeChat Pay API, for tests: point
 * WECHATPAY_API_BASE at `${proxy.baseUrl}/sandbox` and `target` at the app. Requests are forwarded
 * byte for byte (path, headers, body; the sandbox verifies the merchant signature over them) and the
 * answers passed back as they came (the app verifies the sandbox's signature). It measures how many
 * calls are in flight at once, can slow every call down, can run something just before a matching
 * call goes on (to fault-inject a race), and can answer a matching call itself with any WeChat error
 * (non-2xx answers are not signed by WeChat, so the app takes them as they are).
 */
export class WechatProxy {
  target = '';
  delayMs = 0;
  inFlight = 0;
  maxInFlight = 0;
  calls: ProxiedCall[] = [];
  private overrides: Override[] = [];
  private server?: http.Server;
  baseUrl = '';

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.baseUrl = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  resetStats(): void {
    this.inFlight = 0;
    this.maxInFlight = 0;
    this.calls = [];
  }

  /** The next `times` calls matching: run `before` first, and/or answer `answer` instead of forwarding. */
  on(match: Match, options: { before?: () => Promise<void>; answer?: Override['answer']; times?: number }): void {
    this.overrides.push({ match, remaining: options.times ?? 1, before: options.before, answer: options.answer });
  }

  callsTo(fragment: string): ProxiedCall[] {
    return this.calls.filter((c) => c.path.includes(fragment));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks);
      if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
      const override = this.overrides.find((o) => o.remaining > 0 && o.match(method, path, body.toString('utf8')));
      if (override) override.remaining--;
      if (override?.before) await override.before();
      if (override?.answer) {
        const answer = override.answer;
        this.calls.push({ method, path, status: answer.status, code: answer.code, body: body.toString('utf8') });
        if ('xml' in answer) res.writeHead(answer.status, { 'Content-Type': 'text/xml; charset=utf-8' }).end(answer.xml);
        else res.writeHead(answer.status, { 'Content-Type': 'application/json', 'Request-ID': `PROXY${Date.now()}-0` }).end(JSON.stringify({ code: answer.code, message: answer.message }));
        return;
      }
      const answer = await this.forward(method, path, req.headers, body);
      const text = answer.body.toString('utf8');
      let code: string | undefined = v2Code(text);
      if (answer.status >= 300 && code === undefined) code = (JSON.parse(text || '{}') as { code?: string }).code;
      this.calls.push({ method, path, status: answer.status, code, body: body.toString('utf8') });
      res.writeHead(answer.status, answer.headers).end(answer.body);
    } catch (error) {
      res.writeHead(502).end(String(error));
    } finally {
      this.inFlight--;
    }
  }

  private forward(method: string, path: string, headers: http.IncomingHttpHeaders, body: Buffer): Promise<{ status: number; headers: http.OutgoingHttpHeaders; body: Buffer }> {
    const target = new URL(path, this.target);
    return new Promise((resolve, reject) => {
      const out = http.request(target, { method, headers: { ...headers, host: target.host } }, (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (c: Buffer) => chunks.push(c));
        answer.on('end', () => {
          const passed: http.OutgoingHttpHeaders = {};
          for (const [name, value] of Object.entries(answer.headers)) {
            if (!['connection', 'keep-alive', 'transfer-encoding'].includes(name) && value !== undefined) passed[name] = value;
          }
          resolve({ status: answer.statusCode ?? 502, headers: passed, body: Buffer.concat(chunks) });
        });
        answer.on('error', reject);
      });
      out.on('error', reject);
      out.end(body);
    });
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
