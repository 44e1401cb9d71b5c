import { randomInt } from 'node:crypto';
import { payError } from './sandbox-errors';

// What the APIv3 transaction and refund fronts (SandboxPayService, SandboxRefundsService) share:
// body checks with WeChat's messages, request fingerprints, random digits for WeChat's ids.

export type Json = Record<string, unknown>;

export function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A required string field of `min`..`max` characters, else PARAM_ERROR naming it as WeChat does. */
export function requireString(body: Json, field: string, max: number, min = 1): string {
  const value = body[field];
  if (value === undefined || value === null) throw payError.param(`输入源“/body/${field}”映射到字段“${field}”必填性规则校验失败，此字段为必填项`, `/${field}`);
  if (typeof value !== 'string') throw payError.param(`字段 ${field} 类型错误，应为字符串`, `/${field}`, value);
  if (value.length < min || value.length > max) throw payError.param(`字段 ${field} 长度应在 ${min} 到 ${max} 之间`, `/${field}`, value);
  return value;
}

/** A request's fingerprint (sorted keys, undefined left out): a retried request must match the first. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (isObject(value)) {
    return `{${Object.keys(value)
      .sort()
      .filter((k) => value[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** `n` random decimal digits. */
export function digits(n: number): string {
  let out = '';
  for (let i = 0; i < n; i++) out += String(randomInt(10));
  return out;
}
