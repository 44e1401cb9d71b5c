import { getDataSourceToken } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { loadOrCreateSandboxKeystore, loadOrCreateSandboxTls, sandboxApiV2Key, SandboxKeystore, SandboxTls } from '../../src/sandbox/keystore';
import { signV2 } from '../../src/wechat/pay-v2/sign';
import { buildV2Xml } from '../../src/wechat/pay-v2/xml';
import { Login } from '../helpers/login';
import { selfMadeCertificate, tlsPost } from '../helpers/mtls';
import { Shop } from '../helpers/shop';

/*
 * APIv2 refunds over mutual TLS (issue 14): the app's refunds reach the sandbox's /secapi/pay/refund
 * only through its mutual-TLS port, presenting the merchant certificate; a refund request without the
 * certificate, with a self-made one, or over plain http is refused and changes nothing, neither at the
 * sandbox nor in our database.
 */
describe('APIv2 refunds over mutual TLS', () => {
  let shop: Shop;
  let shopper: Login;
  let productId: number;
  let keystore: SandboxKeystore;
  let tls: SandboxTls;
  let secapiBase: string;

  beforeAll(async () => {
    shop = await Shop.start({ env: { WECHATPAY_API_VERSION: 'v2', SANDBOX_REFUND_DELAY: '1s' } });
    shopper = await shop.login('o_refund_mtls');
    productId = (await shop.product('双向证书退款', 500)).id;
    keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
    tls = await loadOrCreateSandboxTls(shop.t.config.sandbox.dataDir);
    secapiBase = (await shop.sandbox.merchant()).secapiBase;
  });
  afterAll(() => shop?.close());

  const refundRows = async (outTradeNo: string) => {
    const ds = shop.t.app.get<DataSource>(getDataSourceToken());
    const rows: unknown[] = await ds.query('SELECT id FROM refunds WHERE out_trade_no = ?', [outTradeNo]);
    return rows.length;
  };
  const sandboxHasRefund = async (outRefundNo: string) => (await fetch(`${shop.baseUrl}/sandbox/control/refunds/${outRefundNo}`)).status !== 404;

  /** A refund request as the merchant signs it (HMAC-SHA256, the app's sign type). */
  function refundXml(outTradeNo: string, outRefundNo: string, fee: number): string {
    const fields = { appid: keystore.appid, mch_id: keystore.mchid, nonce_str: `n${Date.now()}`, sign_type: 'HMAC-SHA256', out_trade_no: outTradeNo, out_refund_no: outRefundNo, total_fee: fee, refund_fee: fee };
    return buildV2Xml({ ...fields, sign: signV2(fields, sandboxApiV2Key(keystore), 'HMAC-SHA256') });
  }

  it("the shop's v2 refund goes to the sandbox's mutual-TLS port with the merchant certificate, and settles", async () => {
    expect(secapiBase).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/sandbox$/);
    const no = await shop.paidOrder(shopper, [{ productId, quantity: 1 }]);
    const before = await shop.sandbox.secapiCounts();
    const r = await shop.admin().post('/admin/refunds').send({ outTradeNo: no, amount: 200, reason: '双向TLS' }).expect(201);
    expect((await shop.sandbox.secapiCounts()).served).toBe(before.served + 1);
    await shop.sandbox.waitForNotification({ outRefundNo: r.body.outRefundNo });
    const order = (await shop.admin().get(`/admin/orders/${no}`).expect(200)).body;
    expect(order.refundedTotal).toBe(200);
    expect((await shop.sandbox.refund(r.body.outRefundNo)).status).toBe('SUCCESS');
  });

  it('a refund request without the client certificate, with a self-made one, or over plain http is refused, and nothing is refunded', async () => {
    const no = await shop.paidOrder(shopper, [{ productId, quantity: 1 }]);
    const before = await shop.sandbox.secapiCounts();
    const url = `${secapiBase}/secapi/pay/refund`;

    const none = await tlsPost(url, refundXml(no, `${no}-A`, 500), { ca: tls.ca.certificatePem });
    expect(none.status).toBe(400);
    expect(none.text).toContain('No required SSL certificate was sent');

    const selfMade = await selfMadeCertificate(keystore.mchid, keystore.merchant.certSerial, keystore.merchant);
    const forged = await tlsPost(url, refundXml(no, `${no}-B`, 500), { ca: tls.ca.certificatePem, cert: selfMade.certPem, key: selfMade.keyPem });
    expect(forged.status).toBe(400);
    expect(forged.text).toContain('The SSL certificate error');

    const plain = await fetch(`${shop.baseUrl}/sandbox/secapi/pay/refund`, { method: 'POST', headers: { 'Content-Type': 'text/xml' }, body: refundXml(no, `${no}-C`, 500) });
    expect(await plain.text()).toContain('<return_code><![CDATA[FAIL]]></return_code>');

    expect(await shop.sandbox.secapiCounts()).toEqual({ served: before.served, noCertificate: before.noCertificate + 1, badCertificate: before.badCertificate + 1 });
    for (const suffix of ['A', 'B', 'C']) expect(await sandboxHasRefund(`${no}-${suffix}`)).toBe(false);
    expect(await refundRows(no)).toBe(0);
    // The whole amount is still refundable, at WeChat and here.
    const full = await shop.admin().post('/admin/refunds').send({ outTradeNo: no, amount: 500, reason: '全额' }).expect(201);
    await shop.sandbox.waitForNotification({ outRefundNo: full.body.outRefundNo });
    expect((await shop.admin().get(`/admin/orders/${no}`).expect(200)).body.refundedTotal).toBe(500);
  });
});
