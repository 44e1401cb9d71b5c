// Interop: an independent WeChat Pay SDK from npm (wechatpay-axios-plugin) talks to the sandbox with its
// own signing and verifies the sandbox's answers and notifications with its own code.
import { Aes, Formatter, Rsa, Wechatpay } from 'wechatpay-axios-plugin';
import { NotifyReceiver } from '../helpers/receiver';
import { SandboxTestApp, startSandboxApp, tradeNo } from './sandbox-app';

describe('wechatpay-axios-plugin against the sandbox', () => {
  let t: SandboxTestApp;
  let receiver: NotifyReceiver;
  let notifyUrl: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the plugin's chained client is untyped
  let wxpay: any;
  let paidNo = '';

  beforeAll(async () => {
    t = await startSandboxApp({ env: { SANDBOX_REFUND_DELAY: '0s' } });
    receiver = new NotifyReceiver();
    notifyUrl = await receiver.start();
    wxpay = new Wechatpay({
      mchid: t.keystore.mchid,
      serial: t.keystore.merchant.certSerial,
      privateKey: t.keystore.merchant.privateKeyPem,
      certs: { [t.keystore.publicKey.id]: t.keystore.publicKey.publicKeyPem },
      baseURL: `${t.baseUrl}/sandbox/`,
    });
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.stop();
  });

  it('prepays, queries, closes and refunds with the plugin, which verifies every signed answer', async () => {
    const no = tradeNo('AXI');
    paidNo = no;
    const prepay = await wxpay.v3.pay.transactions.jsapi.post({
      appid: t.keystore.appid,
      mchid: t.keystore.mchid,
      description: 'interop',
      out_trade_no: no,
      notify_url: notifyUrl,
      amount: { total: 321, currency: 'CNY' },
      payer: { openid: 'o_interop' },
    });
    expect(prepay.status).toBe(200);
    expect(prepay.data.prepay_id).toMatch(/^wx/);

    const query = await wxpay.v3.pay.transactions['out-trade-no']['{out_trade_no}'].get({ params: { mchid: t.keystore.mchid }, out_trade_no: no });
    expect(query.data).toMatchObject({ out_trade_no: no, trade_state: 'NOTPAY' });

    expect((await t.control.pay(prepay.data.prepay_id)).result).toBe('ok');
    const refund = await wxpay.v3.refund.domestic.refunds.post({
      out_trade_no: no,
      out_refund_no: `${no}R`,
      amount: { refund: 21, total: 321, currency: 'CNY' },
    });
    expect(refund.data).toMatchObject({ status: 'PROCESSING', amount: { refund: 21 } });

    const other = tradeNo('AXC');
    await wxpay.v3.pay.transactions.jsapi.post({
      appid: t.keystore.appid,
      mchid: t.keystore.mchid,
      description: 'interop close',
      out_trade_no: other,
      notify_url: notifyUrl,
      amount: { total: 1 },
      payer: { openid: 'o_interop' },
    });
    const close = await wxpay.v3.pay.transactions['out-trade-no']['{out_trade_no}'].close.post({ mchid: t.keystore.mchid }, { out_trade_no: other });
    expect(close.status).toBe(204);
  });

  it('sees its own verifier reject an answer signed with another key', async () => {
    const strict = new Wechatpay({
      mchid: t.keystore.mchid,
      serial: t.keystore.merchant.certSerial,
      privateKey: t.keystore.merchant.privateKeyPem,
      certs: { [t.keystore.publicKey.id]: t.keystore.merchant.publicKeyPem },
      baseURL: `${t.baseUrl}/sandbox/`,
    });
    // (A signed 2xx answer: in the default public-key mode /v3/certificates is a 404, as at WeChat.)
    await expect(
      strict.v3.pay.transactions['out-trade-no']['{out_trade_no}'].get({ params: { mchid: t.keystore.mchid }, out_trade_no: paidNo }),
    ).rejects.toThrow(/Verify the response's data/);
  });

  it('decrypts and verifies a sandbox notification with the plugin', async () => {
    await t.control.waitForNotification({ outTradeNo: paidNo });
    const r = receiver.received.find((x) => JSON.parse(x.body.toString()).event_type === 'TRANSACTION.SUCCESS')!;
    const ok = Rsa.verify(
      Formatter.response(String(r.headers['wechatpay-timestamp']), String(r.headers['wechatpay-nonce']), r.body.toString('utf8')),
      String(r.headers['wechatpay-signature']),
      Rsa.from(t.keystore.publicKey.publicKeyPem, Rsa.KEY_TYPE_PUBLIC),
    );
    expect(ok).toBe(true);
    const { resource } = JSON.parse(r.body.toString());
    const plain = JSON.parse(Aes.AesGcm.decrypt(resource.ciphertext, t.keystore.apiv3Key, resource.nonce, resource.associated_data));
    expect(plain).toMatchObject({ trade_state: 'SUCCESS', amount: { total: 321 }, payer: { openid: 'o_interop' } });
  });
});
