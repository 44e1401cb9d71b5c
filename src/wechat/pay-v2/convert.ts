import type { Refund, RefundNotificationResource, RefundStatus, TradeState, Transaction } from '../pay/types';
import type { V2Fields } from './xml';

/* APIv2 answers in the APIv3 shapes the business modules already read (amounts stay fen). */

const TRADE_STATES: readonly TradeState[] = ['SUCCESS', 'REFUND', 'NOTPAY', 'CLOSED', 'REVOKED', 'USERPAYING', 'PAYERROR'];

/** `yyyyMMddHHmmss` (Beijing) → RFC 3339 with +08:00, as APIv3 writes success_time. */
export function v2TimeToRfc3339(value: string | undefined): string | undefined {
  const m = value ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(value) : null;
  return m ? `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}+08:00` : undefined;
}

/** `yyyy-MM-dd HH:mm:ss` (Beijing; refund times) → RFC 3339 with +08:00. */
export function v2DateTimeToRfc3339(value: string | undefined): string | undefined {
  const m = value ? /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})$/.exec(value) : null;
  return m ? `${m[1]}T${m[2]}+08:00` : undefined;
}

/** A Date as APIv2's `yyyyMMddHHmmss` in Beijing time (UTC+8, no daylight saving). */
export function toV2Time(date: Date): string {
  const d = new Date(date.getTime() + 8 * 3600_000);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
}

function fen(value: string | undefined): number | undefined {
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
}

/**
 * orderquery answer or payment notification → Transaction. A service provider's (sub_mch_id) in the
 * neutral shape the APIv3 partner adapter gives (neutralTransaction): mchid = the provider's mch_id,
 * appid = the appid the payer was named under (sub_appid when given, else appid), payer =
 * sub_openid ?? openid, sub_mchid kept. Decided by the shape, not the mode: a provider-shaped
 * notification reaching a direct deployment keeps its sub_mchid and fails the order's check.
 */
export function v2Transaction(f: V2Fields): Transaction {
  const state = (TRADE_STATES as readonly string[]).includes(f.trade_state) ? (f.trade_state as TradeState) : f.result_code === 'SUCCESS' && !f.trade_state ? 'SUCCESS' : 'PAYERROR';
  const openid = f.sub_appid ? f.sub_openid || f.openid : f.openid;
  return {
    appid: f.sub_appid || f.appid,
    mchid: f.mch_id,
    ...(f.sub_mch_id ? { sub_mchid: f.sub_mch_id } : {}),
    out_trade_no: f.out_trade_no,
    transaction_id: f.transaction_id || undefined,
    trade_type: f.trade_type || undefined,
    trade_state: state,
    trade_state_desc: f.trade_state_desc || f.err_code_des || undefined,
    bank_type: f.bank_type || undefined,
    attach: f.attach || undefined,
    success_time: v2TimeToRfc3339(f.time_end),
    payer: openid ? { openid } : undefined,
    amount: { total: fen(f.total_fee), payer_total: fen(f.cash_fee), currency: f.fee_type || 'CNY', payer_currency: f.cash_fee_type || f.fee_type || 'CNY' },
  };
}

export function v2RefundStatus(value: string | undefined): RefundStatus {
  switch (value) {
    case 'SUCCESS':
      return 'SUCCESS';
    case 'REFUNDCLOSE':
      return 'CLOSED';
    case 'CHANGE':
      return 'ABNORMAL';
    default:
      return 'PROCESSING';
  }
}

/** refund answer (accepted, so PROCESSING) → Refund. */
export function v2RefundAccepted(f: V2Fields): Refund {
  return {
    refund_id: f.refund_id,
    out_refund_no: f.out_refund_no,
    transaction_id: f.transaction_id,
    out_trade_no: f.out_trade_no,
    status: 'PROCESSING',
    amount: { total: fen(f.total_fee) ?? 0, refund: fen(f.refund_fee) ?? 0, payer_refund: fen(f.cash_refund_fee), currency: f.fee_type || 'CNY' },
  };
}

/** refundquery answer → the refund `outRefundNo` among its indexed `_$n` entries. */
export function v2RefundQueried(f: V2Fields, outRefundNo: string): Refund | undefined {
  const count = fen(f.refund_count) ?? 0;
  for (let n = 0; n < count; n++) {
    if (f[`out_refund_no_${n}`] !== outRefundNo) continue;
    return {
      refund_id: f[`refund_id_${n}`],
      out_refund_no: outRefundNo,
      transaction_id: f.transaction_id,
      out_trade_no: f.out_trade_no,
      channel: f[`refund_channel_${n}`] || undefined,
      user_received_account: f[`refund_recv_accout_${n}`] || undefined,
      success_time: v2DateTimeToRfc3339(f[`refund_success_time_${n}`]),
      status: v2RefundStatus(f[`refund_status_${n}`]),
      amount: { total: fen(f.total_fee) ?? 0, refund: fen(f[`refund_fee_${n}`]) ?? 0, payer_total: fen(f.cash_fee), currency: f.fee_type || 'CNY' },
    };
  }
  return undefined;
}

/**
 * Decrypted `<root>` of a refund notification → the APIv3 REFUND.* resource. `subMchid`: the
 * envelope's sub_mch_id (a provider's refund), kept as the APIv3 partner resource has it.
 */
export function v2RefundNotification(root: V2Fields, mchid: string, subMchid?: string): RefundNotificationResource {
  return {
    mchid,
    ...(subMchid ? { sub_mchid: subMchid } : {}),
    transaction_id: root.transaction_id,
    out_trade_no: root.out_trade_no,
    refund_id: root.refund_id,
    out_refund_no: root.out_refund_no,
    refund_status: v2RefundStatus(root.refund_status),
    success_time: v2DateTimeToRfc3339(root.success_time),
    user_received_account: root.refund_recv_accout || undefined,
    amount: {
      total: fen(root.total_fee) ?? 0,
      refund: fen(root.refund_fee) ?? 0,
      payer_total: fen(root.settlement_total_fee) ?? fen(root.total_fee) ?? 0,
      payer_refund: fen(root.settlement_refund_fee) ?? fen(root.refund_fee) ?? 0,
    },
  };
}
