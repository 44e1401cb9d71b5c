import { ValidateBy, ValidationOptions, buildMessage } from 'class-validator';
import { parseDuration } from '../duration';

function parseUrl(value: unknown): URL | undefined {
  if (typeof value !== 'string') return undefined;
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

/** An absolute http(s) URL without query or fragment (a base that paths are appended to). */
export function IsBaseUrl(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isBaseUrl',
      validator: {
        validate: (value) => {
          const url = parseUrl(value);
          return !!url && (url.protocol === 'http:' || url.protocol === 'https:') && !url.search && !url.hash;
        },
        defaultMessage: buildMessage(
          () => 'must be an absolute http:// or https:// URL without query string or fragment',
          options,
        ),
      },
    },
    options,
  );
}

/** `mysql://user:pass@host:port/db` (mariadb:// accepted as an alias). */
export function IsMysqlUrl(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isMysqlUrl',
      validator: {
        validate: (value) => {
          const url = parseUrl(value);
          if (!url || (url.protocol !== 'mysql:' && url.protocol !== 'mariadb:')) return false;
          const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
          return !!url.hostname && !!url.username && /^[A-Za-z0-9_$]{1,64}$/.test(database);
        },
        defaultMessage: buildMessage(
          () =>
            'must look like mysql://user:pass@host:port/database (unset it to use the embedded SQLite database)',
          options,
        ),
      },
    },
    options,
  );
}

export function IsRedisUrl(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isRedisUrl',
      validator: {
        validate: (value) => {
          const url = parseUrl(value);
          return !!url && (url.protocol === 'redis:' || url.protocol === 'rediss:') && !!url.hostname;
        },
        defaultMessage: buildMessage(() => 'must look like redis://[:password@]host:port[/db]', options),
      },
    },
    options,
  );
}

export function IsDuration(options?: ValidationOptions & { minMs?: number; maxMs?: number }): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isDuration',
      validator: {
        validate: (value) => {
          if (typeof value !== 'string') return false;
          const ms = parseDuration(value);
          return ms !== undefined && ms >= (options?.minMs ?? 1) && (options?.maxMs === undefined || ms <= options.maxMs);
        },
        defaultMessage: buildMessage(
          () => (options?.maxMs !== undefined ? `must be a duration from ${options.minMs ?? 1}ms to ${options.maxMs / 1000}s, such as 500ms or 2s` : 'must be a duration such as 90s, 5m or 2h'),
          options,
        ),
      },
    },
    options,
  );
}

export function IsIntString(min: number, max: number, options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isIntString',
      validator: {
        validate: (value) =>
          typeof value === 'string' && /^\d+$/.test(value) && Number(value) >= min && Number(value) <= max,
        defaultMessage: buildMessage(() => `must be an integer from ${min} to ${max}`, options),
      },
    },
    options,
  );
}

export function IsNumberString(min: number, max: number, options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isNumberStringInRange',
      validator: {
        validate: (value) =>
          typeof value === 'string' &&
          /^\d+(\.\d+)?$/.test(value) &&
          Number(value) >= min &&
          Number(value) <= max,
        defaultMessage: buildMessage(() => `must be a number from ${min} to ${max}`, options),
      },
    },
    options,
  );
}

export function IsBooleanString(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isBooleanStringLoose',
      validator: {
        validate: (value) => typeof value === 'string' && /^(true|false|1|0|yes|no|on|off)$/i.test(value),
        defaultMessage: buildMessage(() => 'must be true or false', options),
      },
    },
    options,
  );
}

export function toBool(value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  return /^(true|1|yes|on)$/i.test(value);
}
