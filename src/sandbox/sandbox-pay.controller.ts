import { All, Controller, Get, Param, Post, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { sandboxBaseOf } from './root-alias';
import { RawRequest, SandboxHttp } from './sandbox-http';
import { SandboxBillsService } from './sandbox-bills.service';
import { SandboxCertificatesService } from './sandbox-certificates.service';
import { SandboxPayService } from './sandbox-pay.service';
import { SandboxRefundsService } from './sandbox-refunds.service';

/** Where the client reached the sandbox: download_url points back there (see sandboxBaseOf). */
function sandboxBase(req: RawRequest): string {
  return sandboxBaseOf(req);
}

/** WeChat Pay APIv3 as seen by a merchant, under /sandbox/v3/… */
@ApiExcludeController()
@Controller('sandbox/v3')
export class SandboxPayController {
  constructor(
    private readonly http: SandboxHttp,
    private readonly pay: SandboxPayService,
    private readonly refunds: SandboxRefundsService,
    private readonly bills: SandboxBillsService,
    private readonly certs: SandboxCertificatesService,
  ) {}

  @Post('pay/transactions/jsapi')
  prepay(@Req() req: RawRequest, @Res() res: Response) {
    return this.http.pay('v3/pay/transactions/jsapi', req, res, (body) => ({ status: 200, body: this.pay.prepay(body) }));
  }

  @Post('pay/transactions/h5')
  prepayH5(@Req() req: RawRequest, @Res() res: Response) {
    return this.http.pay('v3/pay/transactions/h5', req, res, (body) => ({ status: 200, body: this.pay.prepay(body, 'MWEB', sandboxBase(req)) }));
  }

  @Post('pay/transactions/native')
  prepayNative(@Req() req: RawRequest, @Res() res: Response) {
    return this.http.pay('v3/pay/transactions/native', req, res, (body) => ({ status: 200, body: this.pay.prepay(body, 'NATIVE') }));
  }

  @Get('pay/transactions/out-trade-no/:outTradeNo')
  queryByOutTradeNo(@Req() req: RawRequest, @Res() res: Response, @Param('outTradeNo') outTradeNo: string) {
    return this.http.pay('v3/pay/transactions/out-trade-no', req, res, () => ({
      status: 200,
      body: this.pay.transactionView(this.pay.findByOutTradeNo(outTradeNo, req.query.mchid as string | undefined)),
    }));
  }

  @Get('pay/transactions/id/:transactionId')
  queryById(@Req() req: RawRequest, @Res() res: Response, @Param('transactionId') transactionId: string) {
    return this.http.pay('v3/pay/transactions/id', req, res, () => ({
      status: 200,
      body: this.pay.transactionView(this.pay.findByTransactionId(transactionId, req.query.mchid as string | undefined)),
    }));
  }

  @Post('pay/transactions/out-trade-no/:outTradeNo/close')
  close(@Req() req: RawRequest, @Res() res: Response, @Param('outTradeNo') outTradeNo: string) {
    return this.http.pay('v3/pay/transactions/close', req, res, (body) => {
      this.pay.close(outTradeNo, body);
      return { status: 204 };
    });
  }

  @Post('refund/domestic/refunds')
  createRefund(@Req() req: RawRequest, @Res() res: Response) {
    return this.http.pay('v3/refund/domestic/refunds', req, res, (body) => ({
      status: 200,
      body: this.refunds.refundView(this.refunds.createRefund(body)),
    }));
  }

  @Get('refund/domestic/refunds/:outRefundNo')
  queryRefund(@Req() req: RawRequest, @Res() res: Response, @Param('outRefundNo') outRefundNo: string) {
    return this.http.pay('v3/refund/domestic/refunds/query', req, res, () => ({
      status: 200,
      body: this.refunds.refundView(this.refunds.queryRefund(outRefundNo, req.query.sub_mchid)),
    }));
  }

  @Get('certificates')
  certificates(@Req() req: RawRequest, @Res() res: Response) {
    return this.http.pay('v3/certificates', req, res, () => ({ status: 200, body: this.certs.certificatesView() }));
  }

  @Get('bill/tradebill')
  tradeBill(@Req() req: RawRequest, @Res() res: Response) {
    return this.http.pay('v3/bill/tradebill', req, res, () => ({
      status: 200,
      body: this.bills.applyBill('trade', req.query as Record<string, unknown>, sandboxBase(req)),
    }));
  }

  @Get('bill/fundflowbill')
  fundFlowBill(@Req() req: RawRequest, @Res() res: Response) {
    return this.http.pay('v3/bill/fundflowbill', req, res, () => ({
      status: 200,
      body: this.bills.applyBill('fundflow', req.query as Record<string, unknown>, sandboxBase(req)),
    }));
  }

  /** A provider's fund-flow bill of one sub-merchant: an encrypted download list (see applySubMerchantFundFlowBill). */
  @Get('bill/sub-merchant-fundflowbill')
  subMerchantFundFlowBill(@Req() req: RawRequest, @Res() res: Response) {
    return this.http.pay('v3/bill/sub-merchant-fundflowbill', req, res, () => ({
      status: 200,
      body: this.bills.applySubMerchantFundFlowBill(req.query as Record<string, unknown>, sandboxBase(req)),
    }));
  }

  /** The bill file: the request is signed like any call; the answer is the file itself, not signed. */
  @Get('billdownload/file')
  downloadBill(@Req() req: RawRequest, @Res() res: Response) {
    return this.http.pay('v3/billdownload/file', req, res, () => ({
      status: 200,
      file: this.bills.billFile(req.query.token as string | undefined),
      contentType: req.query.tartype === 'gzip' ? 'application/x-gzip' : 'text/plain; charset=utf-8',
    }));
  }
}

/**
 * Any other path under the Pay API: WeChat's signed 404 JSON, not the framework's. Its own controller,
 * registered after every other sandbox controller (see SandboxModule), so that it only gets what no real
 * route matched: a route added to SandboxPayController (or any controller listed before this one) wins.
 */
@ApiExcludeController()
@Controller('sandbox/v3')
export class SandboxPayNotFoundController {
  constructor(private readonly http: SandboxHttp) {}

  @All('{*path}')
  notFound(@Req() req: RawRequest, @Res() res: Response) {
    this.http.sendSigned(res, 404, { code: 'NOT_FOUND', message: `请求的接口不存在：${req.method} ${req.originalUrl.split('?', 1)[0]}` });
  }
}
