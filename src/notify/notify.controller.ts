import { Controller, DefaultValuePipe, Get, ParseIntPipe, Post, Query, Req, Res } from '@nestjs/common';
import { ApiExcludeEndpoint, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { AdminOnly } from '../admin/admin.decorators';
import { AppConfig } from '../config/app-config';
import { BadRequestError } from '../common/errors/app-error';
import { readNotificationBody, v2Answer } from './notify-fast-path';
import { NotifyAnswer, NotifyService } from './notify.service';

type RawRequest = Request & { rawBody?: Buffer };

/**
 * The raw bytes of the notification. NotifyFastPath reads them before Express for both routes (any
 * Content-Type); should it not be installed, a body no parser consumed is read here. A body an Express
 * parser consumed without keeping it arrives as undefined (answered 400 as empty).
 */
function rawBody(req: RawRequest, res: Response, timeoutMs: number, shape: 'json' | 'v2-xml' = 'json'): Promise<Buffer | undefined> {
  if (req.rawBody || req.readableEnded || req.complete) return Promise.resolve(req.rawBody);
  return new Promise((resolve) => {
    res.once('finish', () => resolve(undefined)); // refused as too large
    readNotificationBody(req, res, resolve, timeoutMs, shape);
  });
}

function answer(res: Response, result: NotifyAnswer): void {
  if (result.status === 204) {
    res.status(204).end();
    return;
  }
  if (result.status === 429) res.setHeader('Retry-After', String(result.retryAfterS));
  // WeChat's own failure shape, so its retry machinery (and people reading its logs) understand it.
  res.status(result.status).json({ code: result.code, message: result.message });
}

/** APIv2's answer: XML, SUCCESS (HTTP 200) only once applied, FAIL with the reason otherwise. */
function answerV2(res: Response, result: NotifyAnswer): void {
  const answer = v2Answer(result);
  res.status(answer.status).set(answer.headers).send(answer.body);
}

/** notify_url endpoints. No login: WeChat calls them; the signature is the authentication. */
@ApiTags('notify')
@Controller('notify/wechatpay')
export class NotifyController {
  constructor(
    private readonly notify: NotifyService,
    private readonly config: AppConfig,
  ) {}

  @Post('transaction')
  @ApiExcludeEndpoint()
  async transaction(@Req() req: RawRequest, @Res() res: Response) {
    const body = await rawBody(req, res, this.config.orders.notifyBodyTimeoutMs);
    if (!res.headersSent) answer(res, await this.notify.transaction(req.headers, body, req.ip));
  }

  /** APIv2: XML in, and WeChat's XML answer out (SUCCESS only after the commit; FAIL makes WeChat retry). */
  @Post('v2/transaction')
  @ApiExcludeEndpoint()
  async transactionV2(@Req() req: RawRequest, @Res() res: Response) {
    const body = await rawBody(req, res, this.config.orders.notifyBodyTimeoutMs, 'v2-xml');
    if (res.headersSent) return;
    answerV2(res, await this.notify.transactionV2(body, req.ip));
  }

  /** APIv2 refund results (req_info): XML in, WeChat's XML answer out, SUCCESS only after the commit. */
  @Post('v2/refund')
  @ApiExcludeEndpoint()
  async refundV2(@Req() req: RawRequest, @Res() res: Response) {
    const body = await rawBody(req, res, this.config.orders.notifyBodyTimeoutMs, 'v2-xml');
    if (!res.headersSent) answerV2(res, await this.notify.refundV2(body, req.ip));
  }

  @Post('refund')
  @ApiExcludeEndpoint()
  async refund(@Req() req: RawRequest, @Res() res: Response) {
    const body = await rawBody(req, res, this.config.orders.notifyBodyTimeoutMs);
    if (!res.headersSent) answer(res, await this.notify.refund(req.headers, body, req.ip));
  }
}

@ApiTags('admin')
@AdminOnly()
@Controller('admin/notifications')
export class AdminNotificationsController {
  constructor(private readonly notify: NotifyService) {}

  @Get()
  @ApiOperation({ summary: 'Notification health: recent notifications, outcomes and redeliveries in the last 24 h' })
  health(@Query('limit', new DefaultValuePipe(50), ParseIntPipe) limit: number) {
    if (limit < 1 || limit > 500) throw new BadRequestError('INVALID_LIMIT', 'limit must be between 1 and 500');
    return this.notify.health(limit);
  }
}
