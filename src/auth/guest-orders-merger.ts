/**
 * Moves a guest's orders to the account the same browser then logged in with (PaymentModule provides
 * it: `{ provide: GUEST_ORDERS_MERGER, useExisting: OrderService }`). Auth resolves it lazily, so the
 * auth module does not depend on payments.
 */
export const GUEST_ORDERS_MERGER = Symbol('GUEST_ORDERS_MERGER');

export interface GuestOrdersMerger {
  reassignUser(fromUserId: number, toUserId: number): Promise<void>;
}
