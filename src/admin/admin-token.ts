import { createHash, timingSafeEqual } from 'node:crypto';

/** A short, non-reversible name for a token, safe to store and log (audit rows, rate-limit keys). */
export function tokenFingerprint(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex').slice(0, 12);
}

/**
 * Constant-time membership test: every configured token is compared (on SHA-256 digests, so lengths
 * never leak through timing either), whether or not an earlier one matched.
 */
export function matchesAnyToken(candidate: string, tokens: readonly string[]): boolean {
  const digest = createHash('sha256').update(candidate, 'utf8').digest();
  let match = false;
  for (const token of tokens) {
    const expected = createHash('sha256').update(token, 'utf8').digest();
    match = timingSafeEqual(digest, expected) || match;
  }
  return match;
}

export function bearerToken(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(value ?? '');
  return match?.[1];
}
