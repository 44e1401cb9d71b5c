import { SandboxPayError, payError } from './sandbox-errors';
import type { SandboxTransaction } from './sandbox.state';

/**
 * The sandbox merchant as a service provider (服务商): the sub-merchants (特约商户) bound to it. The
 * keystore's merchant serves both kinds: direct routes as itself, partner routes as the provider
 * (sp_mchid = its mchid, sp_appid = its appid) for these sub-merchants.
 */
export const SANDBOX_SUB_MCHIDS = ['1900000201', '1900000202'] as const;

/** What a partner prepay recorded on the (one, shared) transaction. */
export interface SandboxPartnerInfo {
  subMchid: string;
  subAppid?: string;
  /** Which payer field the prepay named: sp_openid (under sp_appid) or sub_openid (under sub_appid). */
  payerKind: 'sp' | 'sub';
}

type Json = Record<string, unknown>;

/** A transaction's direct view (appid, mchid, payer.openid) as WeChat shows a partner trade. */
export function partnerView(view: Json, tx: SandboxTransaction & { partner?: SandboxPartnerInfo }, spAppid: string): Json {
  const partner = tx.partner;
  if (!partner) return view;
  const { appid: _appid, mchid, payer, ...rest } = view as Json & { payer?: { openid?: string } };
  return {
    sp_appid: spAppid,
    sp_mchid: mchid,
    ...(partner.subAppid ? { sub_appid: partner.subAppid } : {}),
    sub_mchid: partner.subMchid,
    ...rest,
    ...(payer?.openid ? { payer: partner.payerKind === 'sub' ? { sub_openid: payer.openid } : { sp_openid: payer.openid } } : {}),
  };
}

/**
 * Refunds and refund queries share the direct routes (/v3/refund/domestic/refunds): a partner trade's
 * names its sub-merchant (sub_mchid in the body, or the query's ?sub_mchid), as WeChat requires of a
 * provider; another sub-merchant's (or a direct trade named under a sub-merchant) is not found there.
 */
export function checkRefundSubMchid(tx: SandboxTransaction | undefined, subMchid: unknown, location: 'body' | 'query'): void {
  const partner = (tx as (SandboxTransaction & { partner?: SandboxPartnerInfo }) | undefined)?.partner;
  if (!partner) {
    if (subMchid !== undefined && tx) throw payError.resourceNotFound('订单不存在（该订单不属于此特约商户）');
    return;
  }
  if (typeof subMchid !== 'string' || !subMchid) {
    throw new SandboxPayError(400, 'PARAM_ERROR', '受理机构必须传入sub_mch_id', { field: 'sub_mchid', location });
  }
  if (!(SANDBOX_SUB_MCHIDS as readonly string[]).includes(subMchid)) throw payError.invalid('特约商户号与服务商商户号不存在绑定关系');
  if (subMchid !== partner.subMchid) throw payError.resourceNotFound('订单不存在（该订单不属于此特约商户）');
}
