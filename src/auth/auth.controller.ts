import { Controller, Get, HttpCode, Post, Query, Req, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiCookieAuth, ApiOkResponse, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { AppConfig } from '../config/app-config';
import { ACCOUNT_GONE, LoginRequiredError } from './auth.errors';
import { AuthService, UserProfile } from './auth.service';
import { CurrentUser } from './current-user.decorator';
import { AuthorizeQueryDto, CallbackQueryDto, MeQueryDto } from './dto/authorize-query.dto';
import { MeDto } from './dto/me.dto';
import { SESSION_COOKIE, SessionGuard, SessionRequest } from './session.guard';
import type { SessionUser } from './session-user';

@ApiTags('auth')
@Controller('auth')
export class AuthController {
  constructor(
    private readonly auth: AuthService,
    private readonly config: AppConfig,
  ) {}

  @Get('wechat/authorize')
  @ApiOperation({ summary: 'Start WeChat login: 302 to the WeChat authorize page' })
  @ApiResponse({ status: 302, description: 'To WeChat (open.weixin.qq.com, or the sandbox)' })
  async authorize(@Query() query: AuthorizeQueryDto, @Res() res: Response) {
    const url = await this.auth.beginAuthorize(query.redirect ?? '/', query.scope ?? 'snsapi_base');
    res.redirect(302, url);
  }

  @Get('wechat/callback')
  @ApiOperation({ summary: 'WeChat returns here with code and state; sets the session cookie and 302s to the redirect' })
  async callback(@Query() query: CallbackQueryDto, @Res() res: Response) {
    const { token, redirect } = await this.auth.completeCallback(query.code, query.state);
    res.cookie(SESSION_COOKIE, token, {
      httpOnly: true,
      sameSite: 'lax',
      secure: this.config.publicBaseUrl.startsWith('https:'),
      path: '/',
      maxAge: this.config.session.ttlMs,
    });
    res.redirect(302, redirect);
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
    return view(profile);
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

function view(profile: UserProfile): MeDto {
  return { openid: profile.openid, nickname: profile.nickname, avatarUrl: profile.avatarUrl, scope: profile.scope };
}
