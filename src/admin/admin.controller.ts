import { Controller, DefaultValuePipe, Get, ParseIntPipe, Query } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { BadRequestError } from '../common/errors/app-error';
import { AdminAuditService } from './admin-audit.service';
import { AdminOnly } from './admin.decorators';

@ApiTags('admin')
@AdminOnly()
@Controller('admin/audit')
export class AdminController {
  constructor(private readonly audit: AdminAuditService) {}

  @Get()
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
