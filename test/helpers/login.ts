/**
 * Logs a shopper in through the real flow: our /auth/wechat/authorize → the sandbox's authorize page
 * (consenting as `openid`) → our callback. Returns the session cookie and the bearer token.
 */
export interface Login {
  cookie: string;
  token: string;
  location: string;
  /** Headers that authenticate as this shopper with fetch/supertest. */
  headers: { Authorization: string };
}

export async function loginAs(
  baseUrl: string,
  openid: string,
  options: {
    scope?: 'snsapi_base' | 'snsapi_userinfo';
    redirect?: string;
    nickname?: string;
    /** Cookies this browser already holds for the shop (e.g. a guest session), sent to authorize and callback. */
    cookie?: string;
    /** Service-provider mode: log in through this sub-merchant's own official account (?subMchid=). */
    subMchid?: string;
  } = {},
): Promise<Login> {
  const start = await fetch(
    `${baseUrl}/auth/wechat/authorize?redirect=${encodeURIComponent(options.redirect ?? '/')}&scope=${options.scope ?? 'snsapi_base'}${options.subMchid ? `&subMchid=${options.subMchid}` : ''}`,
    { redirect: 'manual', headers: options.cookie ? { Cookie: options.cookie } : {} },
  );
  if (start.status !== 302) throw new Error(`authorize answered ${start.status}: ${await start.text()}`);
  const binding = loginCookie(start);
  const wechat = new URL(start.headers.get('location')!.replace('#wechat_redirect', ''));
  wechat.searchParams.set('sandbox_openid', openid);
  if (options.nickname) wechat.searchParams.set('sandbox_nickname', options.nickname);
  const consent = await fetch(wechat, { redirect: 'manual' });
  if (consent.status !== 302) throw new Error(`sandbox authorize answered ${consent.status}: ${await consent.text()}`);
  const callback = await fetch(consent.headers.get('location')!, { redirect: 'manual', headers: { Cookie: options.cookie ? `${options.cookie}; ${binding}` : binding } });
  if (callback.status !== 302) throw new Error(`callback answered ${callback.status}: ${await callback.text()}`);
  const setCookie = callback.headers.get('set-cookie') ?? '';
  const match = /whp_session=([^;]+)/.exec(setCookie);
  if (!match) throw new Error(`no session cookie in ${setCookie}`);
  const token = decodeURIComponent(match[1]);
  return { cookie: `whp_session=${match[1]}`, token, location: callback.headers.get('location')!, headers: { Authorization: `Bearer ${token}` } };
}

/** The `whp_login=<binding>` cookie pair our /auth/wechat/authorize set (the callback requires it back). */
export function loginCookie(res: Response): string {
  const match = /whp_login=([0-9a-f]{32})/.exec(res.headers.get('set-cookie') ?? '');
  if (!match) throw new Error(`authorize set no login cookie: ${res.headers.get('set-cookie')}`);
  return `whp_login=${match[1]}`;
}

/** POST /auth/guest: a guest session (cookie only) as a Login (its bearer headers work too). */
export async function guestLogin(baseUrl: string, cookie?: string): Promise<Login & { setCookie: string; status: number }> {
  const res = await fetch(`${baseUrl}/auth/guest`, { method: 'POST', headers: cookie ? { Cookie: cookie } : {} });
  const setCookie = res.headers.get('set-cookie') ?? '';
  const match = /whp_session=([^;]+)/.exec(setCookie);
  if (res.status !== 201 || !match) throw new Error(`POST /auth/guest answered ${res.status}: ${await res.text()}`);
  const token = decodeURIComponent(match[1]);
  return { cookie: `whp_session=${match[1]}`, token, location: '', headers: { Authorization: `Bearer ${token}` }, setCookie, status: res.status };
}
