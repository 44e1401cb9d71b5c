import { Controller, Get, Header, Query, Req, Res } from '@nestjs/common';
import type { Response } from 'express';
import { toString as qrSvg } from 'qrcode';
import { BadRequestError } from '../common/errors/app-error';
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

  /**
   * Native pay's code_url as a QR code (SVG, drawn by the qrcode library), for the shop's desktop
   * checkout. Only WeChat Pay code URLs are drawn: this is not a QR service for anything else.
   */
  @Get('qr.svg')
  @ApiOperation({ summary: 'A Native pay code_url (weixin://wxpay/bizpayurl?pr=…) as a QR code (SVG)' })
  async qr(@Query('code_url') codeUrl: string | undefined, @Res() res: Response): Promise<void> {
    if (typeof codeUrl !== 'string' || !/^weixin:\/\/wxpay\/bizpayurl\?pr=[0-9A-Za-z]{1,64}$/.test(codeUrl)) {
      throw new BadRequestError('INVALID_CODE_URL', 'code_url must be a WeChat Pay code_url (weixin://wxpay/bizpayurl?pr=…)');
    }
    const svg = await qrSvg(codeUrl, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
    res.setHeader('Cache-Control', 'private, max-age=300');
    res.type('image/svg+xml').send(svg);
  }
}
