import type { RefundNotificationResource } from '../wechat/pay/types';

/** Injection token of the refund module's handler for verified, decrypted refund notifications. */
export const REFUND_NOTIFICATION_SINK = Symbol('REFUND_NOTIFICATION_SINK');

export interface RefundNotificationSink {
  /** Applies the refund result once (duplicates harmless); resolves after commit with a short outcome. */
  handleRefundNotification(resource: RefundNotificationResource, eventType: string): Promise<string>;
}
