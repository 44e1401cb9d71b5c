import { Injectable } from '@nestjs/common';
import { payError, SandboxPayError } from './sandbox-errors';
import { SandboxPartnerInfo, checkBound, notAProvider, partnerOf, partnerView } from './sandbox-partner';
import { SandboxMpService } from './sandbox-mp.service';
import { SandboxPayService } from './sandbox-pay.service';
import { SandboxSettings } from './sandbox.settings';
import type { SandboxTradeType, SandboxTransaction } from './sandbox.state';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The sandbox merchant as a service provider: WeChat's checks of a provider's request (a merchant
 * with the product, sp_mchid the provider, sub_mchid present and bound to it, sub_openid only with
 * sub_appid and a user of it) and the prepay translated onto the one transaction core of
 * SandboxPayService. Shared by the APIv3 partner routes (SandboxPartnerController) and the APIv2
 * front with sub_mch_id (SandboxPayV2Controller), so both speak for the same provider by the same rules.
 */
@Injectable()
export class SandboxPartnerService {
  constructor(
    private readonly pay: SandboxPayService,
    private readonly settings: SandboxSettings,
    private readonly mp: SandboxMpService,
  ) {}

  /** sp_mchid must be the provider; sub_mchid present (WeChat: 受理机构必须传入sub_mch_id) and bound to it. */
  checkMerchants(spMchid: unknown, subMchid: unknown, location: 'body' | 'query'): string {
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
  ownTransaction(tx: SandboxTransaction, subMchid: string): SandboxTransaction {
    if (partnerOf(tx)?.subMchid !== subMchid) throw payError.notFound();
    return tx;
  }

  view(tx: SandboxTransaction): Json {
    return partnerView(this.pay.transactionView(tx), tx, this.pay.appid);
  }

  /** A provider's prepay in the APIv3 partner shape (sp_appid, sp_mchid, sub_mchid, sub_appid, payer.sp_openid / payer.sub_openid). */
  prepay(body: unknown, tradeType: SandboxTradeType, sandboxBase: string) {
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
