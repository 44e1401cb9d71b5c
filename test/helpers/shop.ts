import request from 'supertest';
import { Login, loginAs } from './login';
import { SandboxControl } from './sandbox-control';
import { TestApp, TestAppOptions, startTestApp } from './test-app';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';

/**
 * Suites act as a few shoppers placing many orders quickly; the per-shopper limits get their own
 * spec (test/payment/shopper-limits.e2e-spec.ts). The holdings check still runs (limit 1000).
 */
export const GENEROUS_SHOPPER_LIMITS = {
  ORDER_MAX_OPEN_PER_USER: '1000',
  ORDER_MAX_RESERVED_PER_PRODUCT: '100000',
  ORDER_CREATE_RATE_LIMIT: '100000',
  ORDER_PAY_RATE_LIMIT: '100000',
  ORDER_READ_RATE_LIMIT: '100000',
  ORDER_QUERY_ON_READ_RATE_LIMIT: '100000',
};

/** The app in sandbox mode plus helpers to act as shoppers and operators. */
export class Shop {
  readonly sandbox: SandboxControl;

  constructor(readonly t: TestApp) {
    this.sandbox = new SandboxControl(t.baseUrl, { token: t.config.sandbox.controlToken });
  }

  static async start(options: TestAppOptions = {}): Promise<Shop> {
    return new Shop(
      await startTestApp({
        ...options,
        env: { ADMIN_TOKENS: ADMIN_TOKEN, ADMIN_RATE_LIMIT: '100000', SEED_DEMO_PRODUCTS: 'false', ...GENEROUS_SHOPPER_LIMITS, ...options.env },
      }),
    );
  }

  get baseUrl(): string {
    return this.t.baseUrl;
  }

  http() {
    return request(this.t.baseUrl);
  }

  admin() {
    const agent = request(this.t.baseUrl);
    return {
      get: (path: string) => agent.get(path).set('Authorization', `Bearer ${ADMIN_TOKEN}`),
      post: (path: string) => agent.post(path).set('Authorization', `Bearer ${ADMIN_TOKEN}`),
      patch: (path: string) => agent.patch(path).set('Authorization', `Bearer ${ADMIN_TOKEN}`),
    };
  }

  login(openid: string, options: Parameters<typeof loginAs>[2] = {}): Promise<Login> {
    return loginAs(this.t.baseUrl, openid, options);
  }

  async product(name: string, price: number, stock: number | null = null): Promise<{ id: number; name: string; price: number; stock: number | null }> {
    const res = await this.admin().post('/admin/products').send({ name, price, stock }).expect(201);
    return res.body;
  }

  async order(login: Login, items: Array<{ productId: number; quantity: number }>, idempotencyKey?: string) {
    const req = this.http().post('/orders').set(login.headers).send({ items });
    if (idempotencyKey) req.set('Idempotency-Key', idempotencyKey);
    return req;
  }

  async placeOrder(login: Login, items: Array<{ productId: number; quantity: number }>): Promise<string> {
    const res = await this.order(login, items);
    if (res.status !== 201) throw new Error(`order failed: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.outTradeNo;
  }

  /** POST /orders/:no/pay → the prepay_id inside the invoke parameters. */
  async prepay(login: Login, outTradeNo: string): Promise<string> {
    const res = await this.http().post(`/orders/${outTradeNo}/pay`).set(login.headers);
    if (res.status !== 200) throw new Error(`pay failed: ${res.status} ${JSON.stringify(res.body)}`);
    return String(res.body.package).replace('prepay_id=', '');
  }

  /** Places an order, prepays it, pays it at the sandbox as the shopper and waits until it is PAID here. */
  async paidOrder(login: Login, items: Array<{ productId: number; quantity: number }>): Promise<string> {
    const no = await this.placeOrder(login, items);
    await this.sandbox.pay(await this.prepay(login, no));
    await this.waitForStatus(no, 'PAID');
    return no;
  }

  async status(outTradeNo: string): Promise<string> {
    const res = await this.admin().get(`/admin/orders/${outTradeNo}`).expect(200);
    return res.body.status;
  }

  async waitForStatus(outTradeNo: string, status: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      last = await this.status(outTradeNo);
      if (last === status) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`order ${outTradeNo} stayed ${last}, expected ${status}`);
  }

  close(): Promise<void> {
    return this.t.close();
  }
}
