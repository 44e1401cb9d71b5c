import { Controller, Get, Req } from '@nestjs/common';
import type { Request } from 'express';
import { BadRequestError } from '../common/errors/app-error';
import { ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { WxConfigDto } from './dto/jssdk-config.dto';
import { JssdkService } from './jssdk.service';

@ApiTags('jssdk')
@Controller('jssdk')
export class JssdkController {
  constructor(private readonly jssdk: JssdkService) {}

  @Get('config')
  @ApiOperation({ summary: 'Signed parameters for wx.config on the given page' })
  @ApiOkResponse({ type: WxConfigDto })
  @ApiQuery({ name: 'url', type: String, required: true, description: 'Absolute URL of the page calling wx.config (the #fragment is ignored)' })
  @ApiQuery({
    name: 'subMchid',
    type: String,
    required: false,
    description: "Service-provider mode: sign for this sub-merchant's own official account (the provider's when it has none); default: the default sub-merchant's",
  })
  config(@Req() req: Request): Promise<WxConfigDto> {
    // Hand-checked rather than through the global ValidationPipe: this is the hottest public route
    // (every page view) and the pipe's class-transformer round trip costs more than the signature.
    return this.jssdk.configFor(checkedUrl(req.query), checkedSubMchid(req.query));
  }
}

function checkedSubMchid(query: Request['query']): string | undefined {
  const value = query.subMchid;
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^[0-9]{8,12}$/.test(value)) throw new BadRequestError('VALIDATION_FAILED', 'subMchid must be a sub-merchant number (8 to 12 digits)');
  return value;
}

function checkedUrl(query: Request['query']): string {
  const extra = Object.keys(query).filter((key) => key !== 'url' && key !== 'subMchid');
  if (extra.length) throw new BadRequestError('VALIDATION_FAILED', extra.map((key) => `property ${key} should not exist`).join('; '));
  const url = query.url;
  if (typeof url !== 'string' || url.length === 0) throw new BadRequestError('VALIDATION_FAILED', 'url is required: the absolute URL of the page');
  if (url.length > 2048) throw new BadRequestError('VALIDATION_FAILED', 'url must be at most 2048 characters');
  return url;
}
