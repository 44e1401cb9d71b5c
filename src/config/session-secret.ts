import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AppConfig } from './app-config';

/**
 * The configured SESSION_SECRET, or (sandbox mode only; live mode requires the variable) a random
 * one generated once and kept under DATA_DIR so that sessions survive restarts.
 */
export function resolveSessionSecret(config: AppConfig): string {
  if (config.session.secret) return config.session.secret;
  const file = join(config.dataDir, 'session-secret');
  try {
    const existing = readFileSync(file, 'utf8').trim();
    if (existing.length >= 32) return existing;
  } catch {
    // first start: fall through and create it
  }
  mkdirSync(config.dataDir, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, secret + '\n', { mode: 0o600 });
  return secret;
}
