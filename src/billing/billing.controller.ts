import { Controller, Get, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import { ApiOperation, ApiProduces, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { pipeline } from 'node:stream/promises';
import { AdminOnly, Audit } from '../admin/admin.decorators';
import { BadRequestError } from '../common/errors/app-error';
import { BillingService, DownloadedBill } from './billing.service';
import { ReconciliationResult, ReconciliationService, reconciliationAuditDetail } from './reconciliation.service';

async function send(res: Response, bill: DownloadedBill): Promise<void> {
  res.status(200);
  res.setHeader('Content-Type', 'text/csv; charset=utf-8');
  res.setHeader('Content-Disposition', `attachment; filename="${bill.filename}"`);
  await pipeline(bill.stream, res);
}

@ApiTags('admin')
@AdminOnly()
@Controller('admin/bills')
export class BillsController {
  constructor(private readonly billing: BillingService) {}

  @Get('trade')
  @Audit('bill.trade', (req) => `${req.query.date}/${req.query.type ?? 'ALL'}`)
  @ApiOperation({ summary: "Download the day's trade bill from WeChat (hash checked, gunzipped) as CSV" })
  @ApiQuery({ name: 'date', example: '2026-11-23' })
  @ApiQuery({ name: 'type', enum: ['ALL', 'SUCCESS', 'REFUND'], required: false })
  @ApiProduces('text/csv')
  async trade(@Query('date') date: unknown, @Query('type') type: unknown, @Res() res: Response) {
    await send(res, await this.billing.tradeBill(date, type));
  }

  @Get('fundflow')
  @Audit('bill.fundflow', (req) => `${req.query.date}/${req.query.account ?? 'BASIC'}`)
  @ApiOperation({ summary: "Download the day's fund-flow bill as CSV" })
  @ApiQuery({ name: 'date', example: '2026-11-23' })
  @ApiQuery({ name: 'account', enum: ['BASIC', 'OPERATION', 'FEES'], required: false })
  @ApiProduces('text/csv')
  async fundflow(@Query('date') date: unknown, @Query('account') account: unknown, @Res() res: Response) {
    await send(res, await this.billing.fundFlowBill(date, account));
  }
}

@ApiTags('admin')
@AdminOnly()
@Controller('admin/reconciliations')
export class ReconciliationsController {
  constructor(private readonly reconciliations: ReconciliationService) {}

  @Post()
  @HttpCode(200)
  @Audit('reconciliation.run', (req) => String(req.query.date ?? ''), (_req, result) => reconciliationAuditDetail(result as ReconciliationResult))
  @ApiOperation({
    summary: "Reconcile a day: download WeChat's ALL trade bill and compare it with our orders and refunds",
    description: [
      'Differences: only_in_wechat (paid there, unknown or unpaid here: applied as a payment when the order exists NOTPAY/CLOSED),',
      'only_here, amount_mismatch, status_mismatch (ANOMALY here but paid there; REVOKED or another state there but paid here;',
      'another transaction id), refund_only_in_wechat, refund_only_here, refund_amount_mismatch, refund_status_mismatch',
      '(refund PROCESSING/ABNORMAL/FAILED here, SUCCESS in the bill: the result is applied as a notification would be;',
      'CLOSED here is only reported). Payments and refund results are applied only after the whole file passed its hash check.',
      'The applied numbers are listed in the result and in the audit row. One run per day at a time, shared with the daily job',
      '(on every instance): a second one answers 409 RECONCILIATION_RUNNING.',
    ].join(' '),
  })
  @ApiQuery({ name: 'date', example: '2026-11-23' })
  run(@Query('date') date: unknown) {
    return this.reconciliations.run(date);
  }

  @Get()
  @ApiOperation({ summary: 'Recent reconciliations, newest bill date first (summaries; ?limit=1-100, default 31)' })
  @ApiQuery({ name: 'limit', required: false, example: 31 })
  list(@Query('limit') limit: string | undefined) {
    const n = limit === undefined ? 31 : Number(limit);
    if (!Number.isInteger(n) || n < 1 || n > 100) throw new BadRequestError('INVALID_LIMIT', 'limit must be an integer from 1 to 100');
    return this.reconciliations.list(n);
  }

  @Get(':date')
  @ApiOperation({ summary: 'The stored result: summary and every difference (?format=csv for the differences as CSV)' })
  @ApiQuery({ name: 'format', enum: ['json', 'csv'], required: false })
  async get(@Param('date') date: string, @Query('format') format: string | undefined, @Res({ passthrough: true }) res: Response) {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) throw new BadRequestError('INVALID_DATE', 'date must be YYYY-MM-DD');
    const result = await this.reconciliations.get(date);
    if (format === 'csv') {
      res.setHeader('Content-Type', 'text/csv; charset=utf-8');
      res.setHeader('Content-Disposition', `attachment; filename="reconciliation-${date}.csv"`);
      return ReconciliationService.toCsv(result);
    }
    if (format !== undefined && format !== 'json') throw new BadRequestError('INVALID_FORMAT', 'format must be json or csv');
    return result;
  }

  @Get(':date/differences.csv')
  @ApiProduces('text/csv')
  async csv(@Param('date') date: string, @Res({ passthrough: true }) res: Response) {
    return this.get(date, 'csv', res);
  }
}
