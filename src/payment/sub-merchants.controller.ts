import { Body, Controller, Get, Param, Patch, Post, Req } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { AdminRequest } from '../admin/admin.guard';
import { AdminOnly, Audit } from '../admin/admin.decorators';
import { CreateSubMerchantDto, SubMerchantDto, UpdateSubMerchantDto } from './dto/sub-merchant.dto';
import { SubMerchantsService } from './sub-merchants.service';

/** Service-provider mode: the sub-merchants (404 PARTNER_MODE_OFF in direct mode). Secrets are never answered nor audited. */
@ApiTags('admin')
@AdminOnly()
@Controller('admin/sub-merchants')
export class AdminSubMerchantsController {
  constructor(private readonly subMerchants: SubMerchantsService) {}

  @Get()
  @ApiOkResponse({ type: [SubMerchantDto] })
  list(): Promise<SubMerchantDto[]> {
    return this.subMerchants.list();
  }

  @Post()
  @Audit(
    'sub_merchant.create',
    (req) => String((req.body as { subMchid?: unknown } | undefined)?.subMchid ?? ''),
    (_req, result) => {
      const s = result as SubMerchantDto;
      return { after: { name: s.name, subAppid: s.subAppid, hasSubAppSecret: s.hasSubAppSecret, enabled: s.enabled } };
    },
  )
  @ApiCreatedResponse({ type: SubMerchantDto })
  create(@Body() dto: CreateSubMerchantDto): Promise<SubMerchantDto> {
    return this.subMerchants.create(dto);
  }

  @Patch(':subMchid')
  @Audit('sub_merchant.update', (req) => String(req.params.subMchid))
  @ApiOperation({ summary: 'Rename, enable/disable, or set/remove the own official account of a sub-merchant' })
  @ApiOkResponse({ type: SubMerchantDto })
  async update(@Param('subMchid') subMchid: string, @Body() dto: UpdateSubMerchantDto, @Req() req: AdminRequest): Promise<SubMerchantDto> {
    const { before, after } = await this.subMerchants.update(subMchid, dto);
    const fields = (['name', 'enabled', 'subAppid', 'hasSubAppSecret'] as const).filter((f) => before[f] !== after[f] || (f === 'hasSubAppSecret' && dto.subAppSecret !== undefined));
    req.auditDetail = {
      before: Object.fromEntries(fields.map((f) => [f, before[f]])),
      after: Object.fromEntries(fields.map((f) => [f, after[f]])),
      ...(dto.subAppSecret !== undefined ? { subAppSecret: 'replaced' } : {}),
    };
    return after;
  }
}
