import { createCipheriv } from 'node:crypto';
import {
  DOC_MERCHANT_PRIVATE_KEY,
  DOC_MERCHANT_PUBLIC_KEY,
  DOC_WECHATPAY_PUBLIC_KEY,
} from '../../../test/fixtures/wechatpay-doc-vectors';
import { rsaKeyPair } from '../../../test/helpers/keys';
import { AesGcmCipher } from './cipher';
import { WechatPayDecryptError, WechatPaySignatureError } from './errors';
import { requestMessage } from './formatter';
import { loadPrivateKey, loadPublicKey, rsaSign, rsaVerify } from './rsa';
import { WechatPaySigner } from './signer';
import { PublicKeySource, verifySigned } from './verifier';

// Official values, ../shared/wechatpay-protocol.md section I.
const I2_BODY =
  '{"appid":"wxd678efh567hg6787","mchid":"1900007291","description":"Image形象店-深圳腾大-QQ公仔","out_trade_no":"1217752501201407033233368018","notify_url":"https://www.weixin.qq.com/wxpay/pay.php","amount":{"total":100,"currency":"CNY"},"payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}}';
const I2_SIGNATURE =
  'jnks4dlrPw3ZX+ozVvSK39oa0t7OMBsg83BHAwd8BRdUFiVaQNTLTvci+wURgP1OQBbKYhFGvt7iqYpDSTQkp7Uq1sltaQKyncCyrA1g88m5bsKERQfPyT0ahSwKTYJ1CAn9QiJuSJRq1QsQs07eehbU/k9BCS51jTyc1Jpsi2H77HF9f/BnjXAOP3/sPObg6V5Ee4EzwLox684hhuMuIwHo7D8KFk3LIHOKDcNI4It1aCXydFWNpNK+SG86VUDe5kwoDpw4Ulqfu9z8OFDGbDs9TCxEv8iqQzbpxOlEVoOe2kalSYM5kApQb3nZcxdUtoE0liJGW3RGUNE0t4v01A==';
const I4 = {
  timestamp: '1722850421',
  nonce: 'd824f2e086d3c1df967785d13fcd22ef',
  body: '{"code_url":"weixin://wxpay/bizpayurl?pr=JyC91EIz1"}',
  serial: 'PUB_KEY_ID_0000000000000024101100397200000006',
  signature:
    'mfI1CPqvBrgcXfgXMFjdNIhBf27ACE2YyeWsWV9ZI7T7RU0vHvbQpu9Z32ogzc+k8ZC5n3kz7h70eWKjgqNdKQF0eRp8mVKlmfzMLBVHbssB9jEZEDXThOX1XFqX7s7ymia1hoHQxQagPGzkdWxtlZPZ4ZPvr1RiqkgAu6Is8MZgXXrRoBKqjmSdrP1N7uxzJ/cjfSiis9FiLjuADoqmQ1P7p2N876YPAol7Rn0+GswwAwxldbdLrmVSjfytfSBJFqTMHn4itojgxSWWN1byuckQt8hSTEv/Lg97QoeGniYP17T80pJeQyL3b+295FPHSO2AtvCgyIbKMZ0BALilAA==',
};

describe('request signing (official vector I.2)', () => {
  it('reproduces the documented signature and Authorization header', () => {
    const signer = new WechatPaySigner('1900007291', '408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB', DOC_MERCHANT_PRIVATE_KEY);
    const header = signer.authorization('POST', '/v3/pay/transactions/jsapi', I2_BODY, 1554208460, '593BEC0C930BF1AFEB40B4A08C8FB242');
    expect(header).toBe(
      `WECHATPAY2-SHA256-RSA2048 mchid="1900007291",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",signature="${I2_SIGNATURE}",timestamp="1554208460",serial_no="408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB"`,
    );
  });

  it('builds the five-line message with a trailing newline, empty body for GET', () => {
    expect(requestMessage('get', '/v3/certificates', 1721639012, '0deQ381ci7pNj9lUyMHW', '')).toBe(
      'GET\n/v3/certificates\n1721639012\n0deQ381ci7pNj9lUyMHW\n\n',
    );
  });

  it('loads PKCS#8 and PKCS#1 private keys to the same signatures', () => {
    const pair = rsaKeyPair();
    const a = rsaSign('hello', loadPrivateKey(pair.privateKeyPem));
    const b = rsaSign('hello', loadPrivateKey(pair.privateKeyPkcs1Pem));
    expect(a).toBe(b);
    expect(rsaVerify('hello', a, loadPublicKey(pair.publicKeyPem))).toBe(true);
    expect(() => loadPrivateKey('-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----')).toThrow();
  });

  it('signs with the doc key what the doc public key verifies (PKCS#1 v1.5, not PSS)', () => {
    const sig = rsaSign('abc', loadPrivateKey(DOC_MERCHANT_PRIVATE_KEY));
    expect(Buffer.from(sig, 'base64')).toHaveLength(256);
    expect(rsaVerify('abc', sig, loadPublicKey(DOC_MERCHANT_PUBLIC_KEY))).toBe(true);
  });
});

describe('response verification (official vector I.4)', () => {
  const keys = new PublicKeySource(I4.serial, DOC_WECHATPAY_PUBLIC_KEY);
  const now = Number(I4.timestamp) + 10;
  const headers = { timestamp: I4.timestamp, nonce: I4.nonce, signature: I4.signature, serial: I4.serial };

  it('accepts the documented response', async () => {
    await expect(verifySigned(headers, Buffer.from(I4.body), keys, now)).resolves.toBe(I4.serial);
  });

  const reject = async (h: typeof headers, body: string, at: number, reason: string) => {
    const error = await verifySigned(h, Buffer.from(body), keys, at).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WechatPaySignatureError);
    expect((error as WechatPaySignatureError).reason).toBe(reason);
  };

  it.each(['timestamp', 'nonce', 'signature', 'serial'] as const)('rejects a missing %s header', async (name) => {
    await reject({ ...headers, [name]: undefined } as unknown as typeof headers, I4.body, now, 'missing_header');
  });

  it('rejects a body altered by one byte', async () => {
    await reject(headers, I4.body.replace('JyC91EIz1', 'JyC91EIz2'), now, 'bad_signature');
    await reject(headers, I4.body + ' ', now, 'bad_signature');
  });

  it('rejects altered nonce, timestamp and signature', async () => {
    await reject({ ...headers, nonce: I4.nonce.replace('d8', 'd9') }, I4.body, now, 'bad_signature');
    await reject({ ...headers, timestamp: String(Number(I4.timestamp) + 1) }, I4.body, now, 'bad_signature');
    await reject({ ...headers, signature: 'A' + I4.signature.slice(1) }, I4.body, now, 'bad_signature');
    await reject({ ...headers, signature: 'not base64 at all!' }, I4.body, now, 'bad_signature');
    await reject({ ...headers, timestamp: '17228504210000x' }, I4.body, now, 'bad_timestamp');
  });

  it('rejects a timestamp 5 minutes or more away, either side', async () => {
    await reject(headers, I4.body, Number(I4.timestamp) + 300, 'stale_timestamp');
    await reject(headers, I4.body, Number(I4.timestamp) - 300, 'stale_timestamp');
    await expect(verifySigned(headers, Buffer.from(I4.body), keys, Number(I4.timestamp) + 299)).resolves.toBeDefined();
  });

  it('rejects an unknown serial', async () => {
    await reject({ ...headers, serial: 'PUB_KEY_ID_0000000000000000000000000000000000' }, I4.body, now, 'unknown_serial');
  });

  it('rejects the signature probe', async () => {
    await reject({ ...headers, signature: 'WECHATPAY/SIGNTEST/' + I4.signature }, I4.body, now, 'signature_probe');
  });
});

describe('AES-256-GCM (vectors I.7)', () => {
  const cipher = new AesGcmCipher('0123456789abcdef0123456789abcdef');

  it('decrypts the reference ciphertexts', () => {
    expect(cipher.decrypt('VhYUU1Jc4fTb88TdoPtzI4XVY+rq', '000000000000', '').toString()).toBe('hello');
    expect(cipher.decrypt('+P25zKzm5r1bxELyaArjcmrNEAlHvl/1jxiT', '61f9c719728a', 'certificate').toString()).toBe('{"ok":true}');
  });

  it('turns an altered tag, ciphertext, nonce, AAD or key into a typed error', () => {
    const good = Buffer.from('+P25zKzm5r1bxELyaArjcmrNEAlHvl/1jxiT', 'base64');
    const flip = (i: number) => {
      const copy = Buffer.from(good);
      copy[i] ^= 1;
      return copy.toString('base64');
    };
    expect(() => cipher.decrypt(flip(good.length - 1), '61f9c719728a', 'certificate')).toThrow(WechatPayDecryptError);
    expect(() => cipher.decrypt(flip(0), '61f9c719728a', 'certificate')).toThrow(WechatPayDecryptError);
    expect(() => cipher.decrypt(good.toString('base64'), '61f9c719728b', 'certificate')).toThrow(WechatPayDecryptError);
    expect(() => cipher.decrypt(good.toString('base64'), '61f9c719728a', 'transaction')).toThrow(WechatPayDecryptError);
    expect(() => new AesGcmCipher('fedcba9876543210fedcba9876543210').decrypt(good.toString('base64'), '61f9c719728a', 'certificate')).toThrow(
      WechatPayDecryptError,
    );
    expect(() => cipher.decrypt('AAAA', '61f9c719728a', '')).toThrow(WechatPayDecryptError);
  });

  it('rejects a forged tag that a decryptor without final() would accept', () => {
    // Same keystream, attacker-chosen plaintext, garbage tag: update() alone yields the forgery.
    const key = Buffer.from('0123456789abcdef0123456789abcdef');
    const c = createCipheriv('aes-256-gcm', key, Buffer.from('000000000000'));
    const forged = Buffer.concat([c.update('HACKED'), Buffer.alloc(16)]);
    expect(() => cipher.decrypt(forged.toString('base64'), '000000000000', '')).toThrow(WechatPayDecryptError);
  });

  it('checks the resource algorithm', () => {
    const resource = cipher.encrypt('{"a":1}', 'transaction');
    expect(cipher.decryptJson(resource)).toEqual({ a: 1 });
    expect(() => cipher.decryptResource({ ...resource, algorithm: 'AEAD_AES_128_GCM' })).toThrow(/unsupported resource algorithm/);
  });
});
