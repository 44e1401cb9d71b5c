import { encryptResource, signResponse } from '../../../test/helpers/fake-wechatpay';
import { TestKeyPair, randomSerial, rsaKeyPair, selfSignedCertificate } from '../../../test/helpers/keys';
import { FixedClock } from '../../common/clock';
import { MemoryStore } from '../../common/store/memory-store';
import { signedHeadersOf } from './wechat-pay.http';
import { CertificateManager, CertificateManagerOptions, RawCertificatesResponse } from './certificates';
import { AesGcmCipher } from './cipher';
import { WechatPaySignatureError } from './errors';
import { CombinedKeySource, PublicKeySource, verifySigned } from './verifier';

const APIV3_KEY = 'c'.repeat(16) + 'd'.repeat(16);
const MCHID = '1900000109';
const PUB_ID = 'PUB_KEY_ID_0114232134912410000000000042';
const T0 = new Date('2026-11-24T00:00:00Z');

interface Listed {
  serial: string;
  pem: string;
  expire: string;
}

let platformA: TestKeyPair;
let platformB: TestKeyPair;
let wechatpayPublic: TestKeyPair;
let certA: Listed;
let certB: Listed;

beforeAll(async () => {
  platformA = rsaKeyPair();
  platformB = rsaKeyPair();
  wechatpayPublic = rsaKeyPair();
  const serialA = randomSerial();
  const serialB = randomSerial();
  certA = {
    serial: serialA,
    pem: await selfSignedCertificate({ keys: platformA, serial: serialA, notBefore: new Date('2025-01-01'), notAfter: new Date('2027-01-01') }),
    expire: '2027-01-01T00:00:00+08:00',
  };
  certB = {
    serial: serialB,
    pem: await selfSignedCertificate({ keys: platformB, serial: serialB, notBefore: new Date('2026-11-01'), notAfter: new Date('2031-11-01') }),
    expire: '2031-11-01T00:00:00+08:00',
  };
});

/**
 * WeChat's side of GET /v3/certificates as the manager sees it (signed headers + raw body, not yet
 * verified): the listed certificates, encrypted with the APIv3 key, the answer signed by `signer`.
 */
class CertificateEndpoint {
  listed: Listed[] = [];
  signer: { serial: string; privateKeyPem: string } | undefined;
  calls = 0;
  delayMs = 0;
  fail = false;

  constructor(private readonly clock: FixedClock) {}

  download = async (): Promise<RawCertificatesResponse> => {
    this.calls++;
    if (this.delayMs) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    if (this.fail) throw new Error('connect ECONNREFUSED');
    const body = Buffer.from(
      JSON.stringify({
        data: this.listed.map((c) => ({
          serial_no: c.serial,
          effective_time: '2025-01-01T00:00:00+08:00',
          expire_time: c.expire,
          encrypt_certificate: encryptResource(APIV3_KEY, c.pem, 'certificate'),
        })),
      }),
    );
    const signer = this.signer ?? { serial: this.listed[0].serial, privateKeyPem: keyOf(this.listed[0]).privateKeyPem };
    const headers = signResponse(signer, body, this.clock.nowSeconds());
    return { headers: signedHeadersOf(Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]))), body };
  };
}

function keyOf(listed: Listed): TestKeyPair {
  return listed.serial === certA.serial ? platformA : platformB;
}

function manager(clock: FixedClock, endpoint: CertificateEndpoint, extra: Partial<CertificateManagerOptions> = {}): CertificateManager {
  return new CertificateManager({
    mchid: MCHID,
    cipher: new AesGcmCipher(APIV3_KEY),
    download: endpoint.download,
    now: () => clock.nowMs(),
    ...extra,
  });
}

function signed(key: { serial: string; privateKeyPem: string }, body: string, now: number) {
  const h = signResponse(key, Buffer.from(body), now);
  return { timestamp: h['Wechatpay-Timestamp'], nonce: h['Wechatpay-Nonce'], signature: h['Wechatpay-Signature'], serial: h['Wechatpay-Serial'] };
}

describe('CertificateManager', () => {
  let clock: FixedClock;
  let endpoint: CertificateEndpoint;

  beforeEach(() => {
    clock = new FixedClock(T0);
    endpoint = new CertificateEndpoint(clock);
  });

  it('answers 50 concurrent lookups of an unknown serial with exactly one download', async () => {
    endpoint.listed = [certA];
    endpoint.delayMs = 30;
    const certs = manager(clock, endpoint);
    const keys = await Promise.all(Array.from({ length: 50 }, () => certs.keyFor(certA.serial)));
    expect(endpoint.calls).toBe(1);
    expect(certs.downloads).toBe(1);
    expect(keys.every((key) => key !== undefined && key === keys[0])).toBe(true);
    // Lower-case serials name the same certificate; no further download.
    expect(await certs.keyFor(certA.serial.toLowerCase())).toBe(keys[0]);
    expect(endpoint.calls).toBe(1);
  });

  it('50 concurrent lookups of a serial WeChat does not list still cost one download', async () => {
    endpoint.listed = [certA];
    endpoint.delayMs = 30;
    const certs = manager(clock, endpoint);
    const keys = await Promise.all(Array.from({ length: 50 }, () => certs.keyFor(randomSerial())));
    expect(keys.every((key) => key === undefined)).toBe(true);
    expect(endpoint.calls).toBe(1);
  });

  it('bogus serials cause at most one download per cooldown, even while no certificate is known', async () => {
    endpoint.listed = [certA];
    const certs = manager(clock, endpoint, { unknownSerialCooldownMs: 60_000 });
    for (let i = 0; i < 25; i++) {
      expect(await certs.keyFor(randomSerial())).toBeUndefined();
      clock.advance(1_000);
    }
    expect(endpoint.calls).toBe(1);
    // Same with an endpoint that fails: a failed download counts too.
    endpoint.fail = true;
    clock.advance(60_000);
    for (let i = 0; i < 10; i++) expect(await certs.keyFor(randomSerial())).toBeUndefined();
    expect(endpoint.calls).toBe(2);
    // ...while a download that found nothing left the set empty.
    const empty = new CertificateEndpoint(clock);
    empty.listed = [];
    empty.signer = { serial: PUB_ID, privateKeyPem: wechatpayPublic.privateKeyPem };
    const publicKey = new PublicKeySource(PUB_ID, wechatpayPublic.publicKeyPem);
    const pkMode = manager(clock, empty, { fallbackKeys: publicKey });
    for (let i = 0; i < 25; i++) expect(await pkMode.keyFor(randomSerial())).toBeUndefined();
    expect(pkMode.list()).toEqual([]);
    expect(empty.calls).toBe(1);
    clock.advance(60_000);
    await Promise.all(Array.from({ length: 10 }, () => pkMode.keyFor(randomSerial())));
    expect(empty.calls).toBe(2);
  });

  it('never downloads for a PUB_KEY_ID_ serial other than the configured one, nor for a non-hex serial', async () => {
    endpoint.listed = [certA];
    const certs = manager(clock, endpoint);
    const publicKey = new PublicKeySource(PUB_ID, wechatpayPublic.publicKeyPem);
    const keys = new CombinedKeySource(publicKey, certs);
    for (let i = 0; i < 20; i++) {
      expect(await keys.keyFor(`PUB_KEY_ID_${String(i).padStart(30, '7')}`)).toBeUndefined();
      expect(await certs.keyFor(`PUB_KEY_ID_${String(i).padStart(30, '7')}`)).toBeUndefined();
    }
    for (const junk of ['', 'not-a-serial', '../../etc/passwd', 'A'.repeat(65), `${certA.serial} `]) {
      expect(await keys.keyFor(junk)).toBeUndefined();
    }
    expect(endpoint.calls).toBe(0);
    expect(await keys.keyFor(PUB_ID)).toBe(publicKey.key);
    expect(endpoint.calls).toBe(0);

    // Public-key mode alone (no certificate source): a foreign PUB_KEY_ID_ is simply unknown.
    const now = clock.nowSeconds();
    const foreign = signed({ serial: 'PUB_KEY_ID_0000000000000000000000000001', privateKeyPem: wechatpayPublic.privateKeyPem }, '{}', now);
    await expect(verifySigned(foreign, '{}', new CombinedKeySource(publicKey, undefined), now)).rejects.toMatchObject({ reason: 'unknown_serial' });
    await expect(verifySigned(foreign, '{}', keys, now)).rejects.toMatchObject({ reason: 'unknown_serial' });
    expect(endpoint.calls).toBe(0);
  });

  it('verifies with the public key and with platform certificates side by side (combined mode)', async () => {
    endpoint.listed = [certA, certB];
    endpoint.signer = { serial: certB.serial, privateKeyPem: platformB.privateKeyPem };
    const publicKey = new PublicKeySource(PUB_ID, wechatpayPublic.publicKeyPem);
    const certs = manager(clock, endpoint, { fallbackKeys: publicKey });
    const keys = new CombinedKeySource(publicKey, certs);
    const now = clock.nowSeconds();
    const body = '{"trade_state":"SUCCESS"}';

    await expect(verifySigned(signed({ serial: PUB_ID, privateKeyPem: wechatpayPublic.privateKeyPem }, body, now), body, keys, now)).resolves.toBe(PUB_ID);
    expect(endpoint.calls).toBe(0); // the public key needs no download
    await expect(verifySigned(signed({ serial: certA.serial, privateKeyPem: platformA.privateKeyPem }, body, now), body, keys, now)).resolves.toBe(certA.serial);
    await expect(verifySigned(signed({ serial: certB.serial, privateKeyPem: platformB.privateKeyPem }, body, now), body, keys, now)).resolves.toBe(certB.serial);
    expect(endpoint.calls).toBe(1);
    // Keys do not cross: the public key id with a certificate's key, a certificate serial with the public key.
    await expect(verifySigned(signed({ serial: PUB_ID, privateKeyPem: platformA.privateKeyPem }, body, now), body, keys, now)).rejects.toMatchObject({
      reason: 'bad_signature',
    });
    await expect(
      verifySigned(signed({ serial: certA.serial, privateKeyPem: wechatpayPublic.privateKeyPem }, body, now), body, keys, now),
    ).rejects.toBeInstanceOf(WechatPaySignatureError);

    // A certificate download signed with the public key (migration) verifies too.
    const viaPublicKey = new CertificateEndpoint(clock);
    viaPublicKey.listed = [certA];
    viaPublicKey.signer = { serial: PUB_ID, privateKeyPem: wechatpayPublic.privateKeyPem };
    const migrating = manager(clock, viaPublicKey, { fallbackKeys: publicKey });
    expect(await migrating.keyFor(certA.serial)).toBeDefined();
  });

  it('refreshes every 12 hours on its schedule and picks up a new certificate', async () => {
    endpoint.listed = [certA];
    let tick: (() => void) | undefined;
    let every = 0;
    let stopped = 0;
    const certs = manager(clock, endpoint, {
      schedule: (fn, everyMs) => {
        tick = fn;
        every = everyMs;
        return () => stopped++;
      },
    });
    certs.startAutoRefresh();
    expect(every).toBe(12 * 3600_000);
    expect(await certs.keyFor(certA.serial)).toBeDefined();
    expect(endpoint.calls).toBe(1);

    // Twelve hours later WeChat lists a second certificate; the refresh fetches it (no cooldown).
    endpoint.listed = [certA, certB];
    clock.advance(12 * 3600_000);
    tick!();
    await certs.refresh(); // joins the refresh the tick started
    expect(endpoint.calls).toBe(2);
    expect(certs.list().map((c) => c.serialNo).sort()).toEqual([certA.serial, certB.serial].sort());
    expect(await certs.keyFor(certB.serial)).toBeDefined();
    expect(endpoint.calls).toBe(2);

    // Another 12 h: refreshed again even though nothing is unknown; A (expired by then) is dropped.
    endpoint.listed = [certB];
    clock.set(new Date('2027-01-02T00:00:00Z'));
    tick!();
    await certs.refresh();
    expect(endpoint.calls).toBe(3);
    expect(certs.list().map((c) => c.serialNo)).toEqual([certB.serial]);

    certs.stop();
    expect(stopped).toBe(1);
  });

  describe('with the shared store (MemoryStore standing in for Redis)', () => {
    it('a restarted instance takes a serial the store holds without a download', async () => {
      const store = new MemoryStore(() => clock.nowMs());
      endpoint.listed = [certA, certB];
      const first = manager(clock, endpoint, { store });
      expect(await first.keyFor(certB.serial)).toBeDefined();
      expect(endpoint.calls).toBe(1);

      const restarted = manager(clock, endpoint, { store });
      const keys = await Promise.all(Array.from({ length: 10 }, () => restarted.keyFor(certB.serial)));
      expect(keys.every((key) => key !== undefined)).toBe(true);
      expect(await restarted.keyFor(certA.serial)).toBeDefined();
      expect(restarted.downloads).toBe(0);
      expect(endpoint.calls).toBe(1);
    });

    it('downloads when the store does not hold the wanted serial (restart during a rotation), once', async () => {
      const store = new MemoryStore(() => clock.nowMs());
      endpoint.listed = [certA];
      const before = manager(clock, endpoint, { store });
      expect(await before.keyFor(certA.serial)).toBeDefined();
      expect(endpoint.calls).toBe(1);

      // WeChat rotates: B is listed and signs. A restarted instance finds only A in the store.
      endpoint.listed = [certA, certB];
      endpoint.signer = { serial: certB.serial, privateKeyPem: platformB.privateKeyPem };
      const restarted = manager(clock, endpoint, { store });
      const keys = await Promise.all(Array.from({ length: 20 }, () => restarted.keyFor(certB.serial)));
      expect(keys.every((key) => key !== undefined)).toBe(true);
      expect(restarted.downloads).toBe(1);
      expect(endpoint.calls).toBe(2);
      expect(restarted.list().map((c) => c.serialNo).sort()).toEqual([certA.serial, certB.serial].sort());
      // The store now holds both, for the next instance.
      const stored = JSON.parse((await store.get(`wechatpay:certificates:${MCHID}`))!) as Array<{ serialNo: string }>;
      expect(stored.map((c) => c.serialNo).sort()).toEqual([certA.serial, certB.serial].sort());

      // Unknown serials after that stay within the cooldown, store or not.
      for (let i = 0; i < 10; i++) expect(await restarted.keyFor(randomSerial())).toBeUndefined();
      expect(endpoint.calls).toBe(2);
    });

    it('ignores unreadable store content and downloads instead', async () => {
      const store = new MemoryStore(() => clock.nowMs());
      await store.set(`wechatpay:certificates:${MCHID}`, '{not json');
      endpoint.listed = [certA];
      const certs = manager(clock, endpoint, { store });
      expect(await certs.keyFor(certA.serial)).toBeDefined();
      expect(endpoint.calls).toBe(1);
    });
  });
});
