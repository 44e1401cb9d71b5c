import { SandboxPayError, payError } from './sandbox-errors';
import type { SandboxTransaction } from './sandbox.state';

/**
 * The sandbox merchant as a service provider (服务商): the sub-merchants (特约商户) bound to it. The
 * keystore's merchant serves both kinds: direct routes as itself, partner routes as the provider
 * (sp_mchid = its mchid, sp_appid = its appid) for these sub-merchants.
 */
export const SANDBOX_SUB_MCHIDS = ['1900000201', '1900000202'] as const;

/** The first `count` sub-merchants bound to the sandbox provider (SANDBOX_SUB_MERCHANTS, default 2): 1900000201, 1900000202, … */
export function sandboxSubMchids(count: number = SANDBOX_SUB_MCHIDS.length): string[] {
  return Array.from({ length: Math.max(1, Math.min(50, count)) }, (_, i) => `19000002${String(i + 1).padStart(2, '0')}`);
}

/**
 * Which kinds of merchant the sandbox merchant is: in-process, the app's (a direct deployment's
 * merchant is a direct merchant, refused on the partner routes as WeChat refuses one without the
 * service-provider product); standalone (`npm run sandbox`), both.
 */
export type SandboxMerchantKind = 'direct' | 'partner' | 'both';

/** WeChat's answer to a merchant without the service-provider product calling a partner route (403 NO_AUTH). */
export function notAProvider(): SandboxPayError {
  return new SandboxPayError(403, 'NO_AUTH', '商户号该产品权限未开通，请前往商户平台>产品中心检查后重试（非服务商商户号不能调用服务商接口）');
}

/** 400 INVALID_REQUEST: a sub_mchid not bound to the provider (the choice; WeChat's community reports also show 403 NO_AUTH 受理关系不存在). */
export function checkBound(subMchid: string, bound: readonly string[]): void {
  if (!bound.includes(subMchid)) throw payError.invalid('特约商户号与服务商商户号不存在绑定关系');
}

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
export function checkRefundSubMchid(tx: SandboxTransaction | undefined, subMchid: unknown, location: 'body' | 'query', bound: readonly string[]): void {
  const partner = partnerOf(tx);
  if (!partner) {
    if (subMchid !== undefined && tx) throw payError.resourceNotFound('订单不存在（该订单不属于此特约商户）');
    return;
  }
  if (typeof subMchid !== 'string' || !subMchid) {
    throw new SandboxPayError(400, 'PARAM_ERROR', '受理机构必须传入sub_mch_id', { field: 'sub_mchid', location });
  }
  checkBound(subMchid, bound);
  if (subMchid !== partner.subMchid) throw payError.resourceNotFound('订单不存在（该订单不属于此特约商户）');
}

/** What a partner prepay recorded on a transaction; undefined for a direct merchant's. */
export function partnerOf(tx: SandboxTransaction | undefined): SandboxPartnerInfo | undefined {
  return (tx as (SandboxTransaction & { partner?: SandboxPartnerInfo }) | undefined)?.partner;
}
