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
