import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { AdminOnly } from '../admin/admin.decorators';
import { BadRequestError } from '../common/errors/app-error';
import { AdminOrdersQueryDto } from './dto/admin-orders.dto';
import { OrderService } from './order.service';

/** A Beijing calendar date as the UTC instant its day starts. */
export function beijingDayStart(date: string): Date {
  const d = new Date(`${date}T00:00:00+08:00`);
  if (Number.isNaN(d.getTime()) || d.toISOString().length !== 24) throw new BadRequestError('INVALID_DATE', `${date} is not a calendar date`);
  const back = new Date(d.getTime() + 8 * 3600_000).toISOString().slice(0, 10);
  if (back !== date) throw new BadRequestError('INVALID_DATE', `${date} is not a calendar date`);
  return d;
}

@ApiTags('admin')
@AdminOnly()
@Controller('admin/orders')
export class AdminOrdersController {
  constructor(private readonly orders: OrderService) {}

  @Get()
  @ApiOperation({ summary: 'Orders, filtered by status, Beijing date range, openid and sub-merchant (subMchid), newest first' })
  list(@Query() q: AdminOrdersQueryDto) {
    const from = q.from ? beijingDayStart(q.from) : undefined;
    const to = q.to ? new Date(beijingDayStart(q.to).getTime() + 86_400_000) : undefined;
    if (from && to && from >= to) throw new BadRequestError('INVALID_RANGE', 'from must not be after to');
    return this.orders.adminList({ status: q.status, from, to, openid: q.openid, subMchid: q.subMchid, page: q.page ?? 1, pageSize: q.pageSize ?? 50 });
  }

  @Get(':outTradeNo')
  @ApiOperation({ summary: 'One order with its timeline (created, prepay, notifications, queries, refunds, …)' })
  get(@Param('outTradeNo') outTradeNo: string) {
    return this.orders.adminGet(outTradeNo);
  }
}
