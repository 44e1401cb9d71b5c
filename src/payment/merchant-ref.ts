import type { MerchantRef } from '../wechat/pay/payment-gateway';
import type { Order } from './entities/order.entity';

/** The order's sub-merchant for the payment port (service-provider mode); undefined for a direct merchant's order. */
export function merchantOf(order: Pick<Order, 'subMchid'>): MerchantRef | undefined {
  return order.subMchid ? { subMchid: order.subMchid } : undefined;
}
