import type { FaultKind, SandboxEndpoint } from '../../src/sandbox/sandbox-faults';
import type { NotificationAttempt, Tamper } from '../../src/sandbox/sandbox-notifier.service';

// The control API's types are the sandbox's own (type-only imports: none of its code is loaded).
export type { FaultKind, NotificationAttempt, SandboxEndpoint, Tamper };

export interface PayResult {
  result: 'ok' | 'cancel' | 'fail';
  reason?: string;
  outTradeNo?: string;
  transactionId?: string;
}

/**
 * Typed client of the sandbox's control API (/sandbox/control/*), for tests. Construct it with the
 * base URL of the app (sandbox mounted) or of `npm run sandbox`, and `{ token }` when the sandbox has a
 * SANDBOX_CONTROL_TOKEN (sent as `Authorization: Bearer <token>`).
 */
export class SandboxControl {
  private readonly token?: string;

  constructor(
    private readonly baseUrl: string,
    options: { token?: string } = {},
  ) {
    this.token = options.token;
  }

  private async call<T>(method: string, path: string, body?: unknown, expectOk = true): Promise<{ status: number; body: T }> {
    const send = () =>
      fetch(`${this.baseUrl}/sandbox/control${path}`, {
        method,
        headers: {
          ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
          ...(this.token ? { Authorization: `Bearer ${this.token}` } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    let res: Response;
    try {
      res = await send();
    } catch (err) {
      // A kept-alive socket closed by the server's keepAliveTimeout just as fetch reuses it (seen after a
      // test blocked the shared event loop for seconds): the request never reached the server; send it
      // again once, on a new connection. Any other failure is the test's.
      if ((err as { cause?: { code?: string } }).cause?.code !== 'ECONNRESET') throw err;
      res = await send();
    }
    const text = await res.text();
    const parsed = (text ? JSON.parse(text) : undefined) as T;
    if (expectOk && !res.ok) throw new Error(`sandbox control ${method} ${path} -> ${res.status}: ${text}`);
    return { status: res.status, body: parsed };
  }

  /** Who the merchant is; `secapiBase` is the mutual-TLS port's base (/secapi/…, /pay/downloadfundflow). */
  async merchant(): Promise<{
    appid: string;
    mchid: string;
    merchantCertSerial: string;
    platformCertSerial: string;
    publicKeyId: string;
    signMode: string;
    merchantKind: 'direct' | 'partner' | 'both';
    subMchids: string[];
    secapiBase: string;
  }> {
    return (await this.call<Awaited<ReturnType<SandboxControl['merchant']>>>('GET', '/merchant')).body;
  }

  /** The sub-merchants bound to the provider and the appids of their own official accounts. */
  async subMerchants(): Promise<Array<{ subMchid: string; officialAccounts: string[] }>> {
    return (await this.call<Array<{ subMchid: string; officialAccounts: string[] }>>('GET', '/sub-merchants')).body;
  }

  /** Registers an official account at "WeChat" and binds it to a sub-merchant (its sub_appid). */
  async bindSubOfficialAccount(subMchid: string, appid: string, appsecret: string): Promise<void> {
    const res = await this.call('POST', `/sub-merchants/${subMchid}/official-account`, { appid, appsecret });
    if (res.status !== 200) throw new Error(`binding failed: ${res.status} ${JSON.stringify(res.body)}`);
  }

  /** Calls per endpoint, e.g. { 'cgi-bin/stable_token': 1, 'v3/pay/transactions/jsapi': 3 }. */
  async calls(): Promise<Record<string, number>> {
    return (await this.call<{ calls: Record<string, number> }>('GET', '/stats')).body.calls;
  }

  /** Requests on the mutual-TLS port since start: served, refused without a certificate, refused for the one presented. */
  async secapiCounts(): Promise<{ served: number; noCertificate: number; badCertificate: number }> {
    return (await this.call<{ secapi: { served: number; noCertificate: number; badCertificate: number } }>('GET', '/stats')).body.secapi;
  }

  async callsTo(endpoint: string): Promise<number> {
    return (await this.calls())[endpoint] ?? 0;
  }

  async resetCalls(): Promise<void> {
    await this.call('POST', '/stats/reset');
  }

  /** Fail the next `count` calls of an endpoint ('v3/pay/transactions/jsapi', 'cgi-bin/ticket/getticket', …). */
  async failNext(endpoint: SandboxEndpoint, kind: FaultKind, count = 1): Promise<void> {
    await this.call('POST', '/faults', { endpoint, kind, count });
  }

  /** The fault endpoint names, by family (mp, page, pay, browser). */
  async faultEndpoints(): Promise<Record<string, SandboxEndpoint[]>> {
    return (await this.call<{ endpoints: Record<string, SandboxEndpoint[]> }>('GET', '/faults')).body.endpoints;
  }

  /** Pays a prepay as its user (or `openid`); `result` cancel/fail simulate the other buttons. */
  async pay(prepayId: string, options: { openid?: string; result?: 'success' | 'cancel' | 'fail' } = {}): Promise<PayResult & { status: number }> {
    const res = await this.call<PayResult>('POST', '/pay', { prepayId, ...options }, false);
    return { ...res.body, status: res.status };
  }

  async transaction(outTradeNo: string): Promise<Record<string, unknown> & { trade_state: string; prepay_ids: string[]; transaction_id?: string }> {
    return (await this.call<Record<string, unknown> & { trade_state: string; prepay_ids: string[] }>('GET', `/transactions/${encodeURIComponent(outTradeNo)}`)).body;
  }

  /** Records a paid transaction at "WeChat" that never went through our prepay. */
  async injectTransaction(input: { outTradeNo: string; total: number; openid?: string; successTime?: string; description?: string }) {
    return (await this.call<Record<string, unknown>>('POST', '/transactions', input)).body;
  }

  /** Puts an unpaid order into USERPAYING (user entering the password) or PAYERROR, or back to NOTPAY. */
  async setTradeState(outTradeNo: string, state: 'USERPAYING' | 'PAYERROR' | 'NOTPAY') {
    return (await this.call<Record<string, unknown> & { trade_state: string }>('POST', `/transactions/${encodeURIComponent(outTradeNo)}/trade-state`, { state })).body;
  }

  async alterTransaction(outTradeNo: string, changes: { total?: number }) {
    return (await this.call<Record<string, unknown>>('PATCH', `/transactions/${encodeURIComponent(outTradeNo)}`, changes)).body;
  }

  async refund(outRefundNo: string): Promise<Record<string, unknown> & { status: string }> {
    return (await this.call<Record<string, unknown> & { status: string }>('GET', `/refunds/${encodeURIComponent(outRefundNo)}`)).body;
  }

  /** While insufficient, refunds answer 403 NOT_ENOUGH (the merchant's balance cannot cover them). */
  async setInsufficientBalance(insufficient = true): Promise<void> {
    await this.call('POST', '/refunds/balance', { insufficient });
  }

  async nextRefundOutcome(status: 'SUCCESS' | 'ABNORMAL' | 'CLOSED', count = 1): Promise<void> {
    await this.call('POST', '/refunds/next-outcome', { status, count });
  }

  async notifications(filter: { outTradeNo?: string; outRefundNo?: string } = {}): Promise<NotificationAttempt[]> {
    const qs = new URLSearchParams(filter as Record<string, string>).toString();
    return (await this.call<{ attempts: NotificationAttempt[] }>('GET', `/notifications${qs ? `?${qs}` : ''}`)).body.attempts;
  }

  /** Waits until a notification attempt matching `predicate` exists (scaled retries run in the background). */
  async waitForNotification(
    filter: { outTradeNo?: string; outRefundNo?: string },
    predicate: (attempts: NotificationAttempt[]) => boolean = (a) => a.some((x) => x.ok),
    timeoutMs = 10_000,
  ): Promise<NotificationAttempt[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const attempts = await this.notifications(filter);
      if (predicate(attempts)) return attempts;
      if (Date.now() > deadline) throw new Error(`notification for ${JSON.stringify(filter)} not seen: ${JSON.stringify(attempts)}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Serves a gzip trade bill file inside the sandbox's DATA_DIR (absolute, or relative to it) as the ALL bill of `date`; answers its path relative to DATA_DIR. */
  async registerTradeBill(date: string, path: string, subMchid?: string): Promise<{ hash: string; bytes: number; path: string }> {
    return (await this.call<{ hash: string; bytes: number; path: string }>('POST', '/bills', { date, path, ...(subMchid ? { subMchid } : {}) })).body;
  }

  /** The next `count` bill files downloaded come with one byte changed (0 turns it off). */
  async tamperBillFiles(count = 1): Promise<void> {
    await this.call('POST', '/bills/tamper', { count });
  }

  /** Sub-merchant fund-flow bills are cut into parts of at most `bytes` of plain text (0: one part). */
  async setBillPartSize(bytes: number): Promise<void> {
    await this.call('POST', '/bills/part-size', { bytes });
  }

  async dropNotifications(enabled = true): Promise<void> {
    await this.call('POST', '/notifications/drop', { enabled });
  }

  /** Delivers the latest notification of an order/refund `times` times at once, optionally tampered. */
  async deliver(target: { outTradeNo?: string; outRefundNo?: string }, options: { times?: number; tamper?: Tamper } = {}): Promise<NotificationAttempt[]> {
    return (await this.call<{ attempts: NotificationAttempt[] }>('POST', '/notifications/deliver', { ...target, ...options })).body.attempts;
  }

  async shiftClock(shiftMs: number): Promise<void> {
    await this.call('POST', '/clock', { shiftMs });
  }

  async resetClock(): Promise<void> {
    await this.call('POST', '/clock', { reset: true });
  }

  /** The sandbox's time and its offset from real time. */
  /** Simulated WeChat's own clock runs `ms` ahead of real time (negative: behind; 0: off). */
  async setWechatSkew(ms: number): Promise<void> {
    await this.call('POST', '/clock', { wechatSkewMs: ms });
  }

  async clock(): Promise<{ now: string; offsetMs: number; wechatSkewMs: number }> {
    return (await this.call<{ now: string; offsetMs: number; wechatSkewMs: number }>('GET', '/clock')).body;
  }

  async invalidateTokens(): Promise<number> {
    return (await this.call<{ invalidated: number }>('POST', '/tokens/invalidate')).body.invalidated;
  }

  async createUser(input: { openid?: string; nickname?: string; avatarUrl?: string } = {}): Promise<{ openid: string; nickname: string; avatarUrl: string }> {
    return (await this.call<{ openid: string; nickname: string; avatarUrl: string }>('POST', '/users', input)).body;
  }

  /** What wx.login() gives the mini-program user `openid` (single use, 5 minutes); see the control route for the linking options. */
  async miniprogramCode(input: { openid?: string; unionid?: string; officialAccountOpenid?: string }): Promise<{ code: string; openid: string; unionid: string | null }> {
    return (await this.call<{ code: string; openid: string; unionid: string | null }>('POST', '/miniprogram/code', input)).body;
  }

  /** The sandbox merchant's mini-program appid. */
  async miniprogramAppid(): Promise<string> {
    return (await this.call<{ appid: string }>('GET', '/miniprogram')).body.appid;
  }

  async reset(): Promise<void> {
    await this.call('POST', '/reset');
  }
}
