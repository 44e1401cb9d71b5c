import { sandboxApiV2Key, SandboxKeystore } from '../../src/sandbox/keystore';
import { sandboxParseV2, sandboxReqInfo, sandboxV2Sign, sandboxXml } from '../../src/sandbox/sandbox-v2-wire';

/*
 * APIv2 by hand for e2e specs: signed requests straight to the sandbox's v2 front (to see WeChat's own
 * answers, which our client turns into typed errors) and crafted v2 notifications, signed (payment) or
 * req_info-encrypted (refund) with the sandbox merchant's APIv2 key. Built with the sandbox's wire code,
 * not the shop's client, so the request is what a merchant would send.
 */

type Fields = Record<string, string | number | undefined>;

/** POSTs signed XML (MD5; appid, mch_id, nonce_str added) to the sandbox's `path` (e.g. /pay/orderquery); the answer's fields. */
export async function v2Call(baseUrl: string, keystore: SandboxKeystore, path: string, fields: Fields): Promise<Record<string, string>> {
  const all: Fields = { appid: keystore.appid, mch_id: keystore.mchid, nonce_str: 'e2eNonce', ...fields };
  const body = sandboxXml({ ...all, sign: sandboxV2Sign(all, sandboxApiV2Key(keystore), 'MD5') });
  const res = await fetch(`${baseUrl}/sandbox${path}`, { method: 'POST', headers: { 'Content-Type': 'text/xml' }, body });
  const parsed = sandboxParseV2(await res.text());
  if ('error' in parsed) throw new Error(`${path}: not XML (${parsed.error})`);
  return parsed.fields;
}

/** A v2 payment notification as WeChat sends it, signed (MD5) with the merchant's APIv2 key unless `key` says otherwise. */
export function v2PaymentNotification(keystore: SandboxKeystore, fields: Fields, key = sandboxApiV2Key(keystore)): string {
  const all: Fields = { return_code: 'SUCCESS', return_msg: 'OK', appid: keystore.appid, mch_id: keystore.mchid, nonce_str: 'e2eNonce', result_code: 'SUCCESS', ...fields };
  return sandboxXml({ ...all, sign: sandboxV2Sign(all, key, 'MD5') });
}

/** A v2 refund notification: the envelope `fields` (appid, mch_id, sub_mch_id …) and the refund result as req_info. */
export function v2RefundNotification(keystore: SandboxKeystore, fields: Fields, result: Fields): string {
  const reqInfo = sandboxReqInfo(sandboxXml(result, 'root'), sandboxApiV2Key(keystore));
  return sandboxXml({ return_code: 'SUCCESS', appid: keystore.appid, mch_id: keystore.mchid, nonce_str: 'e2eNonce', ...fields, req_info: reqInfo });
}

export function postXml(url: string, xml: string): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'Content-Type': 'text/xml' }, body: xml });
}
