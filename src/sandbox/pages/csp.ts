import type { Response } from 'express';

/**
 * Widens one or more directives of the Content-Security-Policy already on the response (set for every
 * /sandbox path by common/security-headers.ts): a sandbox page that needs more than `'self'` names
 * exactly what, and everything else stays strict.
 */
export function widenCsp(res: Response, extra: Record<string, string[]>): void {
  const current = res.getHeader('Content-Security-Policy');
  if (typeof current !== 'string') return;
  const directives = current
    .split(';')
    .map((d) => d.trim())
    .filter(Boolean)
    .map((d) => d.split(/\s+/));
  for (const [name, values] of Object.entries(extra)) {
    const directive = directives.find((d) => d[0] === name);
    if (!directive) directives.push([name, ...values]);
    else {
      // 'none' admits nothing else next to it.
      const kept = directive.slice(1).filter((v) => v !== "'none'");
      directive.splice(1, directive.length - 1, ...new Set([...kept, ...values]));
    }
  }
  res.setHeader('Content-Security-Policy', directives.map((d) => d.join(' ')).join('; '));
}

/**
 * A URL's origin as a CSP source; with `anyPort`, `scheme://host:*` (WeChat's registrations — payment
 * directories, OAuth and JS-safe domains — carry no port). Undefined for anything not http(s).
 */
export function cspSource(url: string, anyPort = false): string | undefined {
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
    return anyPort ? `${u.protocol}//${u.hostname}:*` : u.origin;
  } catch {
    return undefined;
  }
}
