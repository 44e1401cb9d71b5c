/**
 * The names one machine answers to: a development server on http://localhost:3000 is opened as
 * http://127.0.0.1:3000 just as often. Cookies are per host, so a login that starts on one and returns
 * to the other loses its cookies; both names are treated as this site where that is safe (sandbox mode).
 */
const LOOPBACK_NAMES = ['localhost', '127.0.0.1'];

export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_NAMES.includes(hostname.toLowerCase());
}

/** The base URL's host, plus the other loopback name when it is one. */
export function siteHosts(baseUrl: string): string[] {
  const host = new URL(baseUrl).hostname.toLowerCase();
  return isLoopbackHost(host) ? [host, ...LOOPBACK_NAMES.filter((n) => n !== host)] : [host];
}

/**
 * The origin a request came in on, when it is the base URL's origin under another allowed name (same
 * scheme and port; `hosts` allowed); else the base URL's origin.
 */
export function allowedRequestOrigin(baseUrl: string, requestOrigin: string | undefined, hosts: string[]): string {
  const base = new URL(baseUrl);
  if (!requestOrigin) return base.origin;
  try {
    const asked = new URL(requestOrigin);
    if (asked.protocol === base.protocol && asked.port === base.port && hosts.includes(asked.hostname.toLowerCase())) return asked.origin;
  } catch {
    // not a URL: the base
  }
  return base.origin;
}
