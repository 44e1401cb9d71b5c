import { Controller, Get, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import { ApiOperation, ApiProduces, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { pipeline } from 'node:stream/promises';
import { AdminOnly, Audit } from '../admin/admin.decorators';
import { BadRequestError } from '../common/errors/app-error';
import { PartnerModeOffError, SubMerchantsService } from '../payment/sub-merchants.service';
import { BillingService, DownloadedBill } from './billing.service';
import { ReconciliationResult, ReconciliationService, reconciliationAuditDetail } from './reconciliation.service';

/** The audit target of a per-day call: the date, and in service-provider mode the sub-merchant named. */
function dayTarget(req: { query: Record<string, unknown> }, suffix?: string): string {
  const sub = typeof req.query.subMchid === 'string' ? `/${req.query.subMchid}` : '';
  return `${String(req.query.date ?? '')}${suffix ? `/${suffix}` : ''}${sub}`;
}

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
  constructor(
    private readonly billing: BillingService,
    private readonly reconciliations: ReconciliationService,
    private readonly subMerchants: SubMerchantsService,
  ) {}

  @Get('trade')
  @Audit('bill.trade', (req) => dayTarget(req, String(req.query.type ?? 'ALL')))
  @ApiOperation({
    summary: "Download the day's trade bill from WeChat (hash checked, gunzipped) as CSV",
    description: "Service-provider mode: ?subMchid= for one sub-merchant's bill (sub_mchid); without it, the provider's bill of every sub-merchant. Direct mode: subMchid is a 400.",
  })
  @ApiQuery({ name: 'date', example: '2026-11-23' })
  @ApiQuery({ name: 'type', enum: ['ALL', 'SUCCESS', 'REFUND'], required: false })
  @ApiQuery({ name: 'subMchid', required: false, example: '1900000201' })
  @ApiProduces('text/csv')
  async trade(@Query('date') date: unknown, @Query('type') type: unknown, @Query('subMchid') subMchid: unknown, @Res() res: Response) {
    const merchant = subMchid === undefined ? undefined : { subMchid: this.reconciliations.subMchidOf(subMchid) };
    await send(res, await this.billing.tradeBill(date, type, merchant));
  }

  @Get('sub-merchant-fundflow')
  @Audit('bill.sub_merchant_fundflow', (req) => dayTarget(req, String(req.query.account ?? 'BASIC')))
  @ApiOperation({
    summary: "Service-provider mode: download a sub-merchant's fund-flow bill of the day as CSV",
    description:
      'GET /v3/bill/sub-merchant-fundflowbill (AEAD_AES_256_GCM, GZIP): every part downloaded, its encrypt_key opened with the merchant private key (RSA-OAEP), the part decrypted, gunzipped and its SHA-1 checked; a tampered part is a 502 and nothing is sent. ?subMchid= (default WECHATPAY_SUB_MCHID; it must be registered). Direct mode: 404 PARTNER_MODE_OFF.',
  })
  @ApiQuery({ name: 'date', example: '2026-11-23' })
  @ApiQuery({ name: 'subMchid', required: false, example: '1900000201' })
  @ApiQuery({ name: 'account', enum: ['BASIC', 'OPERATION', 'FEES'], required: false })
  @ApiProduces('text/csv')
  async subMerchantFundflow(@Query('date') date: unknown, @Query('subMchid') subMchid: unknown, @Query('account') account: unknown, @Res() res: Response) {
    if (!this.subMerchants.partnerMode) throw new PartnerModeOffError('GET /admin/bills/sub-merchant-fundflow');
    const sub = this.reconciliations.subMchidOf(subMchid);
    if (!(await this.subMerchants.isRegistered(sub))) {
      throw new BadRequestError('UNKNOWN_SUB_MERCHANT', `sub-merchant ${sub} is not registered (GET /admin/sub-merchants lists them)`, { subMchid: sub });
    }
    await send(res, await this.billing.subMerchantFundFlowBill(date, account, { subMchid: sub }));
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
  @Audit('reconciliation.run', (req) => dayTarget(req), (_req, result) => reconciliationAuditDetail(result as ReconciliationResult))
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
      'Service-provider mode: per sub-merchant (?subMchid=, default WECHATPAY_SUB_MCHID; it must be registered): its trade bill',
      '(sub_mchid) against its orders and refunds only, under its own lease; direct mode: subMchid is a 400.',
    ].join(' '),
  })
  @ApiQuery({ name: 'date', example: '2026-11-23' })
  @ApiQuery({ name: 'subMchid', required: false, example: '1900000201' })
  run(@Query('date') date: unknown, @Query('subMchid') subMchid: unknown) {
    return this.reconciliations.run(date, subMchid);
  }

  @Get()
  @ApiOperation({ summary: "Recent reconciliations, newest bill date first (summaries; ?limit=1-100, default 31; service-provider mode: every sub-merchant's, or ?subMchid='s)" })
  @ApiQuery({ name: 'limit', required: false, example: 31 })
  @ApiQuery({ name: 'subMchid', required: false, example: '1900000201' })
  list(@Query('limit') limit: string | undefined, @Query('subMchid') subMchid: unknown) {
    const n = limit === undefined ? 31 : Number(limit);
    if (!Number.isInteger(n) || n < 1 || n > 100) throw new BadRequestError('INVALID_LIMIT', 'limit must be an integer from 1 to 100');
    // Direct mode: direct mode's rows only (''); a provider without subMchid: every sub-merchant's.
    const sub = this.reconciliations.subMchidOf(subMchid);
    return this.reconciliations.list(n, subMchid === undefined && sub !== '' ? undefined : sub);
  }

  @Get(':date')
  @ApiOperation({ summary: 'The stored result: summary and every difference (?format=csv for the differences as CSV; service-provider mode: ?subMchid=, default WECHATPAY_SUB_MCHID)' })
  @ApiQuery({ name: 'format', enum: ['json', 'csv'], required: false })
  @ApiQuery({ name: 'subMchid', required: false, example: '1900000201' })
  async get(@Param('date') date: string, @Query('format') format: string | undefined, @Query('subMchid') subMchid: unknown, @Res({ passthrough: true }) res: Response) {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) throw new BadRequestError('INVALID_DATE', 'date must be YYYY-MM-DD');
    const sub = this.reconciliations.subMchidOf(subMchid);
    const result = await this.reconciliations.get(date, sub);
    if (format === 'csv') {
      res.setHeader('Content-Type', 'text/csv; charset=utf-8');
      res.setHeader('Content-Disposition', `attachment; filename="reconciliation-${date}${sub ? `-${sub}` : ''}.csv"`);
      return ReconciliationService.toCsv(result);
    }
    if (format !== undefined && format !== 'json') throw new BadRequestError('INVALID_FORMAT', 'format must be json or csv');
    return result;
  }

  @Get(':date/differences.csv')
  @ApiProduces('text/csv')
  @ApiQuery({ name: 'subMchid', required: false, example: '1900000201' })
  async csv(@Param('date') date: string, @Query('subMchid') subMchid: unknown, @Res({ passthrough: true }) res: Response) {
    return this.get(date, 'csv', subMchid, res);
  }
}
