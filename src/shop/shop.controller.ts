import { Controller, Get, Header, Req } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { AuthService } from '../auth/auth.service';
import { SessionRequest, sessionTokenOf } from '../auth/session.guard';
import { AppConfig } from '../config/app-config';

@ApiTags('shop')
@Controller('shop')
export class ShopController {
  constructor(
    private readonly appConfig: AppConfig,
    private readonly auth: AuthService,
  ) {}

  /**
   * What the H5 shop page needs to boot: which JS-SDK to load and who is logged in (null: not yet —
   * the page then goes through /auth/wechat/authorize, without a failing request first).
   */
  @Get('config')
  @Header('Cache-Control', 'no-store')
  @ApiOperation({ summary: 'Boot data for the H5 shop page: mode, JS-SDK URL, order lifetime, current shopper or null' })
  async config(@Req() req: SessionRequest) {
    const session = await this.auth.resolveSession(sessionTokenOf(req));
    const profile = session ? await this.auth.findUserById(session.userId) : undefined;
    const sandbox = this.appConfig.wechatMode === 'sandbox';
    return {
      mode: this.appConfig.wechatMode,
      // The sandbox's stand-in for the WeChat browser; in live mode WeChat's own JS-SDK, loaded the standard way.
      jweixin: sandbox ? '/sandbox/jweixin.js' : 'https://res.wx.qq.com/open/js/jweixin-1.6.0.js',
      orderCloseAfterMs: this.appConfig.orders.closeAfterMs,
      user: profile && session ? { kind: session.kind, openid: session.openid, nickname: profile.nickname, avatarUrl: profile.avatarUrl, scope: profile.scope } : null,
    };
  }
}
