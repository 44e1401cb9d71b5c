import { Body, Controller, Get, Header, HttpCode, HttpStatus, Post, Query, Req, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiCookieAuth, ApiCreatedResponse, ApiExcludeEndpoint, ApiOkResponse, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { Clock } from '../common/clock';
import { AppError } from '../common/errors/app-error';
import { RateWindow } from '../common/rate-window';
import { AppConfig } from '../config/app-config';
import { isLoginBinding, randomId } from './auth-crypto';
import { ACCOUNT_GONE, LoginDeclinedError, LoginNotBoundError, LoginRequiredError } from './auth.errors';
import { AuthService, UserProfile } from './auth.service';
import { CurrentUser } from './current-user.decorator';
import { AuthorizeQueryDto, CallbackQueryDto, MeQueryDto } from './dto/authorize-query.dto';
import { MeDto } from './dto/me.dto';
import { GuestAnswerDto, MiniprogramLoginAnswerDto, MiniprogramLoginDto } from './dto/miniprogram-login.dto';
import { SESSION_COOKIE, SessionGuard, SessionRequest } from './session.guard';
import type { SessionUser } from './session-user';

/** HttpOnly cookie holding the browser's login binding, set at authorize, checked at the callback. */
export const LOGIN_COOKIE = 'whp_login';
/** As long as an OAuth state lives (10 minutes). */
const LOGIN_COOKIE_MAX_AGE_MS = 10 * 60_000;

@ApiTags('auth')
@Controller('auth')
export class AuthController {
  private readonly authorizeLimit: RateWindow;
  private readonly guestLimit: RateWindow;
  private readonly miniprogramLimit: RateWindow;

  constructor(
    private readonly auth: AuthService,
    private readonly config: AppConfig,
    clock: Clock,
  ) {
    this.authorizeLimit = new RateWindow(config.session.authorizeRatePerMinute, () => clock.nowMs());
    // Each login route counts on its own, with the same per-address limit (AUTH_AUTHORIZE_RATE_LIMIT).
    this.guestLimit = new RateWindow(config.session.authorizeRatePerMinute, () => clock.nowMs());
    this.miniprogramLimit = new RateWindow(config.session.authorizeRatePerMinute, () => clock.nowMs());
  }

  /** 429 RATE_LIMITED with Retry-After once this address started too many logins this minute. */
  private limit(window: RateWindow, req: SessionRequest, res: Response): void {
    const retryAfterS = window.hit(req.ip ?? 'unknown');
    if (retryAfterS === undefined) return;
    res.setHeader('Retry-After', String(retryAfterS));
    throw new AppError(HttpStatus.TOO_MANY_REQUESTS, 'RATE_LIMITED', `too many logins started from this address; retry after ${retryAfterS} s`, { retryAfterS });
  }

  private setSessionCookie(res: Response, token: string): void {
    res.cookie(SESSION_COOKIE, token, {
      httpOnly: true,
      sameSite: 'lax',
      secure: this.config.publicBaseUrl.startsWith('https:'),
      path: '/',
      maxAge: this.config.session.ttlMs,
    });
  }

  @Post('guest')
  @HttpCode(201)
  @ApiOperation({
    summary:
      'Start a guest session (shoppers outside WeChat: order and pay by h5 or native). Sets the session cookie; no openid. A browser that already has a guest session keeps it; a WeChat login later in the same browser keeps the guest\'s orders. Rate-limited per client IP like /auth/wechat/authorize',
  })
  @ApiCreatedResponse({ type: GuestAnswerDto })
  @ApiResponse({ status: 409, description: 'This browser is already logged in with WeChat (nothing changed)' })
  @ApiResponse({ status: 429, description: 'Too many logins started from this address; Retry-After says when to try again' })
  async guest(@Req() req: SessionRequest, @Res({ passthrough: true }) res: Response): Promise<GuestAnswerDto> {
    this.limit(this.guestLimit, req, res);
    const current = req.cookies?.[SESSION_COOKIE];
    const existing = await this.auth.resolveSession(current);
    if (existing && existing.kind !== 'guest') {
      throw new AppError(HttpStatus.CONFLICT, 'ALREADY_LOGGED_IN', `this browser is already logged in (${existing.kind}); POST /auth/logout first to continue as a guest`, {
        kind: existing.kind,
      });
    }
    this.setSessionCookie(res, existing && current ? current : await this.auth.startGuest());
    return { kind: 'guest' };
  }

  @Post('miniprogram/login')
  @HttpCode(200)
  @ApiOperation({
    summary:
      'Mini-program login: the code of wx.login() → WeChat sns/jscode2session → a session token (send it as Authorization: Bearer). WeChat\'s session_key never leaves the server. Rate-limited per client IP',
  })
  @ApiOkResponse({ type: MiniprogramLoginAnswerDto })
  @ApiResponse({ status: 400, description: 'No or malformed code, or no mini-program configured (CHANNEL_UNAVAILABLE)' })
  @ApiResponse({ status: 401, description: 'WeChat rejected the code: invalid or expired (errcode 40029) or already used (40163)' })
  async miniprogramLogin(@Body() body: MiniprogramLoginDto, @Req() req: SessionRequest, @Res({ passthrough: true }) res: Response): Promise<MiniprogramLoginAnswerDto> {
    this.limit(this.miniprogramLimit, req, res);
    const { token } = await this.auth.loginMiniprogram(body.code);
    res.setHeader('Cache-Control', 'no-store');
    return { token };
  }

  @Get('wechat/authorize')
  @ApiOperation({ summary: 'Start WeChat login: 302 to the WeChat authorize page (rate-limited per client IP: AUTH_AUTHORIZE_RATE_LIMIT a minute)' })
  @ApiResponse({ status: 302, description: 'To WeChat (open.weixin.qq.com, or the sandbox); sets the short-lived login cookie the callback checks' })
  @ApiResponse({ status: 429, description: 'Too many login starts from this address; Retry-After says when to try again' })
  async authorize(@Query() query: AuthorizeQueryDto, @Req() req: SessionRequest, @Res() res: Response) {
    this.limit(this.authorizeLimit, req, res);
    // The login cookie binds the state to this browser; a browser keeps its value across parallel logins (tabs).
    const existing = req.cookies?.[LOGIN_COOKIE];
    const binding = isLoginBinding(existing) ? existing : randomId(16);
    // The host the shopper is on (localhost or 127.0.0.1 in development): WeChat returns there when allowed.
    const url = await this.auth.beginAuthorize(query.redirect ?? '/', query.scope ?? 'snsapi_base', binding, `${req.protocol}://${req.get('host')}`, query.subMchid);
    res.cookie(LOGIN_COOKIE, binding, {
      httpOnly: true,
      // Lax: sent on the top-level navigation back from WeChat's authorize page, not on cross-site subrequests.
      sameSite: 'lax',
      secure: this.config.publicBaseUrl.startsWith('https:'),
      path: '/auth/wechat',
      maxAge: LOGIN_COOKIE_MAX_AGE_MS,
    });
    res.redirect(302, url);
  }

  @Get('wechat/callback')
  @ApiOperation({ summary: 'WeChat returns here with code and state; sets the session cookie and 302s to the redirect' })
  @ApiResponse({ status: 400, description: 'A state not issued to this browser: a page (in Chinese) asking to log in again; nothing changed' })
  async callback(@Query() query: CallbackQueryDto, @Req() req: SessionRequest, @Res() res: Response) {
    let result: Awaited<ReturnType<AuthService['completeCallback']>>;
    try {
      result = await this.auth.completeCallback(query.code, query.state, req.cookies?.[LOGIN_COOKIE], req.cookies?.[SESSION_COOKIE]);
    } catch (error) {
      // Declined on WeChat's authorize page: a browser gets a page in Chinese with the way back; an API
      // client still gets the JSON 400 MISSING_CODE.
      if (error instanceof LoginDeclinedError && req.accepts(['json', 'html']) === 'html') {
        res.status(400).type('html').setHeader('Cache-Control', 'no-store');
        res.send(declinedPage(error.redirect, error.scope));
        return;
      }
      if (!(error instanceof LoginNotBoundError)) throw error;
      res.status(400).type('html').setHeader('Cache-Control', 'no-store');
      res.send(loginAgainPage());
      return;
    }
    const { token, redirect } = result;
    this.setSessionCookie(res, token);
    res.redirect(302, redirect);
  }

  /** The stylesheet of the "log in again" page (a file: the page's CSP allows no inline style). */
  @Get('login.css')
  @ApiExcludeEndpoint()
  @Header('Content-Type', 'text/css; charset=utf-8')
  @Header('Cache-Control', 'public, max-age=300')
  loginCss(): string {
    return LOGIN_PAGE_CSS;
  }

  @Get('me')
  @UseGuards(SessionGuard)
  @ApiCookieAuth(SESSION_COOKIE)
  @ApiBearerAuth()
  @ApiOkResponse({ type: MeDto })
  async me(@CurrentUser() user: SessionUser, @Query() query: MeQueryDto): Promise<MeDto> {
    const refresh = query.refresh === '1' || query.refresh === 'true';
    const profile = refresh ? await this.auth.refreshProfile(user.userId) : await this.auth.findUserById(user.userId);
    // The guard saw the user, but the row can be deleted before we read it: that is a login problem, not a 500.
    if (!profile) throw new LoginRequiredError(ACCOUNT_GONE);
    return view(profile, user);
  }

  @Post('logout')
  @HttpCode(204)
  @UseGuards(SessionGuard)
  @ApiOperation({ summary: 'End the session (the token stops working everywhere)' })
  async logout(@CurrentUser() user: SessionUser, @Req() _req: SessionRequest, @Res({ passthrough: true }) res: Response) {
    await this.auth.logout(user.sessionId);
    res.clearCookie(SESSION_COOKIE, { path: '/' });
  }
}

/** The login page again, for a callback whose state this browser did not start (no inline script or style: CSP). */
function loginAgainPage(): string {
  return `<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>请重新登录</title><link rel="stylesheet" href="/auth/login.css"></head>
<body>
<h1>请重新登录</h1>
<p>登录未完成：这个登录链接不是在当前浏览器中发起的，或已失效。为了您的账户安全，请重新登录。</p>
<p><a class="btn" href="/auth/wechat/authorize?scope=snsapi_base&amp;redirect=%2F">重新登录</a></p>
</body></html>`;
}

/** WeChat came back without a code (the shopper pressed 拒绝): say so, and offer to authorize again. */
function declinedPage(redirect: string, scope: string): string {
  const again = `/auth/wechat/authorize?scope=${encodeURIComponent(scope)}&redirect=${encodeURIComponent(redirect)}`;
  return `<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>你已拒绝授权</title><link rel="stylesheet" href="/auth/login.css"></head>
<body>
<h1 id="declined">你已拒绝微信授权</h1>
<p>登录需要获取你的微信身份，用于查看订单和完成支付。没有授权就无法下单。</p>
<p><a class="btn" id="authorize-again" href="${escapeAttr(again)}">重新授权登录</a></p>
<p><a class="link" id="go-back" href="${escapeAttr(redirect)}">返回</a></p>
</body></html>`;
}

function escapeAttr(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const LOGIN_PAGE_CSS = `body { font-family: sans-serif; text-align: center; padding: 48px 16px; }
h1 { font-size: 20px; }
.btn { display: inline-block; padding: 10px 24px; background: #07c160; color: #fff; border-radius: 6px; text-decoration: none; }
.link { color: #576b95; }
`;

function view(profile: UserProfile, user: SessionUser): MeDto {
  const scope = user.kind === 'wechat' ? profile.scope : user.kind;
  return { kind: user.kind, openid: user.openid, nickname: profile.nickname, avatarUrl: profile.avatarUrl, scope };
}
