import { HttpStatus } from '@nestjs/common';
import { AppError } from '../common/errors/app-error';

export class OrderNotFoundError extends AppError {
  constructor(outTradeNo: string) {
    super(HttpStatus.NOT_FOUND, 'ORDER_NOT_FOUND', `order ${outTradeNo} not found`);
  }
}

export class ProductNotFoundError extends AppError {
  constructor(ids: Array<number | string>) {
    super(HttpStatus.BAD_REQUEST, 'UNKNOWN_PRODUCT', `unknown or unavailable product${ids.length > 1 ? 's' : ''}: ${ids.join(', ')}`, { productIds: ids });
  }
}

export class OutOfStockError extends AppError {
  constructor(name: string, productId: number | string) {
    super(HttpStatus.CONFLICT, 'OUT_OF_STOCK', `not enough stock left for ${name} (product ${productId})`, { productId: Number(productId) });
  }
}

export class OrderStateError extends AppError {
  constructor(code: string, message: string, status?: string) {
    super(HttpStatus.CONFLICT, code, message, status ? { status } : undefined);
  }
}

export class IdempotencyConflictError extends AppError {
  constructor() {
    super(HttpStatus.CONFLICT, 'IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was already used for a different order request');
  }
}

/**
 * A prepay that kept failing for a passing reason (WeChat's SYSTEM_ERROR / 5xx / 429, or the network)
 * after its retries. The order is untouched and stays payable: the shopper is told, in Chinese like
 * the shop, to try the same order again. What WeChat said stays in `details` for the operator.
 */
export class PrepayUnavailableError extends AppError {
  constructor(outTradeNo: string, attempts: number, cause: { wechatStatus?: number; wechatCode?: string; requestId?: string }) {
    super(HttpStatus.SERVICE_UNAVAILABLE, 'PREPAY_UNAVAILABLE', '微信支付暂时无法下单，请稍后重试。订单已保留，重试不会重复下单。', {
      outTradeNo,
      retryable: true,
      attempts,
      ...cause,
    });
  }
}
