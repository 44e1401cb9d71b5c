import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { JssdkConfigQueryDto, WxConfigDto } from './dto/jssdk-config.dto';
import { JssdkService } from './jssdk.service';

@ApiTags('jssdk')
@Controller('jssdk')
export class JssdkController {
  constructor(private readonly jssdk: JssdkService) {}

  @Get('config')
  @ApiOperation({ summary: 'Signed parameters for wx.config on the given page' })
  @ApiOkResponse({ type: WxConfigDto })
  config(@Query() query: JssdkConfigQueryDto): Promise<WxConfigDto> {
    return this.jssdk.configFor(query.url);
  }
}
