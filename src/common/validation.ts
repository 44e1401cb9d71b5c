import { ArgumentMetadata, HttpStatus, ValidationError, ValidationPipe } from '@nestjs/common';
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

/**
 * A DTO class may offer a hand-written check of the exact shape it accepts: `static [FAST_VALIDATE](value)`
 * answers the DTO instance the global pipe would produce when the value is certainly valid, and undefined
 * otherwise — then the value goes through class-transformer and class-validator as always, so every
 * refusal (400 VALIDATION_FAILED and its messages) is theirs, unchanged. Worth it only on hot routes
 * (POST /orders): the class-validator round trip of a small body costs more than the check.
 */
export const FAST_VALIDATE = Symbol('whp.fastValidate');

export type FastValidated<T> = { [FAST_VALIDATE]?: (value: unknown) => T | undefined };

/** A plain JSON object (what JSON.parse makes) with exactly these own keys. */
export function hasExactlyKeys(value: unknown, keys: readonly string[]): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || Object.getPrototypeOf(value) !== Object.prototype) return false;
  const own = Object.keys(value);
  return own.length === keys.length && keys.every((key) => Object.prototype.hasOwnProperty.call(value, key));
}

class AppValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    const fast = (metadata.metatype as FastValidated<unknown> | undefined)?.[FAST_VALIDATE];
    if (fast && metadata.type === 'body') {
      const valid = fast(value);
      if (valid !== undefined) return valid;
    }
    return super.transform(value, metadata);
  }
}

/** Global pipe: strips nothing silently (unknown fields are rejected), converts, and explains failures. */
export function createValidationPipe(): ValidationPipe {
  return new AppValidationPipe({
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
