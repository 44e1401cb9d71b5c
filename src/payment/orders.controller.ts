import { Body, Controller, Get, Headers, HttpCode, Param, Post, Query, Req, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiCookieAuth, ApiHeader, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { CurrentUser } from '../auth/current-user.decorator';
import { SESSION_COOKIE, SessionGuard } from '../auth/session.guard';
import type { SessionUser } from '../auth/session-user';
import { CreateOrderDto, InvokeParamsDto, ListQueryDto, OrderDto, PayDto } from './dto/order.dto';
import { OrderService } from './order.service';
import { ShopperLimits } from './shopper-limits';

@ApiTags('orders')
@ApiCookieAuth(SESSION_COOKIE)
@ApiBearerAuth()
@UseGuards(SessionGuard)
@Controller('orders')
export class OrdersController {
  constructor(
    private readonly orders: OrderService,
    private readonly limits: ShopperLimits,
  ) {}

  @Post()
  @ApiOperation({ summary: 'Create an order from catalog items (price from the server, stock reserved)' })
  @ApiHeader({ name: 'Idempotency-Key', required: false, description: 'Same key + same shopper → the same order, never a second one' })
  @ApiOkResponse({ type: OrderDto })
  async create(
    @CurrentUser() user: SessionUser,
    @Body() dto: CreateOrderDto,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<OrderDto> {
    const { order, replayed } = await this.orders.create(user, dto, idempotencyKey);
    res.status(replayed ? 200 : 201);
    if (replayed) res.setHeader('Idempotent-Replayed', 'true');
    return order;
  }

  @Get()
  @ApiOperation({ summary: 'My orders, newest first' })
  list(@CurrentUser() user: SessionUser, @Query() query: ListQueryDto) {
    this.limits.take(user, 'read');
    return this.orders.list(user, query);
  }

  @Get(':outTradeNo')
  @ApiOkResponse({ type: OrderDto })
  @ApiOperation({ summary: 'One of my orders; an unpaid one with a pending prepay is checked at WeChat first' })
  get(@CurrentUser() user: SessionUser, @Param('outTradeNo') outTradeNo: string): Promise<OrderDto> {
    this.limits.take(user, 'read');
    return this.orders.getForUser(user, outTradeNo);
  }

  @Post(':outTradeNo/pay')
  @HttpCode(200)
  @ApiOperation({
    summary:
      'Prepay through a channel (body { channel }: jsapi — the default —, h5, native, miniprogram); answers channel, the attempt\'s outTradeNo and what the front end needs (jsapi: getBrandWCPayRequest parameters; h5: h5Url; native: codeUrl; miniprogram: wx.requestPayment parameters)',
  })
  @ApiBody({ type: PayDto, required: false })
  @ApiOkResponse({ type: InvokeParamsDto })
  pay(@CurrentUser() user: SessionUser, @Param('outTradeNo') outTradeNo: string, @Req() req: Request) {
    this.limits.take(user, 'pay');
    // req.ip: the shopper's address as TRUST_PROXY allows it to be told (payer_client_ip of H5 pay).
    return this.orders.pay(user, outTradeNo, req.body as unknown, req.ip?.replace(/^::ffff:/, ''));
  }

  @Post(':outTradeNo/cancel')
  @HttpCode(200)
  @ApiOperation({ summary: 'Close an unpaid order (at WeChat too) and release its stock' })
  @ApiOkResponse({ type: OrderDto })
  cancel(@CurrentUser() user: SessionUser, @Param('outTradeNo') outTradeNo: string): Promise<OrderDto> {
    return this.orders.cancel(user, outTradeNo);
  }
}

