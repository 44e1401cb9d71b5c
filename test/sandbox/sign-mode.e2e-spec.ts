import { KeyObject, X509Certificate, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SandboxKeystore, loadOrCreateSandboxKeystore, sandboxKeystoreFiles } from '../../src/sandbox/keystore';
import { NotificationAttempt } from '../helpers/sandbox-control';
import { TestMerchant } from '../helpers/merchant-signer';
import { ADMIN_TOKEN, Shop } from '../helpers/shop';
import { TestApp, createTestDatabase, startTestApp, tempDir } from '../helpers/test-app';

/*
 * SANDBOX_SIGN_MODE: the sandbox signs like WeChat during a merchant's certificate → public-key
 * migration (and before and after it), and our app — configured as such a merchant is — pays through it.
 */

interface ModeApp {
  shop: Shop;
  keystore: SandboxKeystore;
  merchant: TestMerchant;
  certificateKey: KeyObject;
  publicKey: KeyObject;
}

async function start(mode: string): Promise<ModeApp> {
  const shop = await Shop.start({ env: { SANDBOX_SIGN_MODE: mode, SANDBOX_TIME_SCALE: '100' } });
  const keystore = await loadOrCreateSandboxKeystore(shop.t.config.sandbox.dataDir);
  return {
    shop,
    keystore,
    merchant: new TestMerchant(shop.baseUrl, keystore),
    certificateKey: new X509Certificate(keystore.platform.certificatePem).publicKey,
    publicKey: createPublicKey(keystore.publicKey.publicKeyPem),
  };
}

/** Checkout end to end: login → order → prepay (our client verifies the answer) → paid at WeChat → the notification makes it PAID. */
async function checkout(m: ModeApp, openid: string): Promise<{ outTradeNo: string; attempts: NotificationAttempt[] }> {
  const product = await m.shop.product(`签名模式测试 ${openid}`, 1200, 5);
  const shopper = await m.shop.login(openid);
  const outTradeNo = await m.shop.paidOrder(shopper, [{ productId: product.id, quantity: 1 }]);
  const attempts = await m.shop.sandbox.waitForNotification({ outTradeNo }, (a) => a.some((x) => x.ok));
  return { outTradeNo, attempts };
}

describe('SANDBOX_SIGN_MODE=certificate (a merchant still on platform certificates)', () => {
  let m: ModeApp;
  beforeAll(async () => (m = await start('certificate')));
  afterAll(() => m?.shop.close());

  it('pays end to end with the app knowing only the downloaded platform certificate: answers and notifications are signed with it', async () => {
    expect(m.shop.t.config.sandbox.signMode).toBe('certificate');
    const { attempts } = await checkout(m, 'o_sign_cert');
    expect(attempts.filter((a) => a.ok).map((a) => a.serial)).toEqual([m.keystore.platform.serial]);
    expect(await m.shop.sandbox.callsTo('v3/certificates')).toBeGreaterThanOrEqual(1);

    // Even a request naming the public key is answered with the certificate: the merchant has no other.
    const answer = await m.merchant.request('GET', `/v3/certificates?algorithm_type=RSA`, undefined, { headers: { 'Wechatpay-Serial': m.keystore.publicKey.id } });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('wechatpay-serial')).toBe(m.keystore.platform.serial);
    expect(m.merchant.responseVerifies(answer, m.certificateKey)).toBe(true);
  });
});

describe('SANDBOX_SIGN_MODE=publickey (a merchant with only the WeChat Pay public key)', () => {
  let m: ModeApp;
  beforeAll(async () => (m = await start('publickey')));
  afterAll(() => m?.shop.close());

  it('pays end to end with the app configured only with the public key, never asking for platform certificates', async () => {
    expect(m.shop.t.config.sandbox.signMode).toBe('public_key');
    const { attempts } = await checkout(m, 'o_sign_pub');
    expect(attempts.filter((a) => a.ok).map((a) => a.serial)).toEqual([m.keystore.publicKey.id]);
    expect(await m.shop.sandbox.callsTo('v3/certificates')).toBe(0);
  });

  it('answers /v3/certificates as WeChat does for such merchants: a signed 404 RESOURCE_NOT_EXISTS "无可用的平台证书…" (even to a request naming the old certificate)', async () => {
    for (const headers of [{}, { 'Wechatpay-Serial': m.keystore.platform.serial }] as Array<Record<string, string>>) {
      const answer = await m.merchant.request('GET', '/v3/certificates?algorithm_type=RSA', undefined, { headers });
      expect(answer.status).toBe(404);
      expect(answer.json).toEqual({ code: 'RESOURCE_NOT_EXISTS', message: expect.stringMatching(/^无可用的平台证书，请在商户平台-API安全申请使用微信支付公钥/) });
      expect(answer.headers.get('wechatpay-serial')).toBe(m.keystore.publicKey.id);
      expect(m.merchant.responseVerifies(answer, m.publicKey)).toBe(true);
    }
  });

  it('writes the public key and its PUB_KEY_ID as files another SDK can be configured with, and they verify what the sandbox signs', async () => {
    const files = sandboxKeystoreFiles(m.shop.t.config.sandbox.dataDir);
    const id = readFileSync(files.wechatpayPublicKeyId, 'utf8').trim();
    const key = createPublicKey(readFileSync(files.wechatpayPublicKey, 'utf8'));
    expect(id).toMatch(/^PUB_KEY_ID_\d+$/);
    expect(id).toBe(m.keystore.publicKey.id);
    const answer = await m.merchant.request('GET', '/v3/pay/transactions/out-trade-no/NOSUCHORDER1?mchid=' + m.keystore.mchid);
    expect(answer.headers.get('wechatpay-serial')).toBe(id);
    expect(m.merchant.responseVerifies(answer, key)).toBe(true);
  });
});

describe('SANDBOX_SIGN_MODE=migration (a merchant midway from platform certificate to public key)', () => {
  let m: ModeApp;
  beforeAll(async () => (m = await start('migration')));
  afterAll(() => m?.shop.close());

  it('signs each answer with the key the request names in Wechatpay-Serial, and with the certificate when it names none', async () => {
    const path = `/v3/pay/transactions/out-trade-no/NOSUCHORDER2?mchid=${m.keystore.mchid}`;
    const cases: Array<[Record<string, string>, string, KeyObject, KeyObject]> = [
      [{ 'Wechatpay-Serial': m.keystore.publicKey.id }, m.keystore.publicKey.id, m.publicKey, m.certificateKey],
      [{ 'Wechatpay-Serial': m.keystore.platform.serial }, m.keystore.platform.serial, m.certificateKey, m.publicKey],
      [{}, m.keystore.platform.serial, m.certificateKey, m.publicKey],
    ];
    for (const [headers, serial, signer, other] of cases) {
      for (const answer of [await m.merchant.request('GET', path, undefined, { headers }), await m.merchant.request('GET', '/v3/certificates', undefined, { headers })]) {
        expect(answer.headers.get('wechatpay-serial')).toBe(serial);
        expect(m.merchant.responseVerifies(answer, signer)).toBe(true);
        expect(m.merchant.responseVerifies(answer, other)).toBe(false);
      }
    }
    // The platform certificate is still downloadable during the migration.
    const certs = await m.merchant.request('GET', '/v3/certificates', undefined, { headers: { 'Wechatpay-Serial': m.keystore.publicKey.id } });
    expect(certs.status).toBe(200);
    expect(certs.json.data.map((c: { serial_no: string }) => c.serial_no)).toEqual([m.keystore.platform.serial]);
  });

  it('pays end to end, and notifications signed with either key (at random) all verify at the app', async () => {
    const { outTradeNo } = await checkout(m, 'o_sign_mig');
    // Deliver the notification again until both keys have signed some; the app accepts every one.
    const seen = new Set<string>();
    let redelivered: NotificationAttempt[] = [];
    for (let round = 0; round < 5 && seen.size < 2; round++) {
      redelivered = await m.shop.sandbox.deliver({ outTradeNo }, { times: 12 });
      expect(redelivered.filter((a) => !a.ok)).toEqual([]);
      redelivered.forEach((a) => seen.add(a.serial!));
    }
    expect([...seen].sort()).toEqual([m.keystore.platform.serial, m.keystore.publicKey.id].sort());
    // A certificate-signed notification made the app fetch the platform certificate (it names the public key in its requests).
    expect(await m.shop.sandbox.callsTo('v3/certificates')).toBeGreaterThanOrEqual(1);
    expect(await m.shop.status(outTradeNo)).toBe('PAID');
  });
});

describe('an app without the public key against a public-key-only merchant (SANDBOX_SIGN_MODE=publickey)', () => {
  let wechat: ModeApp;
  let app: TestApp;
  beforeAll(async () => {
    wechat = await start('publickey');
    const shared = `${wechat.shop.baseUrl}/sandbox`;
    // Same merchant (the keystore's directory), but configured like a legacy merchant: no public key.
    app = await startTestApp({
      dataDir: wechat.shop.t.dataDir,
      database: await createTestDatabase(tempDir()),
      captureLogs: true,
      env: { SANDBOX_SIGN_MODE: 'certificate', WECHATPAY_API_BASE: shared, WECHAT_API_BASE: shared, WECHAT_OPEN_BASE: shared, ADMIN_TOKENS: ADMIN_TOKEN, SEED_DEMO_PRODUCTS: 'false' },
    });
  });
  afterAll(async () => {
    await app?.close();
    await wechat?.shop.close();
  });

  it('a prepay whose answer is signed with a public key it lacks is a 5xx (not a 401), logged with what to configure', async () => {
    const shop = new Shop(app);
    const product = await shop.product('公钥商户', 100);
    const shopper = await shop.login('o_sign_legacy');
    const no = await shop.placeOrder(shopper, [{ productId: product.id, quantity: 1 }]);
    const pay = await shop.http().post(`/orders/${no}/pay`).set(shopper.headers);
    expect(pay.status).toBeGreaterThanOrEqual(500);
    const logged = app.logs.filter((l) => Number(l.level) >= 50 && JSON.stringify(l).includes(wechat.keystore.publicKey.id));
    expect(logged.length).toBeGreaterThanOrEqual(1);
    expect(JSON.stringify(logged[0])).toMatch(/switched to public-key mode; set WECHATPAY_PUBLIC_KEY_ID and WECHATPAY_PUBLIC_KEY_PATH/);
  });
});
