import { Controller, Get, Param, Post, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { sandboxBaseOf } from './root-alias';
import { payError, SandboxPayError } from './sandbox-errors';
import { RawRequest, SandboxHttp } from './sandbox-http';
import { SandboxPartnerInfo, checkBound, notAProvider, partnerView } from './sandbox-partner';
import { SandboxMpService } from './sandbox-mp.service';
import { SandboxPayService } from './sandbox-pay.service';
import { SandboxSettings } from './sandbox.settings';
import type { SandboxTradeType, SandboxTransaction } from './sandbox.state';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * WeChat Pay APIv3 for a service provider (服务商), under /sandbox/v3/pay/partner/…: the provider's
 * request shapes with WeChat's checks (sp_mchid must be the provider, sub_mchid present and bound to
 * it, sub_openid only with sub_appid), translated onto the one transaction core of SandboxPayService
 * (no second copy of state); the transaction remembers its sub-merchant, so queries and
 * notifications answer in the partner shape.
 */
@ApiExcludeController()
@Controller('sandbox/v3/pay/partner')
export class SandboxPartnerController {
  constructor(
    private readonly http: SandboxHttp,
    private readonly pay: SandboxPayService,
    private readonly settings: SandboxSettings,
    private readonly mp: SandboxMpService,
  ) {}

  @Post('transactions/jsapi')
  prepayJsapi(@Req() req: RawRequest, @Res() res: Response) {
    return this.http.pay('v3/pay/partner/transactions/jsapi', req, res, (body) => ({ status: 200, body: this.prepay(body, 'JSAPI', sandboxBaseOf(req)) }));
  }

  @Post('transactions/h5')
  prepayH5(@Req() req: RawRequest, @Res() res: Response) {
    return this.http.pay('v3/pay/partner/transactions/h5', req, res, (body) => ({ status: 200, body: this.prepay(body, 'MWEB', sandboxBaseOf(req)) }));
  }

  @Post('transactions/native')
  prepayNative(@Req() req: RawRequest, @Res() res: Response) {
    return this.http.pay('v3/pay/partner/transactions/native', req, res, (body) => ({ status: 200, body: this.prepay(body, 'NATIVE', sandboxBaseOf(req)) }));
  }

  @Get('transactions/out-trade-no/:outTradeNo')
  queryByOutTradeNo(@Req() req: RawRequest, @Res() res: Response, @Param('outTradeNo') outTradeNo: string) {
    return this.http.pay('v3/pay/partner/transactions/out-trade-no', req, res, () => {
      const subMchid = this.checkMerchants(req.query.sp_mchid, req.query.sub_mchid, 'query');
      return { status: 200, body: this.view(this.ownTransaction(this.pay.findByOutTradeNo(outTradeNo, this.pay.mchid), subMchid)) };
    });
  }

  @Get('transactions/id/:transactionId')
  queryById(@Req() req: RawRequest, @Res() res: Response, @Param('transactionId') transactionId: string) {
    return this.http.pay('v3/pay/partner/transactions/id', req, res, () => {
      const subMchid = this.checkMerchants(req.query.sp_mchid, req.query.sub_mchid, 'query');
      return { status: 200, body: this.view(this.ownTransaction(this.pay.findByTransactionId(transactionId, this.pay.mchid), subMchid)) };
    });
  }

  @Post('transactions/out-trade-no/:outTradeNo/close')
  close(@Req() req: RawRequest, @Res() res: Response, @Param('outTradeNo') outTradeNo: string) {
    return this.http.pay('v3/pay/partner/transactions/close', req, res, (body) => {
      const b = isObject(body) ? body : {};
      const subMchid = this.checkMerchants(b.sp_mchid, b.sub_mchid, 'body');
      this.ownTransaction(this.pay.findByOutTradeNo(outTradeNo, this.pay.mchid), subMchid);
      this.pay.close(outTradeNo, { mchid: this.pay.mchid });
      return { status: 204 };
    });
  }

  /** sp_mchid must be the provider; sub_mchid present (WeChat: 受理机构必须传入sub_mch_id) and bound to it. */
  private checkMerchants(spMchid: unknown, subMchid: unknown, location: 'body' | 'query'): string {
    // A direct merchant (the in-process sandbox of a direct deployment) has no service-provider product.
    if (this.settings.merchantKind === 'direct') throw notAProvider();
    if (typeof spMchid !== 'string' || !spMchid) {
      throw new SandboxPayError(400, 'PARAM_ERROR', `输入源“/${location === 'query' ? 'querystring' : 'body'}/sp_mchid”映射到字段“服务商商户号”必填性规则校验失败，此字段为必填项`, {
        field: 'sp_mchid',
        location,
      });
    }
    if (spMchid !== this.pay.mchid) throw new SandboxPayError(400, 'MCH_NOT_EXISTS', '商户号不存在');
    if (typeof subMchid !== 'string' || !subMchid) {
      throw new SandboxPayError(400, 'PARAM_ERROR', '受理机构必须传入sub_mch_id', { field: 'sub_mchid', location });
    }
    checkBound(subMchid, this.settings.subMchids);
    return subMchid;
  }

  /** A trade of another sub-merchant (or a direct one) is not found under this sub_mchid. */
  private ownTransaction(tx: SandboxTransaction, subMchid: string): SandboxTransaction {
    if ((tx as SandboxTransaction & { partner?: SandboxPartnerInfo }).partner?.subMchid !== subMchid) throw payError.notFound();
    return tx;
  }

  private view(tx: SandboxTransaction): Json {
    return partnerView(this.pay.transactionView(tx), tx, this.pay.appid);
  }

  private prepay(body: unknown, tradeType: SandboxTradeType, sandboxBase: string) {
    if (!isObject(body)) throw payError.param('请求体必须是 JSON 对象');
    if (typeof body.sp_appid !== 'string' || !body.sp_appid) throw payError.param('sp_appid 为必填项', '/sp_appid');
    const subMchid = this.checkMerchants(body.sp_mchid, body.sub_mchid, 'body');
    if (body.sp_appid !== this.pay.appid) throw new SandboxPayError(400, 'APPID_MCHID_NOT_MATCH', 'sp_appid和sp_mchid不匹配');
    const subAppid = typeof body.sub_appid === 'string' && body.sub_appid ? body.sub_appid : undefined;
    const payer = isObject(body.payer) ? body.payer : undefined;
    let openid: string | undefined;
    let payerKind: 'sp' | 'sub' = 'sp';
    if (payer && typeof payer.sub_openid === 'string' && payer.sub_openid) {
      if (!subAppid) throw new SandboxPayError(400, 'PARAM_ERROR', 'sub_openid与sub_appid不匹配：传入sub_openid时必须传入sub_appid', { field: '/payer/sub_openid', location: 'body' });
      openid = payer.sub_openid;
      payerKind = 'sub';
    } else if (payer && typeof payer.sp_openid === 'string' && payer.sp_openid) {
      openid = payer.sp_openid;
    }
    if (tradeType === 'JSAPI' && !openid) {
      throw new SandboxPayError(400, 'PARAM_ERROR', 'JSAPI支付必须传sp_openid或sub_openid', { field: '/payer', location: 'body' });
    }
    // The sub-merchant's own official account is bound to that sub-merchant only, and its payer is
    // one of its own users (an openid is per appid: another account's openid is not a sub_openid).
    const subAccount = this.settings.subAccount(subAppid);
    const alsoBound: string[] = [];
    const wrongOpenid = () => new SandboxPayError(400, 'PARAM_ERROR', 'sub_openid与sub_appid不匹配', { field: '/payer/sub_openid', location: 'body' });
    if (subAccount && subAppid) {
      if (!subAccount.subMchids.has(subMchid)) throw new SandboxPayError(400, 'APPID_MCHID_NOT_MATCH', 'sub_appid与sub_mchid不匹配');
      alsoBound.push(subAppid);
      if (payerKind === 'sub' && openid && !this.mp.openidOf(subAppid, openid)) throw wrongOpenid();
    } else if (subAppid === this.mp.miniprogram.appid && payerKind === 'sub' && openid && !this.mp.miniprogramUser(openid)) {
      // The mini-program's sub_openid is one of its own users (wx.login), not an official account's openid.
      throw wrongOpenid();
    }
    const { sp_appid, sp_mchid: _sp, sub_mchid: _sub, sub_appid: _subApp, payer: _payer, ...rest } = body;
    // The core checks appid/mchid binding: a payer under sub_appid is checked as that appid (the
    // sandbox's mini-program is bound; another sub_appid is refused as WeChat refuses an unbound one).
    const direct: Json = { ...rest, appid: payerKind === 'sub' ? subAppid : sp_appid, mchid: this.pay.mchid, ...(openid ? { payer: { openid } } : {}) };
    const answer = this.pay.prepay(direct, tradeType, sandboxBase, alsoBound);
    const tx = this.pay.findByOutTradeNo(String(body.out_trade_no), this.pay.mchid) as SandboxTransaction & { partner?: SandboxPartnerInfo };
    const info: SandboxPartnerInfo = { subMchid, ...(subAppid ? { subAppid } : {}), payerKind };
    if (tx.partner && tx.partner.subMchid !== subMchid) throw payError.invalid('商户订单号重复（该订单已由其他特约商户下单）');
    if (!tx.partner) {
      tx.partner = info;
    }
    return answer;
  }
}
