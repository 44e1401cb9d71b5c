import { Injectable } from '@nestjs/common';

export type FaultKind = '500' | '429' | 'timeout';

/**
 * Every endpoint the sandbox counts and can fail, by name: WeChat's paths without the leading slash
 * or ids, plus the browser-side calls of the cashier and the JS bridge. Control API fault requests
 * naming anything else are refused, so a typo cannot silently inject nothing.
 */
export const SANDBOX_ENDPOINTS = {
  /** Official account (HTTP 200 with errcode: 500 → -1 system error, 429 → 45009 quota) */
  mp: [
    'cgi-bin/token',
    'cgi-bin/stable_token',
    'cgi-bin/ticket/getticket',
    'sns/oauth2/access_token',
    'sns/oauth2/refresh_token',
    'sns/userinfo',
    'sns/auth',
    'sns/jscode2session',
  ],
  /** The authorize page (500 → WeChat's error page, 429 → its "too frequent" page) */
  page: ['connect/oauth2/authorize'],
  /** Pay APIv3 (signed 500 SYSTEM_ERROR / 429 FREQUENCY_LIMITED) */
  pay: [
    'v3/pay/transactions/jsapi',
    'v3/pay/transactions/h5',
    'v3/pay/transactions/native',
    'v3/pay/transactions/out-trade-no',
    'v3/pay/transactions/id',
    'v3/pay/transactions/close',
    // A service provider's (服务商) prepay, query and close
    'v3/pay/partner/transactions/jsapi',
    'v3/pay/partner/transactions/h5',
    'v3/pay/partner/transactions/native',
    'v3/pay/partner/transactions/out-trade-no',
    'v3/pay/partner/transactions/id',
    'v3/pay/partner/transactions/close',
    'v3/refund/domestic/refunds',
    'v3/refund/domestic/refunds/query',
    'v3/certificates',
    'v3/bill/tradebill',
    'v3/bill/fundflowbill',
    'v3/bill/sub-merchant-fundflowbill',
    'v3/billdownload/file',
  ],
  /** Pay APIv2 (500 → err_code SYSTEMERROR, 429 → FREQUENCY_LIMITED, signed result_code FAIL; the bills: return_code FAIL 系统繁忙 / 频率限制) */
  payV2: ['pay/unifiedorder', 'pay/orderquery', 'pay/closeorder', 'secapi/pay/refund', 'pay/refundquery', 'pay/downloadbill', 'pay/downloadfundflow'],
  /** Inside the WeChat browser: wx.config, getBrandWCPayRequest, and the cashier's POST /sandbox/pay */
  browser: ['jsbridge/config', 'jsbridge/pay', 'sandbox/pay'],
} as const;

export type SandboxEndpoint = (typeof SANDBOX_ENDPOINTS)[keyof typeof SANDBOX_ENDPOINTS][number];

export const ALL_SANDBOX_ENDPOINTS: readonly string[] = Object.values(SANDBOX_ENDPOINTS).flat();

export function isSandboxEndpoint(name: string): name is SandboxEndpoint {
  return ALL_SANDBOX_ENDPOINTS.includes(name);
}

/** Call counting and fault injection for every sandbox endpoint (names: SANDBOX_ENDPOINTS). */
@Injectable()
export class SandboxFaults {
  private readonly calls = new Map<string, number>();
  private readonly pending = new Map<string, Array<{ kind: FaultKind; remaining: number }>>();

  /** Counts one call and returns the fault to inject into it, if any. */
  enter(endpoint: SandboxEndpoint): FaultKind | undefined {
    this.calls.set(endpoint, (this.calls.get(endpoint) ?? 0) + 1);
    const queue = this.pending.get(endpoint);
    if (!queue?.length) return undefined;
    const head = queue[0];
    head.remaining--;
    if (head.remaining <= 0) queue.shift();
    return head.kind;
  }

  failNext(endpoint: SandboxEndpoint, count: number, kind: FaultKind): void {
    const queue = this.pending.get(endpoint) ?? [];
    queue.push({ kind, remaining: count });
    this.pending.set(endpoint, queue);
  }

  counts(): Record<string, number> {
    return Object.fromEntries([...this.calls.entries()].sort(([a], [b]) => a.localeCompare(b)));
  }

  pendingFaults(): Record<string, Array<{ kind: FaultKind; remaining: number }>> {
    return Object.fromEntries(this.pending.entries());
  }

  resetCounts(): void {
    this.calls.clear();
  }

  reset(): void {
    this.calls.clear();
    this.pending.clear();
  }
}
