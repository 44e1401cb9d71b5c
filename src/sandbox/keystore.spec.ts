import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { X509Certificate, createPublicKey, webcrypto } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { selfMadeCertificate } from '../../test/helpers/mtls';
import { loadOrCreateSandboxKeystore, loadOrCreateSandboxTls, sandboxKeystoreFiles } from './keystore';
import { issuedBy } from './keystore-tls';

/** Connects to a TLS server presenting `cert` (+ `key`) as `servername`, trusting `ca` only: the verification error code, or 'OK'. */
async function handshake(server: { cert: string; key: string }, ca: string, servername: string): Promise<string> {
  const listener = tls.createServer({ cert: server.cert, key: server.key }, (socket) => socket.end());
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  try {
    return await new Promise<string>((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port: (listener.address() as AddressInfo).port, ca: [ca], servername }, () => {
        socket.destroy();
        resolve('OK');
      });
      socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    });
  } finally {
    await new Promise<void>((r) => listener.close(() => r()));
  }
}

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

  it('issues apiclient_cert.pem from the sandbox CA (sandbox_ca.pem), which also issued the mutual-TLS server certificate for the loopback names', async () => {
    const dir = fresh();
    const ks = await loadOrCreateSandboxKeystore(dir);
    const t = await loadOrCreateSandboxTls(dir);
    const files = sandboxKeystoreFiles(dir);
    expect(readFileSync(files.tlsCa, 'utf8')).toBe(t.ca.certificatePem);
    const merchant = readFileSync(files.merchantCertificate, 'utf8');
    expect(merchant).toBe(t.merchantCertificatePem);
    expect(issuedBy(merchant, t.ca.certificatePem)).toBe(true);
    expect(new X509Certificate(merchant).serialNumber).toBe(ks.merchant.certSerial);
    expect(statSync(join(dir, 'sandbox-tls.json')).mode & 0o077).toBe(0);
    expect(await handshake({ cert: t.server.certificatePem, key: t.server.privateKeyPem }, t.ca.certificatePem, 'localhost')).toBe('OK');
    expect(t.ca.certificatePem).not.toContain('PRIVATE');
  });

  it('replaces the self-signed apiclient_cert.pem an older sandbox wrote by the CA-issued one (same key and serial)', async () => {
    const first = fresh();
    const ks = await loadOrCreateSandboxKeystore(first);
    const older = join(fresh(), 'sandbox');
    mkdirSync(older);
    copyFileSync(join(first, 'keystore.json'), join(older, 'keystore.json'));
    const selfSigned = await selfMadeCertificate(ks.mchid, ks.merchant.certSerial, ks.merchant);
    writeFileSync(join(older, 'apiclient_cert.pem'), selfSigned.certPem);
    const t = await loadOrCreateSandboxTls(older);
    const now = readFileSync(sandboxKeystoreFiles(older).merchantCertificate, 'utf8');
    expect(now).not.toBe(selfSigned.certPem);
    expect(issuedBy(now, t.ca.certificatePem)).toBe(true);
    expect(new X509Certificate(now).serialNumber).toBe(ks.merchant.certSerial);
    expect(new X509Certificate(now).publicKey.export({ type: 'spki', format: 'pem' })).toBe(ks.merchant.publicKeyPem);
  });

  it('name-constrains the CA to the loopback names: a certificate it signs for another host is refused by a client that trusts it', async () => {
    const dir = fresh();
    const t = await loadOrCreateSandboxTls(dir);
    const caKey = await webcrypto.subtle.importKey('pkcs8', Buffer.from(t.ca.privateKeyPem.replace(/-----[^-]+-----|\s/g, ''), 'base64'), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
    type CreateParams = Parameters<typeof x509.X509CertificateGenerator.create>[0];
    /** What the CA's key would sign for `host`, handshaken as `host` by a client trusting only the sandbox CA. */
    const serveAs = async (host: string) => {
      const pair = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
      const cert = await x509.X509CertificateGenerator.create({
        serialNumber: '1234',
        subject: `CN=${host}`,
        issuer: new x509.X509Certificate(t.ca.certificatePem).subject,
        notBefore: new Date(Date.now() - 3600_000),
        notAfter: new Date(Date.now() + 3600_000),
        publicKey: pair.publicKey as unknown as CreateParams['publicKey'],
        signingKey: caKey as unknown as Extract<CreateParams, { signingKey: unknown }>['signingKey'],
        signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
        extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: host }])],
      } as CreateParams);
      const keyPem = `-----BEGIN PRIVATE KEY-----\n${Buffer.from(await webcrypto.subtle.exportKey('pkcs8', pair.privateKey)).toString('base64')}\n-----END PRIVATE KEY-----\n`;
      return handshake({ cert: cert.toString('pem'), key: keyPem }, t.ca.certificatePem, host);
    };
    expect(await serveAs('localhost')).toBe('OK');
    // OpenSSL 3.0 reports the violated constraint as UNSPECIFIED; what matters is that it is refused.
    expect(await serveAs('api.mch.weixin.qq.com')).not.toBe('OK');
    expect(await serveAs('example.com')).not.toBe('OK');
  });
});
