import { createHash } from 'node:crypto';
import { DOC_V2_SIGN_EXAMPLE } from '../../../test/fixtures/wechatpay-doc-vectors';
import { receivedSignType, signV2, v2SignString, verifyV2 } from './sign';

// The official APIv2 sign example (../shared/wechatpay-protocol.md I.5).
const KEY = DOC_V2_SIGN_EXAMPLE.key;
const EXAMPLE = DOC_V2_SIGN_EXAMPLE.fields;

describe('APIv2 sign', () => {
  it('builds stringA from the sorted non-empty fields, sign excluded', () => {
    expect(v2SignString({ ...EXAMPLE, sign: 'X', empty: '', missing: undefined })).toBe(
      'appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100&nonce_str=ibuaiVcKdpRxkhJA',
    );
  });

  it('gives the official MD5 vector', () => {
    expect(signV2(EXAMPLE, KEY, 'MD5')).toBe('9A0A8659F005D6984697E2CA0A9CF3B7');
  });

  it('gives the official HMAC-SHA256 vector (the message includes &key=)', () => {
    expect(signV2(EXAMPLE, KEY, 'HMAC-SHA256')).toBe('6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6');
  });

  it('gives the documented v2 JSAPI paySign vectors (F.2)', () => {
    const invoke = { appId: 'wx2421b1c4370ec43b', timeStamp: '1395712654', nonceStr: 'e61463f8efa94090b1f366cccfbbb444', package: 'prepay_id=wx201410272009395522657a690389285100' };
    expect(signV2({ ...invoke, signType: 'MD5' }, KEY, 'MD5')).toBe('05F30DD446ED1AFB88D72F6A0F93BAE7');
    expect(signV2({ ...invoke, signType: 'HMAC-SHA256' }, KEY, 'HMAC-SHA256')).toBe('D3C8EC2BB7A501F85B7FE93E298F4CD23C7E8D90F37DF45D716DF18AE7B65F72');
  });

  it('includes unknown extra fields WeChat adds, so a tampered extra field fails verification', () => {
    const fields = { ...EXAMPLE, new_field: 'x' };
    const sign = createHash('md5').update(`${v2SignString(fields)}&key=${KEY}`).digest('hex').toUpperCase();
    expect(verifyV2({ ...fields, sign }, KEY, 'MD5')).toBe(true);
    expect(verifyV2({ ...fields, new_field: 'y', sign }, KEY, 'MD5')).toBe(false);
  });

  it('refuses a missing, non-hex or wrong-key sign; accepts lowercase hex of the right one', () => {
    expect(verifyV2({ ...EXAMPLE }, KEY, 'MD5')).toBe(false);
    expect(verifyV2({ ...EXAMPLE, sign: 'not hex!' }, KEY, 'MD5')).toBe(false);
    expect(verifyV2({ ...EXAMPLE, sign: '9A0A8659F005D6984697E2CA0A9CF3B7' }, 'another key', 'MD5')).toBe(false);
    expect(verifyV2({ ...EXAMPLE, sign: '9a0a8659f005d6984697e2ca0a9cf3b7' }, KEY, 'MD5')).toBe(true);
    // the right sign with a digit more or less (hex decoding would drop an odd last digit)
    expect(verifyV2({ ...EXAMPLE, sign: '9A0A8659F005D6984697E2CA0A9CF3B70' }, KEY, 'MD5')).toBe(false);
    expect(verifyV2({ ...EXAMPLE, sign: '9A0A8659F005D6984697E2CA0A9CF3B' }, KEY, 'MD5')).toBe(false);
    expect(verifyV2({ ...EXAMPLE, sign: '9A0A8659F005D6984697E2CA0A9CF3B79A0A8659F005D6984697E2CA0A9CF3B7' }, KEY, 'MD5')).toBe(false);
  });

  it('verifies HMAC-SHA256 with one key object per API key, whichever key comes (the official vector, then another key, then it again)', () => {
    const sign = '6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6';
    expect(verifyV2({ ...EXAMPLE, sign }, KEY, 'HMAC-SHA256')).toBe(true);
    expect(verifyV2({ ...EXAMPLE, sign }, 'f'.repeat(32), 'HMAC-SHA256')).toBe(false);
    for (let i = 0; i < 40; i++) signV2(EXAMPLE, `key${i}`, 'HMAC-SHA256');
    expect(verifyV2({ ...EXAMPLE, sign: sign.toLowerCase() }, KEY, 'HMAC-SHA256')).toBe(true);
    expect(signV2(EXAMPLE, KEY, 'HMAC-SHA256')).toBe(sign);
  });

  it('takes the algorithm from sign_type, else from the length of the sign; an unknown sign_type gives none', () => {
    expect(receivedSignType({ sign_type: 'HMAC-SHA256', sign: 'A'.repeat(32) }, 'MD5')).toBe('HMAC-SHA256');
    expect(receivedSignType({ sign: 'A'.repeat(32) }, 'HMAC-SHA256')).toBe('MD5');
    expect(receivedSignType({ sign: 'A'.repeat(64) }, 'MD5')).toBe('HMAC-SHA256');
    expect(receivedSignType({ sign_type: 'SHA1', sign: 'A' }, 'MD5')).toBeUndefined();
  });
});
