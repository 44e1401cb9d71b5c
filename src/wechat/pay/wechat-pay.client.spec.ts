import { constants, createCipheriv, createHash, publicEncrypt, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { TestingModule } from '@nestjs/testing';
import { FakeWechatPay, encryptResource, signResponse } from '../../../test/helpers/fake-wechatpay';
import { TestKeyPair, randomSerial, rsaKeyPair, selfSignedCertificate } from '../../../test/helpers/keys';
import { wechatTestingModule } from '../../../test/helpers/wechat-module';
import { FixedClock } from '../../common/clock';
import { loadConfig } from '../../config/load-config';
import { BODY_IDLE_TIMEOUT, readAll } from '../http/transport';
import { WechatCredentials } from '../wechat-credentials';
import { CertificateManager } from './certificates';
import { Logger } from '@nestjs/common';
import { WechatPayApiError, WechatPayBadAnswerError, WechatPayBillDecryptError, WechatPayBillHashError, WechatPayNetworkError } from './errors';
import { WechatPayNotificationParser } from './notification-parser';
import { WechatPayClient } from './wechat-pay.client';
import { loadPublicKey, rsaVerify } from './rsa';

const APIV3_KEY = 'a'.repeat(16) + 'b'.repeat(16);

let merchant: TestKeyPair;
let platformA: TestKeyPair;
let platformB: TestKeyPair;
let wechatpayPublic: TestKeyPair;

beforeAll(() => {
  merchant = rsaKeyPair();
  platformA = rsaKeyPair();
  platformB = rsaKeyPair();
  wechatpayPublic = rsaKeyPair();
});

function credentials(extra: Partial<WechatCredentials> = {}): WechatCredentials {
  return {
    appid: 'wx1234567890abcdef',
    appsecret: 's'.repeat(32),
    mchid: '1900000109',
    merchantPrivateKeyPem: merchant.privateKeyPem,
    merchantCertSerial: 'ABCDEF0123456789ABCDEF0123456789ABCDEF01',
    apiv3Key: APIV3_KEY,
    ...extra,
  };
}

const PUB_ID = 'PUB_KEY_ID_0114232134912410000000000000';

describe('WechatPayClient over HTTP (public-key mode)', () => {
  let fake: FakeWechatPay;
  let moduleRef: TestingModule;
  let client: WechatPayClient;
  let clock: FixedClock;
  let fakeBase: string;

  beforeEach(async () => {
    fake = new FakeWechatPay({ serial: PUB_ID, privateKeyPem: wechatpayPublic.privateKeyPem }, () => ({ status: 200, body: '{}' }), merchant.publicKeyPem);
    const base = await fake.listen();
    fakeBase = base;
    const built = await wechatTestingModule({
      env: { WECHATPAY_API_BASE: `${base}/prefix`, WECHAT_HTTP_TIMEOUT: '500ms' },
      credentials: credentials({ wechatpayPublicKey: { id: PUB_ID, pem: wechatpayPublic.publicKeyPem } }),
    });
    moduleRef = built.moduleRef;
    clock = built.clock;
    fake.now = () => clock.nowSeconds();
    client = moduleRef.get(WechatPayClient);
  });

  afterEach(async () => {
    await moduleRef.close();
    await fake.close();
  });

  it('signs the full request-target (base prefix included) over the exact body and verifies the answer', async () => {
    fake.handler = () => ({ status: 200, body: '{"prepay_id":"wx201410272009395522657a690389285100"}' });
    const res = await client.prepayJsapi({
      description: '形象店-QQ公仔',
      out_trade_no: 'T20261124000001',
      notify_url: 'https://shop.example.com/notify',
      amount: { total: 100, currency: 'CNY' },
      payer: { openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' },
    });
    expect(res.prepay_id).toBe('wx201410272009395522657a690389285100');
    const sent = fake.requests[0];
    expect(sent.url).toBe('/prefix/v3/pay/transactions/jsapi');
    expect(sent.authorizationValid).toBe(true);
    expect(sent.headers['content-type']).toBe('application/json');
    expect(JSON.parse(sent.body.toString())).toMatchObject({ appid: 'wx1234567890abcdef', mchid: '1900000109', out_trade_no: 'T20261124000001' });
  });

  it('signs query strings as sent', async () => {
    fake.handler = () => ({ status: 200, body: '{"trade_state":"NOTPAY","out_trade_no":"a b|c","appid":"x","mchid":"y"}' });
    await client.queryByOutTradeNo('a b|c');
    expect(fake.requests[0].url).toBe('/prefix/v3/pay/transactions/out-trade-no/a%20b%7Cc?mchid=1900000109');
    expect(fake.requests[0].authorizationValid).toBe(true);
  });

  it('turns an error body into WechatPayApiError with code, message and Request-ID', async () => {
    fake.handler = () => ({
      status: 400,
      sign: false,
      headers: { 'Request-ID': '08F5-268498688' },
      body: '{"code":"INVALID_REQUEST","message":"请求重入时，参数与首次请求时不一致","detail":{"field":"/amount/total"}}',
    });
    const error = (await client.queryByOutTradeNo('x1234567').catch((e: unknown) => e)) as WechatPayApiError;
    expect(error).toBeInstanceOf(WechatPayApiError);
    expect(error).toMatchObject({ httpStatus: 400, wechatCode: 'INVALID_REQUEST', requestId: '08F5-268498688', status: 502 });
    expect(error.wechatMessage).toContain('参数与首次请求时不一致');
    expect(error.detail).toEqual({ field: '/amount/total' });
  });

  it('rejects a 2xx answer whose signature does not match', async () => {
    fake.handler = () => ({ status: 200, body: '{"trade_state":"SUCCESS"}', signWith: { serial: PUB_ID, privateKeyPem: platformA.privateKeyPem } });
    await expect(client.queryByOutTradeNo('x1234567')).rejects.toMatchObject({ reason: 'bad_signature' });
  });

  it('sends Wechatpay-Serial = the PUB_KEY_ID on every request (WeChat signs its answer with the key the request names)', async () => {
    fake.handler = () => ({ status: 200, body: '{"trade_state":"NOTPAY"}' });
    await client.queryByOutTradeNo('x1234567');
    fake.handler = () => ({ status: 204 });
    await client.closeOrder('x1234567');
    expect(fake.requests.map((r) => r.headers['wechatpay-serial'])).toEqual([PUB_ID, PUB_ID]);
  });

  it('an answer whose signature fails is a 502 WECHATPAY_BAD_SIGNATURE to our caller (not a 401 that logs the admin out), logged at error with the Request-ID', async () => {
    const errors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    try {
      fake.handler = () => ({
        status: 200,
        body: '{"trade_state":"SUCCESS"}',
        headers: { 'Request-ID': '08F5BADSIG-0' },
        signWith: { serial: PUB_ID, privateKeyPem: platformA.privateKeyPem },
      });
      const error = (await client.queryByOutTradeNo('x1234567').catch((e: unknown) => e)) as WechatPayBadAnswerError;
      expect(error).toBeInstanceOf(WechatPayBadAnswerError);
      expect(error).toMatchObject({ status: 502, code: 'WECHATPAY_BAD_SIGNATURE', reason: 'bad_signature', requestId: '08F5BADSIG-0' });
      expect(errors.mock.calls.map((c) => String(c[0])).join('\n')).toContain('request-id=08F5BADSIG-0');
    } finally {
      errors.mockRestore();
    }
  });

  it('refuses an answer with a Wechatpay-Signature-Type other than RSA, and accepts one without the header (absent = RSA)', async () => {
    const key = { serial: PUB_ID, privateKeyPem: wechatpayPublic.privateKeyPem };
    fake.handler = () => ({ status: 200, body: '{"trade_state":"NOTPAY"}', headers: { 'Wechatpay-Signature-Type': 'WECHATPAY2-SM2-WITH-SM3' }, sign: false });
    const body = Buffer.from('{"trade_state":"NOTPAY"}');
    fake.handler = () => {
      const headers = signResponse(key, body, fake.now());
      return { status: 200, body, sign: false, headers: { ...headers, 'Wechatpay-Signature-Type': 'WECHATPAY2-SM2-WITH-SM3' } };
    };
    await expect(client.queryByOutTradeNo('x1234567')).rejects.toMatchObject({ status: 502, reason: 'unsupported_signature_type' });
    fake.handler = () => {
      const headers: Record<string, string> = signResponse(key, body, fake.now());
      delete headers['Wechatpay-Signature-Type'];
      return { status: 200, body, sign: false, headers };
    };
    await expect(client.queryByOutTradeNo('x1234567')).resolves.toMatchObject({ trade_state: 'NOTPAY' });
  });

  it('refuses a signed non-empty 2xx answer that is not application/json (e.g. a proxy\'s HTML page)', async () => {
    fake.handler = () => ({ status: 200, body: '{"trade_state":"NOTPAY"}', headers: { 'Content-Type': 'text/html' } });
    await expect(client.queryByOutTradeNo('x1234567')).rejects.toMatchObject({ status: 502, code: 'WECHATPAY_BAD_SIGNATURE', reason: 'unexpected_content_type' });
  });

  it('decides gzip from the tar_type asked for, not from a marker in download_url, and sends Accept: */* on the file download', async () => {
    const csv = '\uFEFF交易时间,公众账号ID\r\n`2026-11-23 10:00:00,`wx1234567890abcdef\r\n';
    const sha1 = createHash('sha1').update(csv).digest('hex');
    let gzip = true;
    fake.handler = (req) =>
      req.url.startsWith('/prefix/v3/bill/tradebill')
        ? { status: 200, body: JSON.stringify({ hash_type: 'SHA1', hash_value: sha1, download_url: `${fakeBase}/prefix/v3/billdownload/file?token=${gzip ? 'no-marker' : 'x&tartype=gzip'}` }) }
        : { status: 200, sign: false, headers: { 'Content-Type': 'application/octet-stream' }, body: gzip ? gzipSync(Buffer.from(csv)) : Buffer.from(csv) };
    const zipped = await client.applyTradeBill({ billDate: '2026-11-23', tarType: 'GZIP' });
    expect((await readAll(await client.downloadBill(zipped))).toString('utf8')).toBe(csv);
    expect(fake.requests[1].headers.accept).toBe('*/*');
    gzip = false;
    const plain = await client.applyTradeBill({ billDate: '2026-11-23' });
    expect((await readAll(await client.downloadBill(plain))).toString('utf8')).toBe(csv);
  });

  it('retries a GET after a 500 and does not retry a POST', async () => {
    let calls = 0;
    fake.handler = () => (++calls === 1 ? { status: 500, sign: false, body: '{"code":"SYSTEM_ERROR","message":"busy"}' } : { status: 200, body: '{"trade_state":"NOTPAY"}' });
    await expect(client.queryByOutTradeNo('x1234567')).resolves.toMatchObject({ trade_state: 'NOTPAY' });
    expect(fake.count).toBe(2);
    calls = 0;
    fake.handler = () => ({ status: 500, sign: false, body: '{"code":"SYSTEM_ERROR","message":"busy"}' });
    await expect(client.closeOrder('x1234567')).rejects.toMatchObject({ httpStatus: 500, wechatCode: 'SYSTEM_ERROR' });
    expect(fake.count).toBe(3);
  });

  it('gives up after the per-call timeout with a typed error', async () => {
    fake.handler = () => 'hang';
    const error = (await client.closeOrder('x1234567').catch((e: unknown) => e)) as WechatPayNetworkError;
    expect(error).toBeInstanceOf(WechatPayNetworkError);
    expect(error.timedOut).toBe(true);
    expect(error.sent).toBe(true);
    expect(fake.count).toBe(1); // a POST that left is never repeated
  });

  it('accepts 204 without a body for close', async () => {
    fake.handler = () => ({ status: 204 });
    await expect(client.closeOrder('x1234567')).resolves.toBeUndefined();
    expect(JSON.parse(fake.requests[0].body.toString())).toEqual({ mchid: '1900000109' });
  });

  it('builds the JSAPI invoke parameters with a paySign over appId, timeStamp, nonceStr, package', () => {
    const params = client.buildJsapiInvokeParams('wx201410272009395522657a690389285100', 1554208460, '593BEC0C930BF1AFEB40B4A08C8FB242');
    expect(params).toMatchObject({
      appId: 'wx1234567890abcdef',
      timeStamp: '1554208460',
      nonceStr: '593BEC0C930BF1AFEB40B4A08C8FB242',
      package: 'prepay_id=wx201410272009395522657a690389285100',
      signType: 'RSA',
    });
    const message = `wx1234567890abcdef\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\nprepay_id=wx201410272009395522657a690389285100\n`;
    expect(rsaVerify(message, params.paySign, loadPublicKey(merchant.publicKeyPem))).toBe(true);
  });

  it('downloads a gzip bill, checks the SHA-1 of the plain file and streams the CSV', async () => {
    const csv = '\uFEFF交易时间,公众账号ID\r\n`2026-11-23 10:00:00,`wx1234567890abcdef\r\n';
    const sha1 = createHash('sha1').update(csv).digest('hex');
    fake.handler = (req) =>
      req.url.startsWith('/prefix/v3/bill/tradebill')
        ? { status: 200, body: JSON.stringify({ hash_type: 'SHA1', hash_value: sha1, download_url: `${base()}/prefix/v3/billdownload/file?token=abc&tartype=gzip` }) }
        : { status: 200, sign: false, headers: { 'Content-Type': 'application/octet-stream' }, body: gzipSync(Buffer.from(csv)) };
    const apply = await client.applyTradeBill({ billDate: '2026-11-23', billType: 'ALL', tarType: 'GZIP' });
    expect(fake.requests[0].url).toBe('/prefix/v3/bill/tradebill?bill_date=2026-11-23&bill_type=ALL&tar_type=GZIP');
    const stream = await client.downloadBill(apply);
    expect((await readAll(stream)).toString('utf8')).toBe(csv);
    expect(fake.requests[1].url).toBe('/prefix/v3/billdownload/file?token=abc&tartype=gzip');
    expect(fake.requests[1].authorizationValid).toBe(true);

    const bad = await client.downloadBill({ ...apply, hash_value: '0'.repeat(40) });
    await expect(readAll(bad)).rejects.toBeInstanceOf(WechatPayBillHashError);
  });

  it('downloads an encrypted sub-merchant fund-flow bill: each part decrypted (its key opened with the merchant key), gunzipped, hash-checked, joined in bill_sequence order; a tampered part or a key for another merchant fails', async () => {
    // Parts of ~100 KB each once gzipped: they arrive in many chunks, so the held-back GCM tag crosses chunk boundaries.
    const texts = [randomBytes(150_000).toString('hex'), randomBytes(150_000).toString('hex')];
    const seal = (text: string, publicKeyPem = merchant.publicKeyPem) => {
      const key = randomBytes(24).toString('base64');
      const nonce = randomBytes(8).toString('hex');
      const cipher = createCipheriv('aes-256-gcm', Buffer.from(key), Buffer.from(nonce));
      const body = Buffer.concat([cipher.update(gzipSync(Buffer.from(text))), cipher.final(), cipher.getAuthTag()]);
      const encryptKey = publicEncrypt({ key: publicKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, Buffer.from(key)).toString('base64');
      return { body, encryptKey, nonce, hash: createHash('sha1').update(text).digest('hex') };
    };
    const sealed = texts.map((text) => seal(text));
    const files = new Map<string, Buffer>(sealed.map((p, i) => [`part${i + 1}`, p.body]));
    // Listed out of order: joined by bill_sequence.
    const listing = {
      download_bill_count: 2,
      download_bill_list: [1, 0].map((i) => ({
        bill_sequence: i + 1,
        download_url: `${fakeBase}/prefix/v3/billdownload/file?token=part${i + 1}`,
        encrypt_key: sealed[i].encryptKey,
        hash_type: 'SHA1',
        hash_value: sealed[i].hash,
        nonce: sealed[i].nonce,
      })),
    };
    fake.handler = (req) => {
      if (req.url.startsWith('/prefix/v3/bill/sub-merchant-fundflowbill')) return { status: 200, body: JSON.stringify(listing) };
      return { status: 200, sign: false, headers: { 'Content-Type': 'application/octet-stream' }, body: files.get(new URL(req.url, fakeBase).searchParams.get('token')!)! };
    };
    const list = await client.applySubMerchantFundFlowBill({ subMchid: '1900000201', billDate: '2026-11-23', tarType: 'GZIP' });
    expect(fake.requests[0].url).toBe('/prefix/v3/bill/sub-merchant-fundflowbill?sub_mchid=1900000201&bill_date=2026-11-23&account_type=BASIC&algorithm=AEAD_AES_256_GCM&tar_type=GZIP');
    expect((await readAll(await client.downloadEncryptedBill(list))).toString('utf8')).toBe(texts.join(''));
    expect(fake.requests.slice(1).map((r) => [r.url, r.authorizationValid])).toEqual([
      ['/prefix/v3/billdownload/file?token=part1', true],
      ['/prefix/v3/billdownload/file?token=part2', true],
    ]);

    const tampered = Buffer.from(sealed[1].body);
    tampered[1000] ^= 0x01;
    files.set('part2', tampered);
    await expect(readAll(await client.downloadEncryptedBill(list))).rejects.toBeInstanceOf(WechatPayBillDecryptError);
    files.set('part2', sealed[1].body);

    const forOther = seal(texts[0], rsaKeyPair().publicKeyPem);
    const otherList = { ...list, download_bill_list: [{ ...list.download_bill_list[0], encrypt_key: forOther.encryptKey }] , download_bill_count: 1 };
    await expect(client.downloadEncryptedBill(otherList)).rejects.toBeInstanceOf(WechatPayBillDecryptError);

    fake.handler = () => ({ status: 200, body: JSON.stringify({ download_bill_count: 2, download_bill_list: [listing.download_bill_list[0]] }) });
    await expect(client.applySubMerchantFundFlowBill({ subMchid: '1900000201', billDate: '2026-11-23' })).rejects.toMatchObject({ wechatCode: 'INVALID_RESPONSE' });
  });

  it('queries by transaction_id on its own path, signed, with mchid in the query', async () => {
    fake.handler = () => ({
      status: 200,
      body: '{"appid":"wx1234567890abcdef","mchid":"1900000109","out_trade_no":"T1","transaction_id":"4200000985202611240000000001","trade_state":"SUCCESS"}',
    });
    const trade = await client.queryByTransactionId('4200000985202611240000000001');
    expect(trade).toMatchObject({ trade_state: 'SUCCESS', transaction_id: '4200000985202611240000000001' });
    expect(fake.requests[0].method).toBe('GET');
    expect(fake.requests[0].url).toBe('/prefix/v3/pay/transactions/id/4200000985202611240000000001?mchid=1900000109');
    expect(fake.requests[0].authorizationValid).toBe(true);
    expect(fake.requests[0].body.length).toBe(0);
  });

  it('downloads a plain (non-gzip) bill and checks the SHA-1', async () => {
    const csv = '\uFEFF记账时间,微信支付业务单号\r\n`2026-11-23 10:00:00,`4200000985202611230000000001\r\n';
    const sha1 = createHash('sha1').update(csv).digest('hex').toUpperCase(); // case is not significant
    fake.handler = () => ({ status: 200, sign: false, headers: { 'Content-Type': 'text/plain' }, body: Buffer.from(csv) });
    const url = `${fakeBase}/prefix/v3/billdownload/file?token=plain`;
    const stream = await client.downloadBill({ hash_type: 'SHA1', hash_value: sha1, download_url: url });
    expect((await readAll(stream)).toString('utf8')).toBe(csv);
    expect(fake.requests[0].url).toBe('/prefix/v3/billdownload/file?token=plain');
    expect(fake.requests[0].authorizationValid).toBe(true);
    // The same bytes announced as GZIP would not gunzip: a typed failure, not garbage.
    const wrong = await client.downloadBill({ hash_type: 'SHA1', hash_value: sha1, download_url: url }, { gzip: true });
    await expect(readAll(wrong)).rejects.toBeDefined();
  });

  it('a refused bill download is a WechatPayApiError carrying the Request-ID', async () => {
    fake.handler = () => ({
      status: 400,
      sign: false,
      headers: { 'Request-ID': '08F5BILL-268435461' },
      body: '{"code":"INVALID_REQUEST","message":"token expired"}',
    });
    const url = `${fakeBase}/prefix/v3/billdownload/file?token=old`;
    const error = (await client.downloadBill({ hash_type: 'SHA1', hash_value: '0'.repeat(40), download_url: url }).catch((e: unknown) => e)) as WechatPayApiError;
    expect(error).toBeInstanceOf(WechatPayApiError);
    expect(error).toMatchObject({ httpStatus: 400, wechatCode: 'INVALID_REQUEST', wechatMessage: 'token expired', requestId: '08F5BILL-268435461' });
    expect(error.details).toMatchObject({ requestId: '08F5BILL-268435461' });
  });

  it('a bill body that stalls ends with a typed network error carrying the Request-ID', async () => {
    const stalling = createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '100000', 'Request-ID': '08F5STALL-0' });
      res.write('交易时间,公众账号ID\r\n'); // ...and nothing more
    });
    await new Promise<void>((resolve) => stalling.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(stalling.address() as AddressInfo).port}/v3/billdownload/file?token=t`;
      const stream = await client.downloadBill({ hash_type: 'SHA1', hash_value: '0'.repeat(40), download_url: url }, { idleTimeoutMs: 200 });
      const error = (await readAll(stream).catch((e: unknown) => e)) as WechatPayNetworkError;
      expect(error).toBeInstanceOf(WechatPayNetworkError);
      expect(error).toMatchObject({ timedOut: true, sent: true, causeCode: BODY_IDLE_TIMEOUT, requestId: '08F5STALL-0', code: 'WECHATPAY_TIMEOUT' });
      expect(error.message).toContain('08F5STALL-0');
    } finally {
      stalling.closeAllConnections();
      await new Promise<void>((resolve) => stalling.close(() => resolve()));
    }
  });

  it('N notifications with bogus serials cost at most one certificate download per cooldown, foreign PUB_KEY_IDs none', async () => {
    const serialA = randomSerial();
    const certA = await selfSignedCertificate({ keys: platformA, serial: serialA, notBefore: new Date('2025-01-01'), notAfter: new Date('2031-01-01') });
    fake.handler = (req) =>
      req.url.includes('/v3/certificates')
        ? {
            status: 200,
            body: JSON.stringify({
              data: [{ serial_no: serialA, effective_time: '2025-01-01T00:00:00+08:00', expire_time: '2031-01-01T00:00:00+08:00', encrypt_certificate: encryptResource(APIV3_KEY, certA, 'certificate') }],
            }),
            signWith: { serial: serialA, privateKeyPem: platformA.privateKeyPem },
          }
        : { status: 404, sign: false, body: '{}' };
    const parser = moduleRef.get(WechatPayNotificationParser);
    const notification = (serial: string) => {
      const body = Buffer.from('{"id":"EV-1","event_type":"TRANSACTION.SUCCESS","resource":{}}');
      const signed = signResponse({ serial, privateKeyPem: platformB.privateKeyPem }, body, clock.nowSeconds());
      return { headers: Object.fromEntries(Object.entries(signed).map(([k, v]) => [k.toLowerCase(), v])), body };
    };
    const downloads = () => fake.requests.filter((r) => r.url.includes('/v3/certificates')).length;

    for (let i = 0; i < 30; i++) {
      const n = notification(`PUB_KEY_ID_${String(i).padStart(30, '9')}`);
      await expect(parser.verify(n.headers, n.body)).rejects.toMatchObject({ reason: 'unknown_serial' });
    }
    expect(downloads()).toBe(0);

    const bogus = Array.from({ length: 30 }, () => notification(randomSerial()));
    await Promise.all(bogus.slice(0, 15).map((n) => expect(parser.verify(n.headers, n.body)).rejects.toMatchObject({ reason: 'unknown_serial' })));
    for (const n of bogus.slice(15)) {
      await expect(parser.verify(n.headers, n.body)).rejects.toMatchObject({ reason: 'unknown_serial' });
      clock.advance(1_000);
    }
    expect(downloads()).toBe(1);
    clock.advance(60_000);
    const later = notification(randomSerial());
    await expect(parser.verify(later.headers, later.body)).rejects.toMatchObject({ reason: 'unknown_serial' });
    expect(downloads()).toBe(2);
  });

  function base(): string {
    const url = new URL(`http://${fake.requests[0]?.headers.host}`);
    return url.origin;
  }
});

describe('failover to the backup domain', () => {
  it('retries on the backup base when the primary cannot be reached, marking the User-Agent', async () => {
    const backup = new FakeWechatPay({ serial: PUB_ID, privateKeyPem: wechatpayPublic.privateKeyPem }, () => ({ status: 200, body: '{"trade_state":"SUCCESS"}' }), merchant.publicKeyPem);
    const backupBase = await backup.listen();
    const { moduleRef, clock } = await wechatTestingModule({
      env: { WECHATPAY_API_BASE: 'http://127.0.0.1:9', WECHATPAY_API_BACKUP_BASE: backupBase },
      credentials: credentials({ wechatpayPublicKey: { id: PUB_ID, pem: wechatpayPublic.publicKeyPem } }),
    });
    backup.now = () => clock.nowSeconds();
    try {
      const client = moduleRef.get(WechatPayClient);
      // a POST is failed over too: it never left this machine
      backup.handler = () => ({ status: 204 });
      await client.closeOrder('x1234567');
      expect(backup.count).toBe(1);
      expect(backup.requests[0].authorizationValid).toBe(true);
      expect(String(backup.requests[0].headers['user-agent'])).toContain('(Retried-V1)');
    } finally {
      await moduleRef.close();
      await backup.close();
    }
  });
});

describe('bill download failover', () => {
  it('fails a bill download over to the backup base like any other GET', async () => {
    const csv = 'a,b\r\n';
    const backup = new FakeWechatPay({ serial: PUB_ID, privateKeyPem: wechatpayPublic.privateKeyPem }, () => ({ status: 200, sign: false, headers: { 'Content-Type': 'text/plain' }, body: csv }), merchant.publicKeyPem);
    const backupBase = await backup.listen();
    const { moduleRef, clock } = await wechatTestingModule({
      env: { WECHATPAY_API_BASE: 'http://127.0.0.1:9', WECHATPAY_API_BACKUP_BASE: backupBase },
      credentials: credentials({ wechatpayPublicKey: { id: PUB_ID, pem: wechatpayPublic.publicKeyPem } }),
    });
    backup.now = () => clock.nowSeconds();
    try {
      const client = moduleRef.get(WechatPayClient);
      const sha1 = createHash('sha1').update(csv).digest('hex');
      const stream = await client.downloadBill({ hash_type: 'SHA1', hash_value: sha1, download_url: 'http://127.0.0.1:9/v3/billdownload/file?token=t' });
      expect((await readAll(stream)).toString('utf8')).toBe(csv);
      expect(backup.requests[0]).toMatchObject({ url: '/v3/billdownload/file?token=t', authorizationValid: true });
    } finally {
      await moduleRef.close();
      await backup.close();
    }
  });
});

describe('platform-certificate mode', () => {
  const serialA = randomSerial();
  const serialB = randomSerial();
  let certA: string;
  let certB: string;
  const t0 = new Date('2026-11-24T00:00:00Z');

  beforeAll(async () => {
    certA = await selfSignedCertificate({ keys: platformA, serial: serialA, notBefore: new Date('2025-01-01'), notAfter: new Date('2026-12-01') });
    certB = await selfSignedCertificate({ keys: platformB, serial: serialB, notBefore: new Date('2026-11-01'), notAfter: new Date('2031-11-01') });
  });

  function certificatesBody(list: Array<{ serial: string; pem: string; expire: string }>): string {
    return JSON.stringify({
      data: list.map((c) => ({
        serial_no: c.serial,
        effective_time: '2025-01-01T00:00:00+08:00',
        expire_time: c.expire,
        encrypt_certificate: encryptResource(APIV3_KEY, c.pem, 'certificate'),
      })),
    });
  }

  it('downloads certificates once for 50 concurrent verifications of an unknown serial, and follows a rotation', async () => {
    const clock = new FixedClock(t0);
    let listed = [{ serial: serialA, pem: certA, expire: '2026-12-01T00:00:00+08:00' }];
    let signer = { serial: serialA, privateKeyPem: platformA.privateKeyPem };
    const fake = new FakeWechatPay(signer, () => ({ status: 200, body: '{}' }), merchant.publicKeyPem);
    fake.now = () => clock.nowSeconds();
    fake.handler = (req) =>
      req.url.includes('/v3/certificates')
        ? { status: 200, body: certificatesBody(listed), signWith: { serial: serialA, privateKeyPem: platformA.privateKeyPem } }
        : { status: 200, body: '{"trade_state":"NOTPAY"}', signWith: signer };
    const base = await fake.listen();
    const { moduleRef } = await wechatTestingModule({ env: { WECHATPAY_API_BASE: base }, credentials: credentials(), clock });
    try {
      const client = moduleRef.get(WechatPayClient);
      const manager = moduleRef.get(CertificateManager);
      const results = await Promise.all(Array.from({ length: 50 }, () => client.queryByOutTradeNo('x1234567')));
      expect(results).toHaveLength(50);
      expect(manager.downloads).toBe(1);
      expect(fake.requests.filter((r) => r.url.startsWith('/v3/certificates'))).toHaveLength(1);

      // Rotation: WeChat lists A and B, then signs with B. B is unknown: one more download.
      listed = [...listed, { serial: serialB, pem: certB, expire: '2031-11-01T00:00:00+08:00' }];
      signer = { serial: serialB, privateKeyPem: platformB.privateKeyPem };
      clock.advance(61_000);
      await Promise.all(Array.from({ length: 20 }, () => client.queryByOutTradeNo('x1234567')));
      expect(manager.downloads).toBe(2);
      expect(manager.list().map((c) => c.serialNo).sort()).toEqual([serialA, serialB].sort());

      // Responses still signed with A verify while A is valid...
      signer = { serial: serialA, privateKeyPem: platformA.privateKeyPem };
      await expect(client.queryByOutTradeNo('x1234567')).resolves.toBeDefined();
      // ...and not after it expired (WeChat stops listing it too).
      listed = listed.filter((c) => c.serial !== serialA);
      clock.set(new Date('2026-12-02T00:00:00Z'));
      await expect(client.queryByOutTradeNo('x1234567')).rejects.toBeInstanceOf(WechatPayBadAnswerError);
      expect(manager.list().map((c) => c.serialNo)).toEqual([serialB]);
      signer = { serial: serialB, privateKeyPem: platformB.privateKeyPem };
      await expect(client.queryByOutTradeNo('x1234567')).resolves.toBeDefined();
    } finally {
      await moduleRef.close();
      await fake.close();
    }
  });

  it('downloadCertificates fetches, verifies and returns the valid platform certificates', async () => {
    const clock = new FixedClock(t0);
    const fake = new FakeWechatPay({ serial: serialB, privateKeyPem: platformB.privateKeyPem }, () => ({
      status: 200,
      body: certificatesBody([
        { serial: serialA, pem: certA, expire: '2026-12-01T00:00:00+08:00' },
        { serial: serialB, pem: certB, expire: '2031-11-01T00:00:00+08:00' },
      ]),
    }), merchant.publicKeyPem);
    fake.now = () => clock.nowSeconds();
    const base = await fake.listen();
    const { moduleRef, store } = await wechatTestingModule({ env: { WECHATPAY_API_BASE: base }, credentials: credentials(), clock });
    try {
      const list = await moduleRef.get(WechatPayClient).downloadCertificates();
      expect(list.map((c) => c.serialNo).sort()).toEqual([serialA, serialB].sort());
      const a = list.find((c) => c.serialNo === serialA)!;
      expect(a.pem).toBe(certA);
      expect(a.expireTime.toISOString()).toBe('2026-11-30T16:00:00.000Z');
      expect(a.effectiveTime.toISOString()).toBe('2024-12-31T16:00:00.000Z');
      expect(fake.requests).toHaveLength(1);
      expect(fake.requests[0]).toMatchObject({ method: 'GET', url: '/v3/certificates?algorithm_type=RSA', authorizationValid: true });
      // Kept for verification (no second download) and in the shared store for other instances.
      expect(await moduleRef.get(CertificateManager).keyFor(serialB)).toBeDefined();
      expect(fake.requests).toHaveLength(1);
      expect(await store.get('wechatpay:certificates:1900000109')).toContain(serialB);
    } finally {
      await moduleRef.close();
      await fake.close();
    }
  });

  it('combined mode: answers signed with the public key id and with a platform certificate both verify', async () => {
    const clock = new FixedClock(t0);
    let signer = { serial: PUB_ID, privateKeyPem: wechatpayPublic.privateKeyPem };
    const fake = new FakeWechatPay(signer, () => ({ status: 200, body: '{}' }), merchant.publicKeyPem);
    fake.now = () => clock.nowSeconds();
    fake.handler = (req) =>
      req.url.includes('/v3/certificates')
        ? { status: 200, body: certificatesBody([{ serial: serialA, pem: certA, expire: '2026-12-01T00:00:00+08:00' }]), signWith: { serial: serialA, privateKeyPem: platformA.privateKeyPem } }
        : { status: 200, body: '{"trade_state":"SUCCESS"}', signWith: signer };
    const base = await fake.listen();
    const { moduleRef } = await wechatTestingModule({
      env: { WECHATPAY_API_BASE: base },
      credentials: credentials({ wechatpayPublicKey: { id: PUB_ID, pem: wechatpayPublic.publicKeyPem } }),
      clock,
    });
    const certificateCalls = () => fake.requests.filter((r) => r.url.startsWith('/v3/certificates')).length;
    try {
      const client = moduleRef.get(WechatPayClient);
      await expect(client.queryByOutTradeNo('x1234567')).resolves.toMatchObject({ trade_state: 'SUCCESS' });
      expect(certificateCalls()).toBe(0);
      signer = { serial: serialA, privateKeyPem: platformA.privateKeyPem };
      await expect(client.queryByOutTradeNo('x1234567')).resolves.toMatchObject({ trade_state: 'SUCCESS' });
      expect(certificateCalls()).toBe(1);
      signer = { serial: PUB_ID, privateKeyPem: wechatpayPublic.privateKeyPem };
      await expect(client.queryByOutTradeNo('x1234567')).resolves.toBeDefined();
      signer = { serial: serialA, privateKeyPem: platformA.privateKeyPem };
      await expect(client.queryByOutTradeNo('x1234567')).resolves.toBeDefined();
      // A different public key id is not ours, and never a reason to download.
      signer = { serial: 'PUB_KEY_ID_0000000000000000000000000999', privateKeyPem: wechatpayPublic.privateKeyPem };
      await expect(client.queryByOutTradeNo('x1234567')).rejects.toMatchObject({ reason: 'unknown_serial' });
      expect(certificateCalls()).toBe(1);
    } finally {
      await moduleRef.close();
      await fake.close();
    }
  });

  it('requests /v3/certificates?algorithm_type=RSA and then names the newest certificate in Wechatpay-Serial', async () => {
    const clock = new FixedClock(t0);
    const fake = new FakeWechatPay({ serial: serialB, privateKeyPem: platformB.privateKeyPem }, (req) =>
      req.url.includes('/v3/certificates')
        ? {
            status: 200,
            body: certificatesBody([
              { serial: serialA, pem: certA, expire: '2026-12-01T00:00:00+08:00' },
              { serial: serialB, pem: certB, expire: '2031-11-01T00:00:00+08:00' },
            ]).replace(/"effective_time":"2025-01-01T00:00:00\+08:00","expire_time":"2031/, '"effective_time":"2026-11-01T00:00:00+08:00","expire_time":"2031'),
          }
        : { status: 200, body: '{"trade_state":"NOTPAY"}' }, merchant.publicKeyPem);
    fake.now = () => clock.nowSeconds();
    const base = await fake.listen();
    const { moduleRef } = await wechatTestingModule({ env: { WECHATPAY_API_BASE: base }, credentials: credentials(), clock });
    try {
      const client = moduleRef.get(WechatPayClient);
      await client.downloadCertificates();
      expect(fake.requests[0].url).toBe('/v3/certificates?algorithm_type=RSA');
      await client.queryByOutTradeNo('x1234567');
      const query = fake.requests.find((r) => r.url.startsWith('/v3/pay/'))!;
      expect(query.headers['wechatpay-serial']).toBe(serialB);
    } finally {
      await moduleRef.close();
      await fake.close();
    }
  });

  it.each([
    ['404 RESOURCE_NOT_EXISTS (what WeChat answers)', '{"code":"RESOURCE_NOT_EXISTS","message":"无可用的平台证书，请在商户平台-API安全申请使用微信支付公钥。可查看指引https://pay.weixin.qq.com/doc/v3/merchant/4012153196"}'],
    ['404 NOT_FOUND', '{"code":"NOT_FOUND","message":"无可用的平台证书，请在商户平台-API安全申请使用微信支付公钥"}'],
  ])('%s from /v3/certificates (merchant switched to public-key mode) is said once in the log, not at every refresh', async (_name, body) => {
    const clock = new FixedClock(t0);
    const fake = new FakeWechatPay({ serial: serialA, privateKeyPem: platformA.privateKeyPem }, () => ({
      status: 404,
      sign: false,
      body,
    }));
    fake.now = () => clock.nowSeconds();
    const base = await fake.listen();
    const warns = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const { moduleRef } = await wechatTestingModule({ env: { WECHATPAY_API_BASE: base }, credentials: credentials(), clock });
    try {
      const manager = moduleRef.get(CertificateManager);
      let tick: () => void = () => undefined;
      (manager as unknown as { options: { schedule: (t: () => void) => () => void } }).options.schedule = (t) => ((tick = t), () => undefined);
      manager.startAutoRefresh();
      for (let i = 0; i < 3; i++) {
        const before = fake.requests.length;
        tick();
        // wait for the refresh's answer to be handled (not a fixed sleep: a loaded machine is slow)
        for (let waited = 0; fake.requests.length === before && waited < 5000; waited += 10) await new Promise((r) => setTimeout(r, 10));
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(fake.requests.length).toBeGreaterThanOrEqual(3);
      const said = warns.mock.calls.map((c) => String(c[0])).filter((m) => m.includes('public-key mode'));
      expect(said).toHaveLength(1);
      expect(warns.mock.calls.map((c) => String(c[0])).filter((m) => m.includes('/v3/certificates') && !m.includes('public-key mode'))).toHaveLength(0);
    } finally {
      warns.mockRestore();
      await moduleRef.close();
      await fake.close();
    }
  });

  it('refuses a certificate download whose signature does not match the certificates it carries', async () => {
    const clock = new FixedClock(t0);
    const fake = new FakeWechatPay({ serial: serialA, privateKeyPem: platformB.privateKeyPem }, () => ({
      status: 200,
      body: certificatesBody([{ serial: serialA, pem: certA, expire: '2026-12-01T00:00:00+08:00' }]),
    }));
    fake.now = () => clock.nowSeconds();
    const base = await fake.listen();
    const { moduleRef } = await wechatTestingModule({ env: { WECHATPAY_API_BASE: base }, credentials: credentials(), clock });
    try {
      await expect(moduleRef.get(WechatPayClient).downloadCertificates()).rejects.toMatchObject({ reason: 'bad_signature' });
      expect(moduleRef.get(CertificateManager).list()).toEqual([]);
    } finally {
      await moduleRef.close();
      await fake.close();
    }
  });
});

describe('the backup base (config.wechat.payApiBackupBase)', () => {
  it('keeps a configured backup, but never sends sandbox traffic to WeChat\'s real hosts', () => {
    const live = loadConfig({ NODE_ENV: 'test', WECHAT_MODE: 'sandbox', WECHATPAY_API_BASE: 'https://api.mch.weixin.qq.com' });
    expect(live.wechat.payApiBackupBase).toBe('https://api2.wechatpay.cn');
    const sandbox = loadConfig({ NODE_ENV: 'test', WECHAT_MODE: 'sandbox', WECHATPAY_API_BASE: 'http://127.0.0.1:3001/sandbox/pay' });
    expect(sandbox.wechat.payApiBackupBase).toBeUndefined();
    const sandboxWithOwnBackup = loadConfig({
      NODE_ENV: 'test',
      WECHAT_MODE: 'sandbox',
      WECHATPAY_API_BASE: 'http://127.0.0.1:3001/sandbox/pay',
      WECHATPAY_API_BACKUP_BASE: 'http://127.0.0.1:3002/sandbox/pay',
    });
    expect(sandboxWithOwnBackup.wechat.payApiBackupBase).toBe('http://127.0.0.1:3002/sandbox/pay');
  });
});
