import { createHash, createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DOC_V2_SIGN_EXAMPLE as DOC } from '../../../test/fixtures/wechatpay-doc-vectors';
import { WechatPayApiError, WechatPayBadAnswerError } from '../pay/errors';
import { WechatPayV2Client } from './wechat-pay-v2.client';

/*
 * Our v2 client over real HTTP against a small WeChat double whose signer is pinned to WeChat's
 * documented 「签名生成算法」 example (test/fixtures/wechatpay-doc-vectors.ts): the double computes
 * the documented MD5 and HMAC-SHA256 signs from the documented fields and key before it serves, checks
 * every request's sign with that signer (SIGNERROR-like return_code FAIL otherwise, as WeChat answers)
 * and signs its answers with it. The double shares no code with src/ (its own join, its own XML).
 */
type SignType = 'MD5' | 'HMAC-SHA256';

/** The double's signer: the documentation's steps, written out here independently of sign.ts. */
function docSign(fields: Record<string, string>, type: SignType, key: string = DOC.key): string {
  const stringA = Object.keys(fields)
    .filter((k) => k !== 'sign' && fields[k] !== undefined && fields[k] !== '')
    .sort()
    .map((k) => `${k}=${fields[k]}`)
    .join('&');
  const stringSignTemp = `${stringA}&key=${key}`;
  const digest = type === 'MD5' ? createHash('md5').update(stringSignTemp, 'utf8') : createHmac('sha256', key).update(stringSignTemp, 'utf8');
  return digest.digest('hex').toUpperCase();
}

function parseXml(xml: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of xml.matchAll(/<(\w+)>(?:<!\[CDATA\[([\s\S]*?)\]\]>|([^<]*))<\/\1>/g)) out[m[1]] = m[2] ?? m[3];
  return out;
}

function toXml(fields: Record<string, string>): string {
  return `<xml>${Object.entries(fields)
    .map(([k, v]) => `<${k}><![CDATA[${v}]]></${k}>`)
    .join('')}</xml>`;
}

interface Seen {
  path: string;
  fields: Record<string, string>;
  signOk: boolean;
}

/** What the double answers a request it accepted: the fields to sign, or a whole body as it is. */
type Answer = (request: Record<string, string>, signType: SignType) => { fields: Record<string, string>; sign?: string } | { raw: string };

describe('WechatPayV2Client against a double signing with WeChat\'s documented v2 example', () => {
  let server: http.Server;
  let base: string;
  let answer: Answer;
  const seen: Seen[] = [];

  /** A genuine orderquery answer for the request: SUCCESS, our appid/mch_id, the order NOTPAY. */
  const genuineFields = (request: Record<string, string>): Record<string, string> => ({
    return_code: 'SUCCESS',
    return_msg: 'OK',
    appid: DOC.fields.appid,
    mch_id: DOC.fields.mch_id,
    device_info: DOC.fields.device_info,
    nonce_str: DOC.fields.nonce_str,
    result_code: 'SUCCESS',
    trade_state: 'NOTPAY',
    trade_state_desc: '订单未支付',
    out_trade_no: request.out_trade_no,
    total_fee: '1',
    fee_type: 'CNY',
  });
  const genuine: Answer = (request) => ({ fields: genuineFields(request) });

  beforeAll(async () => {
    // The double refuses to serve unless its signer gives the documentation's own results.
    if (docSign(DOC.fields, 'MD5') !== DOC.md5 || docSign(DOC.fields, 'HMAC-SHA256') !== DOC.hmacSha256) throw new Error('the double does not reproduce the documented v2 signs');
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const fields = parseXml(Buffer.concat(chunks).toString('utf8'));
        const signType: SignType = fields.sign_type === 'HMAC-SHA256' ? 'HMAC-SHA256' : 'MD5';
        const signOk = !!fields.sign && fields.sign === docSign(fields, signType);
        seen.push({ path: req.url!, fields, signOk });
        res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' });
        if (!signOk) {
          res.end(toXml({ return_code: 'FAIL', return_msg: '签名错误，请检查后再试' }));
          return;
        }
        const out = answer(fields, signType);
        if ('raw' in out) res.end(out.raw);
        else res.end(toXml({ ...out.fields, sign: out.sign ?? docSign(out.fields, signType) }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  beforeEach(() => {
    seen.length = 0;
    answer = genuine;
  });

  const client = (signType: SignType, apiKey: string = DOC.key) =>
    new WechatPayV2Client({ appid: DOC.fields.appid, mchid: DOC.fields.mch_id, apiKey, signType, baseUrl: base, timeoutMs: 2000, now: () => 1_700_000_000_000, nonce: () => DOC.fields.nonce_str });

  it('the double\'s signer gives the documented stringA signs: MD5 9A0A8659…, HMAC-SHA256 6A9AE165…', () => {
    expect(docSign({ ...DOC.fields, sign: 'ignored', empty: '' }, 'MD5')).toBe('9A0A8659F005D6984697E2CA0A9CF3B7');
    expect(docSign(DOC.fields, 'HMAC-SHA256')).toBe('6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6');
  });

  it.each(['MD5', 'HMAC-SHA256'] as const)('%s: the double accepts our signed orderquery and our client accepts its signed answer', async (signType) => {
    const tx = await client(signType).queryByOutTradeNo('DOC1');
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ path: '/pay/orderquery', signOk: true });
    expect(seen[0].fields).toMatchObject({ appid: DOC.fields.appid, mch_id: DOC.fields.mch_id, nonce_str: DOC.fields.nonce_str, out_trade_no: 'DOC1' });
    // sign_type is sent only when it is not MD5 (MD5 is WeChat's default).
    expect(seen[0].fields.sign_type).toBe(signType === 'MD5' ? undefined : 'HMAC-SHA256');
    expect(seen[0].fields.sign).toMatch(signType === 'MD5' ? /^[0-9A-F]{32}$/ : /^[0-9A-F]{64}$/);
    expect(tx).toMatchObject({ out_trade_no: 'DOC1', trade_state: 'NOTPAY', appid: DOC.fields.appid, mchid: DOC.fields.mch_id, amount: { total: 1 } });
  });

  it('a request signed with another key is refused by the double, and our client reports SIGN_ERROR', async () => {
    const error = await client('MD5', 'ffffffffffffffffffffffffffffffff').queryByOutTradeNo('DOC2').catch((e: unknown) => e);
    expect(seen[0].signOk).toBe(false);
    expect(error).toBeInstanceOf(WechatPayApiError);
    expect([(error as WechatPayApiError).httpStatus, (error as WechatPayApiError).wechatCode]).toEqual([401, 'SIGN_ERROR']);
  });

  it.each(['MD5', 'HMAC-SHA256'] as const)('%s: refuses forged answers — another key, the documented sign replayed, a field changed after signing, no sign', async (signType) => {
    const forgeries: Answer[] = [
      (request, type) => ({ fields: genuineFields(request), sign: docSign(genuineFields(request), type, '0'.repeat(32)) }),
      (request, type) => ({ fields: genuineFields(request), sign: type === 'MD5' ? DOC.md5 : DOC.hmacSha256 }),
      (request, type) => {
        const fields = genuineFields(request);
        return { raw: toXml({ ...fields, trade_state: 'SUCCESS', sign: docSign(fields, type) }) };
      },
      (request) => ({ raw: toXml(genuineFields(request)) }),
    ];
    for (const forged of forgeries) {
      answer = forged;
      seen.length = 0;
      await expect(client(signType).queryByOutTradeNo('DOC3')).rejects.toBeInstanceOf(WechatPayBadAnswerError);
      expect(seen[0].signOk).toBe(true);
    }
  });

  it('refuses a genuine-looking answer signed with the other algorithm than its sign_type says', async () => {
    answer = (request) => {
      const fields = { ...genuineFields(request), sign_type: 'HMAC-SHA256' };
      return { fields, sign: docSign(fields, 'MD5') };
    };
    await expect(client('HMAC-SHA256').queryByOutTradeNo('DOC4')).rejects.toBeInstanceOf(WechatPayBadAnswerError);
  });
});
