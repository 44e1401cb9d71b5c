import { Controller, DefaultValuePipe, Get, ParseIntPipe, Query } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { BadRequestError } from '../common/errors/app-error';
import { AppConfig } from '../config/app-config';
import { AdminAuditService } from './admin-audit.service';
import { AdminOnly } from './admin.decorators';

@ApiTags('admin')
@AdminOnly()
@Controller('admin')
export class AdminController {
  constructor(
    private readonly audit: AdminAuditService,
    private readonly config: AppConfig,
  ) {}

  /**
   * What kind of deployment the console talks to, so that it shows only what exists (no sub-merchant
   * selector in direct mode, instead of asking for /admin/sub-merchants and getting a 404). No secrets.
   */
  @Get('deployment')
  @ApiOperation({ summary: 'The deployment: sandbox or live, the WeChat Pay API version, direct merchant or service provider' })
  deployment() {
    const w = this.config.wechat;
    return {
      wechatMode: this.config.wechatMode,
      apiVersion: w.apiVersion,
      merchantType: w.partner ? 'partner' : 'direct',
      ...(w.partner ? { defaultSubMchid: w.partner.subMchid } : {}),
    };
  }

  @Get('audit')
  @ApiOperation({ summary: 'Recent admin actions (newest first)' })
  async list(
    @Query('limit', new DefaultValuePipe(100), ParseIntPipe) limit: number,
    @Query('action') action?: string,
    @Query('target') target?: string,
  ) {
    if (limit < 1 || limit > 1000) throw new BadRequestError('INVALID_LIMIT', 'limit must be between 1 and 1000');
    return { items: await this.audit.list({ limit, action, target }) };
  }
}
