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
