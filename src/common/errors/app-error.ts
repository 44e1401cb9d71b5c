import { HttpStatus } from '@nestjs/common';

/**
 * Base of every domain error. The exception filter turns it into
 * `{ statusCode, error, message, code, details? }`; `code` is machine-readable and stable.
 */
export class AppError extends Error {
  constructor(
    readonly status: HttpStatus | number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class NotFoundError extends AppError {
  constructor(what: string, code = 'NOT_FOUND') {
    super(HttpStatus.NOT_FOUND, code, `${what} not found`);
  }
}

export class ConflictError extends AppError {
  constructor(code: string, message: string, details?: Record<string, unknown>) {
    super(HttpStatus.CONFLICT, code, message, details);
  }
}

export class BadRequestError extends AppError {
  constructor(code: string, message: string, details?: Record<string, unknown>) {
    super(HttpStatus.BAD_REQUEST, code, message, details);
  }
}

export class UnauthorizedError extends AppError {
  constructor(code: string, message: string, details?: Record<string, unknown>) {
    super(HttpStatus.UNAUTHORIZED, code, message, details);
  }
}

/** 429: too many requests, or a per-client limit reached; the filter sends `Retry-After` from retryAfterS. */
export class TooManyRequestsError extends AppError {
  constructor(code: string, message: string, readonly retryAfterS: number, details?: Record<string, unknown>) {
    super(HttpStatus.TOO_MANY_REQUESTS, code, message, { ...details, retryAfterS });
  }
}
