/**
 * A post-login redirect must stay on this site: a path starting with exactly one '/', no backslash
 * (browsers read '/\evil.com' as '//evil.com'), no control characters, and resolving to our origin.
 */
export function isSafeRedirect(redirect: string, origin: string): boolean {
  if (!redirect.startsWith('/') || redirect.startsWith('//')) return false;
  if (redirect.length > 512 || /[\\\u0000-\u001f\u007f]/.test(redirect)) return false;
  try {
    return new URL(redirect, origin).origin === new URL(origin).origin;
  } catch {
    return false;
  }
}
