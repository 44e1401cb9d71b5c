import { Body, Controller, Get, HttpCode, Param, Post, Query, Req, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiExcludeController, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { AVATAR_SIZES, avatarPng } from './avatar-png';
import { cspSource, widenCsp } from './pages/csp';
import { escapeHtml, page } from './pages/layout';
import { sandboxPrefixOf } from './root-alias';
import { publicKeyOf, verifyBase64Signature } from './sandbox-crypto';
import { SandboxControlTokenGuard } from './sandbox-control-token.guard';
import { SandboxHttp } from './sandbox-http';
import { SandboxMpService } from './sandbox-mp.service';
import { SandboxMpError } from './sandbox-errors';
import { PAY_PROBLEM_STATUS, SandboxPayService } from './sandbox-pay.service';
import { SandboxSettings } from './sandbox.settings';
import { sandboxApiV2Key } from './keystore';
import { sandboxInvokeSignType, sandboxV2PaySignProblem } from './sandbox-v2-wire';

type QueryParams = Record<string, string | undefined>;

const USER_COOKIE = 'sandbox_openid';

/**
 * The official account as a merchant backend and a WeChat user see it: the OAuth authorize page on
 * /sandbox/connect/oauth2/authorize, and sns/* and cgi-bin/* on /sandbox.
 */
@ApiExcludeController()
@Controller('sandbox')
export class SandboxMpController {
  constructor(
    private readonly http: SandboxHttp,
    private readonly mp: SandboxMpService,
  ) {}

  /**
   * Plays the WeChat user: `?sandbox_openid=…` (tests) consents at once; otherwise a page lets the
   * tester pick or create a user. The #wechat_redirect fragment never reaches a server.
   */
  @Get('connect/oauth2/authorize')
  authorize(@Query() query: QueryParams, @Req() req: Request, @Res() res: Response) {
    const faulted = this.http.fault('connect/oauth2/authorize', res, (kind) =>
      kind === '429'
        ? this.errorPage(res, 45011, 'api minute-quota reach limit mustslower retry next minute', 429)
        : this.errorPage(res, -1, 'system error', 500),
    );
    if (faulted) return;
    const problem = this.mp.authorizeProblem(query);
    if (problem) return this.errorPage(res, problem.errcode, problem.errmsg);
    if (query.sandbox_openid) {
      try {
        const user = this.mp.upsertUser({ openid: query.sandbox_openid, nickname: query.sandbox_nickname });
        return this.consent(req, res, query, user.openid);
      } catch (error) {
        if (error instanceof SandboxMpError) return this.errorPage(res, error.errcode, error.errmsg);
        throw error;
      }
    }
    const remembered = (req as Request & { cookies?: Record<string, string> }).cookies?.[USER_COOKIE];
    const users = this.mp.listUsers();
    const hidden = ['appid', 'redirect_uri', 'response_type', 'scope', 'state']
      .map((k) => `<input type="hidden" name="${k}" value="${escapeHtml(query[k] ?? '')}">`)
      .join('');
    const scopeText = query.scope === 'snsapi_userinfo' ? '获取你的昵称、头像' : '获取你的身份标识（静默授权）';
    const list = users.length
      ? users
          .map(
            (u) => `<form method="post" class="user" data-openid="${escapeHtml(u.openid)}">${hidden}
<input type="hidden" name="openid" value="${escapeHtml(u.openid)}"><input type="hidden" name="action" value="allow">
<img src="${escapeHtml(u.avatarUrl)}" alt=""><div><div>${escapeHtml(u.nickname)}${u.openid === remembered ? ' <span class="muted">(上次使用)</span>' : ''}</div>
<div class="muted"><code>${escapeHtml(u.openid)}</code></div></div><button class="btn btn-primary" type="submit">以此身份允许</button></form>`,
          )
          .join('\n')
      : '<p class="muted">还没有测试用户，请在下方创建一个。</p>';
    const host = (() => {
      try {
        return new URL(query.redirect_uri!).host;
      } catch {
        return '';
      }
    })();
    // The forms post here and are redirected to the merchant's redirect_uri (its domain was checked above):
    // form-action must admit that origin too, and nothing else.
    const redirectOrigin = cspSource(query.redirect_uri ?? '');
    widenCsp(res, { 'form-action': ["'self'", ...(redirectOrigin ? [redirectOrigin] : [])] });
    res.type('html').send(
      page(
        '微信授权',
        `<div class="bar">微信授权<span class="badge">沙箱</span></div>
<div class="card"><div><b>${escapeHtml(host)}</b> 申请${scopeText}</div>
<p class="muted">沙箱模拟的微信用户：选择一个测试用户，或创建新用户。</p>${list}</div>
<div class="card"><form method="post" id="create-user">${hidden}<input type="hidden" name="action" value="allow">
<label>openid（留空自动生成）<input name="openid" placeholder="o_test_user_1"></label>
<label>昵称<input name="nickname" placeholder="沙箱测试员"></label>
<button class="btn btn-primary" type="submit">创建并允许</button></form>
<form method="post">${hidden}<input type="hidden" name="action" value="deny"><button class="btn btn-default" type="submit">拒绝</button></form></div>`,
      ),
    );
  }

  @Post('connect/oauth2/authorize')
  authorizeSubmit(@Body() body: QueryParams, @Req() req: Request, @Res() res: Response) {
    const problem = this.mp.authorizeProblem(body);
    if (problem) return this.errorPage(res, problem.errcode, problem.errmsg);
    if (body.action === 'deny') {
      // A refusal returns to the site with the state only.
      return res.redirect(302, this.appendQuery(body.redirect_uri!, { state: body.state ?? '' }));
    }
    try {
      const user = this.mp.upsertUser({ openid: body.openid, nickname: body.nickname });
      return this.consent(req, res, body, user.openid);
    } catch (error) {
      if (error instanceof SandboxMpError) return this.errorPage(res, error.errcode, error.errmsg);
      throw error;
    }
  }

  private consent(req: Request, res: Response, query: QueryParams, openid: string) {
    const code = this.mp.issueCode(openid, query.scope!, query.appid);
    // The page is under /sandbox, or at the root in the standalone sandbox (root alias).
    res.cookie(USER_COOKIE, openid, { httpOnly: false, sameSite: 'lax', path: sandboxPrefixOf(req) || '/connect/oauth2' });
    return res.redirect(302, this.appendQuery(query.redirect_uri!, { code, state: query.state ?? '' }));
  }

  private appendQuery(url: string, params: Record<string, string>): string {
    const qs = Object.entries(params)
      .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
      .join('&');
    const hash = url.indexOf('#');
    const base = hash < 0 ? url : url.slice(0, hash);
    return `${base}${base.includes('?') ? '&' : '?'}${qs}`;
  }

  private errorPage(res: Response, errcode: number, errmsg: string, status = 400) {
    res
      .status(status)
      .type('html')
      .send(page('微信授权错误', `<div class="bar">微信授权<span class="badge">沙箱</span></div><div class="card error" data-errcode="${errcode}">Oops! Something went wrong:(<br>${escapeHtml(errmsg)}<br>errcode: ${errcode}</div>`));
  }

  @Get('sns/oauth2/access_token')
  accessToken(@Query() query: QueryParams, @Res() res: Response) {
    return this.http.mp('sns/oauth2/access_token', res, () => this.mp.exchangeCode(query));
  }

  @Get('sns/oauth2/refresh_token')
  refreshToken(@Query() query: QueryParams, @Res() res: Response) {
    return this.http.mp('sns/oauth2/refresh_token', res, () => this.mp.refreshUserToken(query));
  }

  @Get('sns/auth')
  checkAuth(@Query() query: QueryParams, @Res() res: Response) {
    return this.http.mp('sns/auth', res, () => this.mp.checkUserToken(query));
  }

  /** The generated avatars headimgurl points at (WeChat's are on thirdwx.qlogo.cn/mmopen/…/{size}). */
  @Get('mmopen/vi_32/:id/:size')
  avatar(@Param('id') id: string, @Param('size') size: string, @Res() res: Response) {
    const pixels = AVATAR_SIZES[size];
    if (!/^[0-9a-f]{32}$/.test(id) || !pixels) {
      res.status(404).type('text/plain').send('no such avatar (…/mmopen/vi_32/{32 hex digits}/{0|46|64|96|132})');
      return;
    }
    res.status(200).type('image/png').setHeader('Cache-Control', 'public, max-age=86400');
    res.send(avatarPng(id, pixels));
  }

  @Get('sns/userinfo')
  userInfo(@Query() query: QueryParams, @Res() res: Response) {
    return this.http.mp('sns/userinfo', res, () => this.mp.userInfo(query));
  }

  /** Mini-program login (wx.login's code → openid, session_key, unionid when the user has one). */
  @Get('sns/jscode2session')
  jscode2session(@Query() query: QueryParams, @Res() res: Response) {
    return this.http.mp('sns/jscode2session', res, () => this.mp.jscode2session(query));
  }

  @Get('cgi-bin/token')
  token(@Query() query: QueryParams, @Res() res: Response) {
    return this.http.mp('cgi-bin/token', res, () => this.mp.token(query));
  }

  @Post('cgi-bin/stable_token')
  stableToken(@Body() body: Record<string, unknown>, @Res() res: Response) {
    return this.http.mp('cgi-bin/stable_token', res, () =>
      this.mp.stableToken(body as { grant_type?: string; appid?: string; secret?: string; force_refresh?: boolean }),
    );
  }

  @Get('cgi-bin/stable_token')
  stableTokenGet(@Res() res: Response) {
    return this.http.mp('cgi-bin/stable_token', res, () => {
      throw new SandboxMpError(43002, 'require POST method');
    });
  }

  @Get('cgi-bin/ticket/getticket')
  ticket(@Query() query: QueryParams, @Res() res: Response) {
    return this.http.mp('cgi-bin/ticket/getticket', res, () => this.mp.ticket(query));
  }
}

type Json = Record<string, unknown>;

/**
 * Inside the mini-program: wx.requestPayment. Takes what the mini-program passes to it
 * ({ timeStamp, nonceStr, package, signType, paySign }), checks paySign the way WeChat does — RSA
 * with the merchant's key over `<mini-program appid>\n<timeStamp>\n<nonceStr>\n<package>\n` — and that
 * the prepay was made for the mini-program's appid, then pays through the same path as
 * /sandbox/control/pay. Answers wx.requestPayment's errMsg.
 */
@ApiExcludeController()
@Controller('sandbox/miniprogram')
export class SandboxMiniprogramController {
  private readonly merchantKey;

  constructor(
    private readonly mp: SandboxMpService,
    private readonly pay: SandboxPayService,
    private readonly settings: SandboxSettings,
  ) {
    this.merchantKey = publicKeyOf(settings.keystore.merchant.publicKeyPem);
  }

  @Post('requestPayment')
  @HttpCode(200)
  requestPayment(@Body() body: Json | undefined, @Res({ passthrough: true }) res: Response) {
    const p = body ?? {};
    const fail = (status: number, reason: string) => {
      res.status(status);
      return { errMsg: `requestPayment:fail ${reason}` };
    };
    for (const field of ['timeStamp', 'nonceStr', 'package', 'signType', 'paySign']) {
      if (typeof p[field] !== 'string' || !p[field]) return fail(400, `parameter error: ${field} is required (a string)`);
    }
    const appid = this.mp.miniprogram.appid;
    const v2Problem = sandboxV2PaySignProblem(p, appid, sandboxApiV2Key(this.settings.keystore));
    if (v2Problem === 'rsa') {
      const message = Buffer.from(`${appid}\n${p.timeStamp}\n${p.nonceStr}\n${p.package}\n`, 'utf8');
      if (!verifyBase64Signature(message, String(p.paySign), this.merchantKey)) {
        return fail(400, `支付验证签名失败 (paySign does not verify over the mini-program appid ${appid})`);
      }
    } else if (v2Problem) {
      return fail(400, `${v2Problem} (mini-program appid ${appid})`);
    }
    const prepayId = /^prepay_id=(.+)$/.exec(String(p.package))?.[1];
    const tx = prepayId ? this.pay.prepayInfo(prepayId) : undefined;
    if (!prepayId || !tx) return fail(404, 'prepay_id 不存在');
    if (p.signType !== sandboxInvokeSignType(tx)) return fail(400, `signType 与下单时不一致（应为 ${sandboxInvokeSignType(tx)}）`);
    if (tx.appid !== appid) return fail(400, `prepay_id 的 appid (${tx.appid}) 与小程序 appid (${appid}) 不一致`);
    const outcome = p.result === 'cancel' || p.result === 'fail' ? p.result : 'success';
    const answer = this.pay.pay(prepayId, typeof p.openid === 'string' ? p.openid : undefined, outcome);
    if (answer.problem) return fail(PAY_PROBLEM_STATUS[answer.problem], answer.reason ?? answer.problem);
    if (answer.result === 'cancel') return { errMsg: 'requestPayment:fail cancel' };
    if (answer.result === 'fail') return fail(200, answer.reason ?? 'fail');
    return { errMsg: 'requestPayment:ok', outTradeNo: answer.transaction?.outTradeNo, transactionId: answer.transaction?.transactionId };
  }
}

/** Test controls of the sandbox's mini-program (behind SANDBOX_CONTROL_TOKEN like every control route). */
@ApiTags('sandbox control')
@ApiBearerAuth()
@UseGuards(SandboxControlTokenGuard)
@Controller('sandbox/control/miniprogram')
export class SandboxMiniprogramControlController {
  constructor(private readonly mp: SandboxMpService) {}

  @Get()
  @ApiOperation({ summary: 'The mini-program bound to the sandbox merchant (its appid; no secret)' })
  info() {
    return { appid: this.mp.miniprogram.appid };
  }

  @Post('code')
  @HttpCode(200)
  @ApiOperation({
    summary:
      'What wx.login() gives the mini-program: a code (single use, 5 minutes) for the mini-program user `openid` (created when new). `unionid`, or `officialAccountOpenid` (take that official-account test user\'s unionid), links it to an official-account user',
  })
  code(@Body() body: Json | undefined, @Res({ passthrough: true }) res: Response) {
    const b = body ?? {};
    for (const field of ['openid', 'unionid', 'officialAccountOpenid']) {
      if (b[field] !== undefined && typeof b[field] !== 'string') {
        res.status(400);
        return { statusCode: 400, error: 'Bad Request', message: `${field} must be a string` };
      }
    }
    try {
      const user = this.mp.upsertMiniprogramUser(b as { openid?: string; unionid?: string; officialAccountOpenid?: string });
      return { code: this.mp.issueMiniprogramCode(user.openid), openid: user.openid, unionid: user.unionid ?? null };
    } catch (error) {
      if (!(error instanceof SandboxMpError)) throw error;
      res.status(400);
      return { statusCode: 400, error: 'Bad Request', message: error.errmsg, errcode: error.errcode };
    }
  }
}
