/**
 * A post-login redirect must stay on this site: a path starting with exactly one '/', no backslash
 * (browsers read '/\evil.com' as '//evil.com'), no control characters, and resolving to our origin.
 */
export function isSafeRedirect(redirect: string, origin: string): boolean {
  if (!redirect.startsWith('/') || redirect.startsWith('//')) return false;
  if (redirect.length > 512 || redirect.includes('\\') || [...redirect].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) return false;
  try {
    return new URL(redirect, origin).origin === new URL(origin).origin;
  } catch {
    return false;
  }
}
