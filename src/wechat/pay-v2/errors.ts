import { WechatPayApiError } from '../pay/errors';

/**
 * APIv2 `err_code`s as the APIv3 error the business modules already understand (the status and code
 * the v3 API answers for the same situation), so that nothing downstream asks which version spoke.
 * WeChat's own v2 code and text stay in `detail`.
 */
const V2_TO_V3: Record<string, [number, string]> = {
  ORDERPAID: [400, 'ORDER_PAID'],
  ORDERCLOSED: [400, 'ORDER_CLOSED'],
  ORDERNOTEXIST: [404, 'ORDER_NOT_EXIST'],
  REFUNDNOTEXIST: [404, 'RESOURCE_NOT_EXISTS'],
  SYSTEMERROR: [500, 'SYSTEM_ERROR'],
  BIZERR_NEED_RETRY: [500, 'SYSTEM_ERROR'],
  FREQUENCY_LIMITED: [429, 'FREQUENCY_LIMITED'],
  NOTENOUGH: [403, 'NOT_ENOUGH'],
  NOAUTH: [403, 'NO_AUTH'],
  USER_ACCOUNT_ABNORMAL: [403, 'USER_ACCOUNT_ABNORMAL'],
  APPID_NOT_EXIST: [400, 'APPID_MCHID_NOT_MATCH'],
  APPID_MCHID_NOT_MATCH: [400, 'APPID_MCHID_NOT_MATCH'],
  MCHID_NOT_EXIST: [400, 'MCH_NOT_EXISTS'],
  OUT_TRADE_NO_USED: [400, 'OUT_TRADE_NO_USED'],
  SIGNERROR: [401, 'SIGN_ERROR'],
  LACK_PARAMS: [400, 'PARAM_ERROR'],
  PARAM_ERROR: [400, 'PARAM_ERROR'],
  XML_FORMAT_ERROR: [400, 'PARAM_ERROR'],
  POST_DATA_EMPTY: [400, 'PARAM_ERROR'],
  NOT_UTF8: [400, 'PARAM_ERROR'],
  REQUIRE_POST_METHOD: [400, 'PARAM_ERROR'],
  INVALID_TRANSACTIONID: [400, 'INVALID_TRANSACTIONID'],
  INVALID_REQUEST: [400, 'INVALID_REQUEST'],
  INVALID_REQ_TOO_MUCH: [400, 'INVALID_REQUEST'],
  REFUND_FEE_MISMATCH: [400, 'INVALID_REQUEST'],
  ORDER_NOT_READY: [400, 'INVALID_REQUEST'],
  CERT_ERROR: [403, 'NO_AUTH'],
  NO_STATEMENT_EXIST: [400, 'NO_STATEMENT_EXIST'],
  STATEMENT_CREATING: [400, 'STATEMENT_CREATING'],
};

export function v2BusinessError(errCode: string | undefined, errCodeDes: string | undefined): WechatPayApiError {
  const code = errCode || 'FAIL';
  const [status, v3Code] = V2_TO_V3[code] ?? [400, code];
  return new WechatPayApiError(status, v3Code, errCodeDes || code, undefined, { v2ErrCode: code, v2ErrCodeDes: errCodeDes });
}

/**
 * `return_code=FAIL`: WeChat refused the message itself (sign, format, parameters, certificate). Its
 * return_msg is all there is; a sign refusal is said in words ("签名错误"), so it is recognised by them.
 */
export function v2CommunicationError(returnMsg: string | undefined): WechatPayApiError {
  const msg = returnMsg || 'return_code FAIL';
  if (/签名错误|sign/i.test(msg)) return new WechatPayApiError(401, 'SIGN_ERROR', msg, undefined, { v2ReturnMsg: msg });
  if (/系统繁忙|system ?error/i.test(msg)) return new WechatPayApiError(500, 'SYSTEM_ERROR', msg, undefined, { v2ReturnMsg: msg });
  if (/频率|frequency/i.test(msg)) return new WechatPayApiError(429, 'FREQUENCY_LIMITED', msg, undefined, { v2ReturnMsg: msg });
  return new WechatPayApiError(400, 'PARAM_ERROR', msg, undefined, { v2ReturnMsg: msg });
}
