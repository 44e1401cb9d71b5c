/** One exchange with WeChat (each attempt of a retried call counts), as the metrics see it. */
export interface WechatCall {
  /** pay: Pay APIv3 (api.mch.weixin.qq.com); mp: the official-account API (api.weixin.qq.com). */
  api: 'pay' | 'mp';
  /** A fixed name per API, never an order or refund number (e.g. v3/pay/transactions/out-trade-no). */
  endpoint: string;
  /** The HTTP status as text; `timeout` or `network_error` when no answer came; mp: `errcode_<n>` for an error code. */
  status: string;
  durationMs: number;
}

export type WechatCallObserver = (call: WechatCall) => void;

/**
 * The endpoint name of a Pay APIv3 request target (path without query), with the order, refund or
 * transaction number taken out — the names the sandbox's fault and stats API uses.
 */
export function payEndpointName(method: string, path: string): string {
  const p = path.split('?', 1)[0].replace(/^.*?\/v3\//, 'v3/').replace(/\/+$/, '');
  if (/^v3\/pay\/transactions\/out-trade-no\/[^/]+\/close$/.test(p)) return 'v3/pay/transactions/close';
  if (/^v3\/pay\/transactions\/out-trade-no\/[^/]+$/.test(p)) return 'v3/pay/transactions/out-trade-no';
  if (/^v3\/pay\/transactions\/id\/[^/]+$/.test(p)) return 'v3/pay/transactions/id';
  if (/^v3\/refund\/domestic\/refunds\/[^/]+$/.test(p)) return 'v3/refund/domestic/refunds/query';
  if (p === 'v3/refund/domestic/refunds') return method === 'GET' ? 'v3/refund/domestic/refunds/query' : p;
  const known = [
    'v3/pay/transactions/jsapi',
    'v3/pay/transactions/native',
    'v3/certificates',
    'v3/bill/tradebill',
    'v3/bill/fundflowbill',
    'v3/bill/sub-merchant-fundflowbill',
    'v3/billdownload/file',
  ];
  if (known.includes(p)) return p;
  // Anything else: its first three segments, numbers blanked, so that no identifier becomes a label.
  return p.split('/').slice(0, 3).map((s) => (/\d{4,}/.test(s) ? ':id' : s)).join('/') || 'other';
}
