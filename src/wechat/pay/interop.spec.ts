// Interop with an independent WeChat Pay implementation from npm (wechatpay-axios-plugin): whatever it
// signs we verify, whatever we sign it verifies, whatever it encrypts we decrypt.
import { Aes, Formatter, Rsa } from 'wechatpay-axios-plugin';
import { rsaKeyPair, TestKeyPair } from '../../../test/helpers/keys';
import { AesGcmCipher } from './cipher';
import { WechatPaySigner } from './signer';
import { PublicKeySource, verifySigned } from './verifier';

describe('interop with wechatpay-axios-plugin', () => {
  let keys: TestKeyPair;
  beforeAll(() => (keys = rsaKeyPair()));

  it('verifies a response signature made by the plugin', async () => {
    const body = '{"prepay_id":"wx201410272009395522657a690389285100","中文":"支付成功"}';
    const timestamp = String(Formatter.timestamp());
    const nonce = Formatter.nonce();
    const signature = Rsa.sign(Formatter.response(timestamp, nonce, body), Rsa.from(keys.privateKeyPem, Rsa.KEY_TYPE_PRIVATE));
    const source = new PublicKeySource('PUB_KEY_ID_0000000000000000000000000001', keys.publicKeyPem);
    await expect(
      verifySigned({ timestamp, nonce, signature, serial: source.keyId }, Buffer.from(body), source, Number(timestamp)),
    ).resolves.toBe(source.keyId);
  });

  it('produces request signatures and Authorization headers the plugin verifies', () => {
    const signer = new WechatPaySigner('1900000109', 'ABCDEF0123456789ABCDEF0123456789ABCDEF01', keys.privateKeyPem);
    const body = '{"mchid":"1900000109","description":"测试商品"}';
    const header = signer.authorization('POST', '/v3/pay/transactions/jsapi', body, 1732406400, 'NONCE123');
    const signature = /signature="([^"]+)"/.exec(header)![1];
    const message = Formatter.request('POST', '/v3/pay/transactions/jsapi', 1732406400, 'NONCE123', body);
    expect(Rsa.verify(message, signature, Rsa.from(keys.publicKeyPem, Rsa.KEY_TYPE_PUBLIC))).toBe(true);
    // Same five pairs as the plugin's header (the order of pairs is not significant to WeChat).
    const pairs = (h: string) => h.replace(/^WECHATPAY2-SHA256-RSA2048 /, '').split(',').sort();
    expect(pairs(header)).toEqual(
      pairs(Formatter.authorization('1900000109', 'NONCE123', signature, 1732406400, 'ABCDEF0123456789ABCDEF0123456789ABCDEF01')),
    );
  });

  it('decrypts a resource the plugin encrypts, and the plugin decrypts ours', () => {
    const apiv3Key = '0123456789abcdef0123456789abcdef';
    const plaintext = '{"out_trade_no":"T1","trade_state":"SUCCESS","amount":{"total":100}}';
    const ciphertext = Aes.AesGcm.encrypt(plaintext, apiv3Key, 'abcdefghijkl', 'transaction');
    const ours = new AesGcmCipher(apiv3Key);
    expect(ours.decrypt(ciphertext, 'abcdefghijkl', 'transaction').toString('utf8')).toBe(plaintext);
    const mine = ours.encrypt(plaintext, 'refund', 'mnopqrstuvwx');
    expect(Aes.AesGcm.decrypt(mine.ciphertext, apiv3Key, mine.nonce, 'refund')).toBe(plaintext);
  });
});
