import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import { STATUS_CODES } from 'node:http';
import type { Request, Response } from 'express';
import { AppError, TooManyRequestsError } from './app-error';

export interface ErrorBody {
  statusCode: number;
  error: string;
  message: string;
  code?: string;
  details?: unknown;
  requestId?: string;
}

function messageOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(String).join('; ');
  return undefined;
}

/**
 * The one place where errors become HTTP answers. Known errors keep their status and message;
 * anything else is a 500 whose body says nothing about internals (the stack goes to the log only).
 */
@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  private readonly logger = new Logger('HTTP');

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const res = ctx.getResponse<Response>();
    const req = ctx.getRequest<Request & { id?: string }>();
    const body = this.toBody(exception);
    body.requestId = typeof req?.id === 'string' ? req.id : undefined;

    if (body.statusCode >= 500) {
      this.logger.error(
        { err: exception instanceof Error ? exception : undefined, path: req?.path },
        `${req?.method} ${req?.path} failed: ${exception instanceof Error ? exception.message : String(exception)}`,
      );
    }
    if (res.headersSent) {
      res.end();
      return;
    }
    if (exception instanceof TooManyRequestsError) res.setHeader('Retry-After', String(exception.retryAfterS));
    res.status(body.statusCode).json(body);
  }

  private toBody(exception: unknown): ErrorBody {
    if (exception instanceof AppError) {
      return {
        statusCode: exception.status,
        error: STATUS_CODES[exception.status] ?? 'Error',
        message: exception.message,
        code: exception.code,
        details: exception.details,
      };
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const response = exception.getResponse();
      let message = exception.message;
      let code: string | undefined;
      let details: unknown;
      if (typeof response === 'object' && response !== null) {
        const r = response as Record<string, unknown>;
        message = messageOf(r.message) ?? message;
        code = typeof r.code === 'string' ? r.code : undefined;
        details = r.details;
      } else if (typeof response === 'string') {
        message = response;
      }
      return { statusCode: status, error: STATUS_CODES[status] ?? 'Error', message, code, details };
    }
    // body-parser and similar middleware errors carry an HTTP status of their own.
    const e = exception as { status?: unknown; statusCode?: unknown; type?: unknown; message?: unknown };
    const status = typeof e?.status === 'number' ? e.status : typeof e?.statusCode === 'number' ? e.statusCode : 0;
    if (status >= 400 && status < 500) {
      const message =
        e.type === 'entity.parse.failed'
          ? 'Request body is not valid JSON'
          : e.type === 'entity.too.large'
            ? 'Request body is too large'
            : typeof e.message === 'string'
              ? e.message
              : 'Bad request';
      return { statusCode: status, error: STATUS_CODES[status] ?? 'Error', message, code: 'BAD_REQUEST' };
    }
    return {
      statusCode: HttpStatus.INTERNAL_SERVER_ERROR,
      error: 'Internal Server Error',
      message: 'Internal server error',
      code: 'INTERNAL',
    };
  }
}
