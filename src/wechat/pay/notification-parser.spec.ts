import { encryptResource, signResponse } from '../../../test/helpers/fake-wechatpay';
import { rsaKeyPair } from '../../../test/helpers/keys';
import { AesGcmCipher } from './cipher';
import { WechatPayDecryptError, WechatPaySignatureError } from './errors';
import { WechatPayNotificationParser } from './notification-parser';
import { PublicKeySource } from './verifier';

describe('WechatPayNotificationParser', () => {
  const apiv3Key = 'K'.repeat(32);
  const keys = rsaKeyPair();
  const id = 'PUB_KEY_ID_0000000000000000000000000002';
  const now = 1_795_000_000;
  const parser = new WechatPayNotificationParser(new PublicKeySource(id, keys.publicKeyPem), new AesGcmCipher(apiv3Key), () => now);

  function notification(resourcePlain: object, eventType = 'TRANSACTION.SUCCESS', associatedData = 'transaction') {
    const body = Buffer.from(
      JSON.stringify({
        id: 'EV-1',
        create_time: '2026-11-24T08:00:00+08:00',
        resource_type: 'encrypt-resource',
        event_type: eventType,
        summary: '支付成功',
        resource: { ...encryptResource(apiv3Key, JSON.stringify(resourcePlain), associatedData), original_type: associatedData },
      }),
    );
    const h = signResponse({ serial: id, privateKeyPem: keys.privateKeyPem }, body, now);
    const headers = Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));
    return { body, headers };
  }

  it('verifies the raw bytes and decrypts transactions and refunds', async () => {
    const pay = notification({ out_trade_no: 'T1', trade_state: 'SUCCESS', amount: { total: 100 } });
    await expect(parser.parse(pay.headers, pay.body)).resolves.toMatchObject({ kind: 'transaction', resource: { out_trade_no: 'T1' } });
    const refund = notification({ out_refund_no: 'R1', refund_status: 'SUCCESS' }, 'REFUND.SUCCESS', 'refund');
    await expect(parser.parse(refund.headers, refund.body)).resolves.toMatchObject({ kind: 'refund', resource: { refund_status: 'SUCCESS' } });
  });

  it('rejects a re-serialised body (whitespace matters) and a tampered ciphertext', async () => {
    const n = notification({ out_trade_no: 'T1' });
    const reserialised = Buffer.from(JSON.stringify(JSON.parse(n.body.toString()), null, 1));
    await expect(parser.verify(n.headers, reserialised)).rejects.toBeInstanceOf(WechatPaySignatureError);

    const envelope = JSON.parse(n.body.toString());
    const data = Buffer.from(envelope.resource.ciphertext, 'base64');
    data[0] ^= 0xff;
    envelope.resource.ciphertext = data.toString('base64');
    expect(() => parser.decrypt(envelope)).toThrow(WechatPayDecryptError);
  });
});
