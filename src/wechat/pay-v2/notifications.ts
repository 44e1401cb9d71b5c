import type { RefundNotificationResource, Transaction } from '../pay/types';
import { decryptReqInfo } from './cipher';
import { v2RefundNotification, v2Transaction } from './convert';
import { V2SignType, receivedSignType, verifyV2 } from './sign';
import { V2Fields, V2XmlError, buildV2Xml, parseV2Xml } from './xml';

/** Why a v2 notification is refused; the answer to WeChat is FAIL with this message, nothing applied. */
export class V2NotificationError extends Error {
  constructor(
    readonly reason: 'malformed' | 'bad_signature' | 'not_success' | 'wrong_merchant' | 'bad_amount' | 'undecryptable',
    message: string,
  ) {
    super(message);
    this.name = 'V2NotificationError';
  }
}

export interface V2NotificationKeys {
  appid: string;
  mchid: string;
  apiKey: string;
  signType: V2SignType;
  /** Further appids of ours (the mini-program) a payment may name. */
  otherAppids?: string[];
}

function parse(raw: Buffer | string, root = 'xml'): V2Fields {
  try {
    return parseV2Xml(raw, root);
  } catch (error) {
    if (error instanceof V2XmlError) throw new V2NotificationError('malformed', error.message);
    throw error;
  }
}

function checkMerchant(f: V2Fields, keys: V2NotificationKeys): void {
  if (f.mch_id !== keys.mchid) throw new V2NotificationError('wrong_merchant', `mch_id ${f.mch_id ?? '(none)'} is not ours`);
  if (f.appid !== keys.appid && !(keys.otherAppids ?? []).includes(f.appid)) {
    throw new V2NotificationError('wrong_merchant', `appid ${f.appid ?? '(none)'} is not ours`);
  }
}

/**
 * A payment result notification (POST XML to /notify/wechatpay/v2/transaction): parsed without any
 * DTD, sign checked (constant time) before anything is read, return_code/result_code, the order and
 * transaction numbers and total_fee (integer fen) checked. Returns the payment as an APIv3
 * Transaction. appid, mch_id, the amount and fee_type are judged where every version's payment is:
 * a signed payment that is not ours or not the order's amount or currency is the applier's ANOMALY
 * (acknowledged, flagged for an operator), as for APIv3 — refusing it here would have WeChat retry
 * it for a day while nobody sees it.
 * A service provider's (appid, mch_id = the provider's; sub_appid, sub_mch_id, sub_openid) keeps
 * sub_mchid and the payer's appid for that same one ownership check (PaymentApplier, as APIv3's).
 */
export function parseV2PaymentNotification(raw: Buffer | string, keys: V2NotificationKeys): { fields: V2Fields; transaction: Transaction } {
  const f = parse(raw);
  if (f.return_code !== 'SUCCESS') throw new V2NotificationError('not_success', `return_code ${f.return_code ?? '(none)'}: ${f.return_msg ?? ''}`);
  const type = receivedSignType(f, keys.signType);
  if (!f.sign || !type || !verifyV2(f, keys.apiKey, type)) throw new V2NotificationError('bad_signature', 'sign does not match');
  if (f.result_code !== 'SUCCESS') throw new V2NotificationError('not_success', `result_code ${f.result_code ?? '(none)'}: ${f.err_code ?? ''} ${f.err_code_des ?? ''}`.trim());
  if (!f.out_trade_no || !f.transaction_id) throw new V2NotificationError('malformed', 'out_trade_no or transaction_id missing');
  if (!/^\d+$/.test(f.total_fee ?? '')) throw new V2NotificationError('bad_amount', `total_fee ${f.total_fee ?? '(none)'} is not an amount in fen`);
  return { fields: f, transaction: { ...v2Transaction(f), trade_state: 'SUCCESS' } };
}

/**
 * A refund result notification (POST XML to /notify/wechatpay/v2/refund). It carries no sign:
 * `req_info` decrypting with the API key (AES-256-ECB, key = lowercase hex MD5 of it) is the proof.
 */
export function parseV2RefundNotification(raw: Buffer | string, keys: V2NotificationKeys): { fields: V2Fields; refund: RefundNotificationResource } {
  const f = parse(raw);
  if (f.return_code !== 'SUCCESS') throw new V2NotificationError('not_success', `return_code ${f.return_code ?? '(none)'}: ${f.return_msg ?? ''}`);
  checkMerchant(f, keys);
  if (!f.req_info) throw new V2NotificationError('malformed', 'req_info missing');
  let plain: string;
  try {
    plain = decryptReqInfo(f.req_info, keys.apiKey);
  } catch {
    throw new V2NotificationError('undecryptable', 'req_info cannot be decrypted with the APIv2 key');
  }
  const root = parse(plain, 'root');
  if (!root.out_refund_no || !root.out_trade_no || !root.refund_status) throw new V2NotificationError('malformed', 'req_info lacks out_refund_no, out_trade_no or refund_status');
  if (!/^\d+$/.test(root.refund_fee ?? '') || !/^\d+$/.test(root.total_fee ?? '')) throw new V2NotificationError('bad_amount', 'refund_fee / total_fee are not amounts in fen');
  return { fields: root, refund: v2RefundNotification(root, f.mch_id, f.sub_mch_id || undefined) };
}

/** The answer WeChat expects: SUCCESS/OK after the commit, FAIL with a message otherwise. */
export function v2NotificationAnswer(ok: boolean, message = ok ? 'OK' : 'FAIL'): string {
  if (ok && message === 'OK') return V2_SUCCESS_ANSWER;
  return buildV2Xml({ return_code: ok ? 'SUCCESS' : 'FAIL', return_msg: message });
}

/** The acknowledgement, built once: every applied notification is answered with it. */
const V2_SUCCESS_ANSWER = buildV2Xml({ return_code: 'SUCCESS', return_msg: 'OK' });
