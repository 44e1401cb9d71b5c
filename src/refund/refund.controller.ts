import { Body, Controller, Get, Param, Post, Query, Req, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { AdminAuditService, auditClient } from '../admin/admin-audit.service';
import { errorDetails } from '../admin/admin-audit.interceptor';
import type { AdminRequest } from '../admin/admin.guard';
import { AdminOnly, Audit } from '../admin/admin.decorators';
import { BadRequestError } from '../common/errors/app-error';
import { CreateRefundDto, RefundDto } from './dto/refund.dto';
import { RefundService } from './refund.service';

const CREATE_DESCRIPTION = [
  'The order must be paid. At most paid − refunded − in flight may be refunded, where in flight counts refunds',
  'PROCESSING and refunds ABNORMAL: WeChat holds the money of an abnormal refund until it is retried',
  '(apply-abnormal-refund) or closed, so it is not refundable again until WeChat reports it SUCCESS or CLOSED',
  '(notification, GET /admin/refunds/{outRefundNo}, or the daily bill). Over the limit: 409 REFUND_EXCEEDS_REMAINING.',
  'Repeating an outRefundNo with the same body returns the existing refund (200); with another body, 409.',
  'WeChat refusing the refund (400 INVALID_REQUEST, 403 NOT_ENOUGH, …): 422 WECHAT_REFUND_REJECTED with WeChat’s',
  'code in details.wechatCode and the refund kept as FAILED (details.outRefundNo); 429 after retries: 503.',
  'WeChat not answering (5xx after retries, network): 502 WECHAT_REFUND_OUTCOME_UNKNOWN; the refund stays',
  'PROCESSING (details.outRefundNo) and is settled by querying WeChat.',
].join(' ');

@ApiTags('admin')
@AdminOnly()
@Controller('admin/refunds')
export class RefundController {
  constructor(
    private readonly refunds: RefundService,
    private readonly audit: AdminAuditService,
  ) {}

  @Post()
  @Audit(
    'refund.create',
    (req, result, error) =>
      (result as RefundDto | undefined)?.outRefundNo ??
      (errorDetails(error)?.outRefundNo as string | undefined) ??
      req.body?.outRefundNo ??
      req.body?.outTradeNo,
    (_req, result) => {
      const refund = result as RefundDto;
      return { outTradeNo: refund.outTradeNo, amount: refund.amount, status: refund.status, source: refund.source };
    },
    (req, error) => ({
      outTradeNo: (errorDetails(error)?.outTradeNo as string | undefined) ?? shortString(req.body?.outTradeNo),
      amount: Number.isSafeInteger(req.body?.amount) ? req.body.amount : undefined,
    }),
  )
  @ApiOperation({ summary: 'Refund part or all of a paid order (idempotent per outRefundNo)', description: CREATE_DESCRIPTION })
  @ApiOkResponse({ type: RefundDto })
  async create(@Body() dto: CreateRefundDto, @Res({ passthrough: true }) res: Response, @Req() req: AdminRequest): Promise<RefundDto> {
    const { refund, replayed } = await this.refunds.create(dto);
    if (replayed) req.auditDetail = { replayed: true };
    res.status(replayed ? 200 : 201);
    return refund;
  }

  @Get()
  @ApiOperation({ summary: "Recent refunds, optionally of one order, or of one sub-merchant's orders (subMchid, service-provider mode)" })
  list(@Query('outTradeNo') outTradeNo?: string, @Query('status') status?: string, @Query('subMchid') subMchid?: unknown) {
    if (subMchid !== undefined && (typeof subMchid !== 'string' || !/^\d{8,12}$/.test(subMchid))) {
      throw new BadRequestError('INVALID_SUB_MCHID', 'subMchid must be the numeric mchid of a sub-merchant (8 to 12 digits)');
    }
    return this.refunds.list({ outTradeNo, status, subMchid });
  }

  @Get(':outRefundNo')
  @ApiOperation({
    summary: 'One refund; a PROCESSING or ABNORMAL one is checked at WeChat first',
    description: 'When that check changes the refund’s status, the change is written to the admin audit (action refund.query).',
  })
  @ApiOkResponse({ type: RefundDto })
  async get(@Param('outRefundNo') outRefundNo: string, @Req() req: AdminRequest): Promise<RefundDto> {
    const { refund, previousStatus } = await this.refunds.get(outRefundNo);
    if (previousStatus) {
      await this.audit.record({
        tokenFingerprint: req.adminFingerprint ?? 'unknown',
        action: 'refund.query',
        target: outRefundNo,
        outcome: 'ok',
        detail: { from: previousStatus, to: refund.status, outTradeNo: refund.outTradeNo, amount: refund.amount },
        ...auditClient(req),
      });
    }
    return refund;
  }
}

/** A client-sent string fit for an audit row (an order number), or undefined. */
function shortString(value: unknown): string | undefined {
  return typeof value === 'string' ? value.slice(0, 64) : undefined;
}
