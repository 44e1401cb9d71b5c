/**
 * Injection token of what the payment module asks the refund module (which depends on payment, so
 * payment cannot import it): which orders already have a refund the refund module is following.
 */
export const REFUND_PROGRESS = Symbol('REFUND_PROGRESS');

export interface RefundProgress {
  /** Of these orders, those with a refund in flight (PROCESSING, ABNORMAL) or done (SUCCESS). */
  ordersWithActiveRefund(outTradeNos: string[]): Promise<Set<string>>;
}
