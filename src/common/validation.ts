import { HttpStatus, ValidationError, ValidationPipe } from '@nestjs/common';
import { AppError } from './errors/app-error';

function describe(errors: ValidationError[], parent = ''): string[] {
  const out: string[] = [];
  for (const error of errors) {
    const path = parent ? `${parent}.${error.property}` : error.property;
    for (const message of Object.values(error.constraints ?? {})) {
      // class-validator messages start with the property name; replace it with the full path.
      out.push(message.startsWith(error.property) ? path + message.slice(error.property.length) : `${path}: ${message}`);
    }
    out.push(...describe(error.children ?? [], path));
  }
  return out;
}

/** Global pipe: strips nothing silently (unknown fields are rejected), converts, and explains failures. */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    forbidUnknownValues: true,
    transform: true,
    transformOptions: { enableImplicitConversion: false },
    exceptionFactory: (errors) => {
      const messages = describe(errors);
      return new AppError(HttpStatus.BAD_REQUEST, 'VALIDATION_FAILED', messages.join('; '), { errors: messages });
    },
  });
}
