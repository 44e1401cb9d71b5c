import { Body, Controller, Get, Param, Post, Query, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { AdminOnly, Audit } from '../admin/admin.decorators';
import { CreateRefundDto, RefundDto } from './dto/refund.dto';
import { RefundService } from './refund.service';

@ApiTags('admin')
@AdminOnly()
@Controller('admin/refunds')
export class RefundController {
  constructor(private readonly refunds: RefundService) {}

  @Post()
  @Audit('refund.create', (req, result) => (result as RefundDto | undefined)?.outRefundNo ?? req.body?.outRefundNo ?? req.body?.outTradeNo)
  @ApiOperation({ summary: 'Refund part or all of a paid order (idempotent per outRefundNo)' })
  @ApiOkResponse({ type: RefundDto })
  async create(@Body() dto: CreateRefundDto, @Res({ passthrough: true }) res: Response): Promise<RefundDto> {
    const { refund, replayed } = await this.refunds.create(dto);
    res.status(replayed ? 200 : 201);
    return refund;
  }

  @Get()
  @ApiOperation({ summary: 'Recent refunds, optionally of one order' })
  list(@Query('outTradeNo') outTradeNo?: string, @Query('status') status?: string) {
    return this.refunds.list({ outTradeNo, status });
  }

  @Get(':outRefundNo')
  @ApiOperation({ summary: 'One refund; a PROCESSING one is checked at WeChat first' })
  @ApiOkResponse({ type: RefundDto })
  get(@Param('outRefundNo') outRefundNo: string): Promise<RefundDto> {
    return this.refunds.get(outRefundNo);
  }
}
