import { Controller, Get, Param, Post, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { sandboxBaseOf } from './root-alias';
import { RawRequest, SandboxHttp } from './sandbox-http';
import { SandboxPartnerService } from './sandbox-partner.service';
import { SandboxPayService } from './sandbox-pay.service';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * WeChat Pay APIv3 for a service provider (服务商), under /sandbox/v3/pay/partner/…: the provider's
 * request shapes with WeChat's checks (sp_mchid must be the provider, sub_mchid present and bound to
 * it, sub_openid only with sub_appid), translated onto the one transaction core of SandboxPayService
 * (no second copy of state) by SandboxPartnerService, which the APIv2 front shares; the transaction
 * remembers its sub-merchant, so queries and notifications answer in the partner shape.
 */
@ApiExcludeController()
@Controller('sandbox/v3/pay/partner')
export class SandboxPartnerController {
  constructor(
    private readonly http: SandboxHttp,
    private readonly pay: SandboxPayService,
    private readonly partner: SandboxPartnerService,
  ) {}

  @Post('transactions/jsapi')
  prepayJsapi(@Req() req: RawRequest, @Res() res: Response) {
    return this.http.pay('v3/pay/partner/transactions/jsapi', req, res, (body) => ({ status: 200, body: this.partner.prepay(body, 'JSAPI', sandboxBaseOf(req)) }));
  }

  @Post('transactions/h5')
  prepayH5(@Req() req: RawRequest, @Res() res: Response) {
    return this.http.pay('v3/pay/partner/transactions/h5', req, res, (body) => ({ status: 200, body: this.partner.prepay(body, 'MWEB', sandboxBaseOf(req)) }));
  }

  @Post('transactions/native')
  prepayNative(@Req() req: RawRequest, @Res() res: Response) {
    return this.http.pay('v3/pay/partner/transactions/native', req, res, (body) => ({ status: 200, body: this.partner.prepay(body, 'NATIVE', sandboxBaseOf(req)) }));
  }

  @Get('transactions/out-trade-no/:outTradeNo')
  queryByOutTradeNo(@Req() req: RawRequest, @Res() res: Response, @Param('outTradeNo') outTradeNo: string) {
    return this.http.pay('v3/pay/partner/transactions/out-trade-no', req, res, () => {
      const subMchid = this.partner.checkMerchants(req.query.sp_mchid, req.query.sub_mchid, 'query');
      return { status: 200, body: this.partner.view(this.partner.ownTransaction(this.pay.findByOutTradeNo(outTradeNo, this.pay.mchid), subMchid)) };
    });
  }

  @Get('transactions/id/:transactionId')
  queryById(@Req() req: RawRequest, @Res() res: Response, @Param('transactionId') transactionId: string) {
    return this.http.pay('v3/pay/partner/transactions/id', req, res, () => {
      const subMchid = this.partner.checkMerchants(req.query.sp_mchid, req.query.sub_mchid, 'query');
      return { status: 200, body: this.partner.view(this.partner.ownTransaction(this.pay.findByTransactionId(transactionId, this.pay.mchid), subMchid)) };
    });
  }

  @Post('transactions/out-trade-no/:outTradeNo/close')
  close(@Req() req: RawRequest, @Res() res: Response, @Param('outTradeNo') outTradeNo: string) {
    return this.http.pay('v3/pay/partner/transactions/close', req, res, (body) => {
      const b = isObject(body) ? body : {};
      const subMchid = this.partner.checkMerchants(b.sp_mchid, b.sub_mchid, 'body');
      this.partner.ownTransaction(this.pay.findByOutTradeNo(outTradeNo, this.pay.mchid), subMchid);
      this.pay.close(outTradeNo, { mchid: this.pay.mchid });
      return { status: 204 };
    });
  }
}
