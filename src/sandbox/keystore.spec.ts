import { X509Certificate, createPublicKey } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateSandboxKeystore, sandboxKeystoreFiles } from './keystore';

describe('sandbox keystore files', () => {
  const dirs: string[] = [];
  const fresh = () => {
    const dir = mkdtempSync(join(tmpdir(), 'whp-keystore-'));
    dirs.push(dir);
    return dir;
  };
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('writes apiclient_cert.pem for the merchant key with the serial WECHATPAY_CERT_SERIAL names (all 40 hex digits kept)', async () => {
    const dir = fresh();
    const ks = await loadOrCreateSandboxKeystore(dir);
    const files = sandboxKeystoreFiles(dir);
    const cert = new X509Certificate(readFileSync(files.merchantCertificate));
    expect(ks.merchant.certSerial).toMatch(/^[1-7][0-9A-F]{39}$/);
    expect(cert.serialNumber).toBe(ks.merchant.certSerial);
    expect(cert.publicKey.export({ type: 'spki', format: 'pem' })).toBe(createPublicKey(ks.merchant.privateKeyPem).export({ type: 'spki', format: 'pem' }));
    expect(cert.subject).toContain(`CN=${ks.mchid}`);
    expect(statSync(files.merchantPrivateKey).mode & 0o077).toBe(0);
  });

  it('gives a keystore made before apiclient_cert.pem existed its missing files on the next start, keeping its serial', async () => {
    const first = fresh();
    const ks = await loadOrCreateSandboxKeystore(first);
    // Only keystore.json, as an older sandbox left DATA_DIR/sandbox (another path: a new process).
    const older = join(fresh(), 'sandbox');
    mkdirSync(older);
    copyFileSync(join(first, 'keystore.json'), join(older, 'keystore.json'));
    const again = await loadOrCreateSandboxKeystore(older);
    expect(again.merchant.certSerial).toBe(ks.merchant.certSerial);
    const files = sandboxKeystoreFiles(older);
    for (const path of Object.values(files)) expect(existsSync(path)).toBe(true);
    expect(new X509Certificate(readFileSync(files.merchantCertificate)).serialNumber).toBe(ks.merchant.certSerial);
    expect(readFileSync(files.merchantPrivateKey, 'utf8')).toBe(ks.merchant.privateKeyPem);
  });
});
