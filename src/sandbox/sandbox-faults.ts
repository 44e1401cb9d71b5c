import { Injectable } from '@nestjs/common';

export type FaultKind = '500' | '429' | 'timeout';

/**
 * Call counting and fault injection for every sandbox endpoint. Endpoint names are WeChat's paths
 * without the leading slash or ids: 'cgi-bin/token', 'v3/pay/transactions/jsapi',
 * 'v3/pay/transactions/out-trade-no', 'v3/pay/transactions/close', 'v3/refund/domestic/refunds', …
 */
@Injectable()
export class SandboxFaults {
  private readonly calls = new Map<string, number>();
  private readonly pending = new Map<string, Array<{ kind: FaultKind; remaining: number }>>();

  /** Counts one call and returns the fault to inject into it, if any. */
  enter(endpoint: string): FaultKind | undefined {
    this.calls.set(endpoint, (this.calls.get(endpoint) ?? 0) + 1);
    const queue = this.pending.get(endpoint);
    if (!queue?.length) return undefined;
    const head = queue[0];
    head.remaining--;
    if (head.remaining <= 0) queue.shift();
    return head.kind;
  }

  failNext(endpoint: string, count: number, kind: FaultKind): void {
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
