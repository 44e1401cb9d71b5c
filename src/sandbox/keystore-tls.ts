import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { X509Certificate, randomBytes, webcrypto } from 'node:crypto';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/**
 * The sandbox's TLS material for the mutual-TLS /secapi endpoint (WeChat requires the merchant API
 * certificate on /secapi/pay/refund): a CA of its own, the server certificate it signs for the loopback
 * names, and the merchant's apiclient_cert.pem, which it signs too (as Tenpay's CA signs real ones), so
 * that the TLS server can check a client certificate against that one CA.
 *
 * The CA is name-constrained to localhost, 127.0.0.0/8 and ::1: a machine that trusts it
 * (NODE_EXTRA_CA_CERTS, an SDK's `ca` option) trusts it for nothing else, even if its key (under
 * DATA_DIR/sandbox) leaked. Generated on the first start, kept in DATA_DIR/sandbox/sandbox-tls.json
 * (0600), never committed.
 */
export interface SandboxTls {
  version: 1;
  ca: { privateKeyPem: string; certificatePem: string };
  server: { privateKeyPem: string; certificatePem: string };
  /** apiclient_cert.pem: the merchant's own key pair, the keystore's certSerial, issued by `ca`. */
  merchantCertificatePem: string;
}

const CA_NAME = 'CN=WeChat Pay sandbox TLS CA (local only),OU=wechat-h5-pay sandbox,O=wechat-h5-pay,C=CN';
const ECDSA = { name: 'ECDSA', namedCurve: 'P-256' };
const ECDSA_SHA256 = { name: 'ECDSA', hash: 'SHA-256' };
const RSA_SHA256 = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
const DAY_MS = 24 * 3600_000;

type Keys = Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'];
type SigningKey = Parameters<typeof x509.X509CertificateGenerator.create>[0] extends infer P ? (P extends { signingKey: infer K } ? K : never) : never;
type PublicKeyInput = Parameters<typeof x509.X509CertificateGenerator.create>[0]['publicKey'];

function pemDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
}

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** A DER TLV (lengths up to 65535, all this file needs). */
function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  const length = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), length, content]);
}

/**
 * NameConstraints (RFC 5280 4.2.1.10) permitting only the loopback names: dNSName localhost, iPAddress
 * 127.0.0.0/8 and ::1/128. Encoded by hand (the x509 library has no class for it).
 */
function loopbackNameConstraints(): x509.Extension {
  const dns = (name: string) => tlv(0x30, tlv(0x82, Buffer.from(name, 'ascii')));
  const ip = (address: number[], mask: number[]) => tlv(0x30, tlv(0x87, Buffer.from([...address, ...mask])));
  const ipv6Loopback = [...Array(15).fill(0), 1];
  const permitted = Buffer.concat([dns('localhost'), ip([127, 0, 0, 0], [255, 0, 0, 0]), ip(ipv6Loopback, Array(16).fill(255))]);
  return new x509.Extension('2.5.29.30', true, tlv(0x30, tlv(0xa0, permitted)));
}

/** A positive serial of 16 random bytes, hex. */
function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] &= 0x7f;
  bytes[0] |= 0x10;
  return bytes.toString('hex');
}

async function ecdsaPair(): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ECDSA, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
}

async function privatePem(key: webcrypto.CryptoKey): Promise<string> {
  return pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', key));
}

/** The CA, the loopback server certificate and the merchant's certificate (for its RSA key pair and serial). */
export async function generateSandboxTls(merchant: { mchid: string; publicKeyPem: string; certSerial: string }): Promise<SandboxTls> {
  const notBefore = new Date(Date.now() - DAY_MS);
  const ca = await ecdsaPair();
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: CA_NAME,
    notBefore,
    notAfter: new Date(notBefore.getTime() + 10 * 365 * DAY_MS),
    keys: ca as unknown as Keys,
    signingAlgorithm: ECDSA_SHA256,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      loopbackNameConstraints(),
      await x509.SubjectKeyIdentifierExtension.create(ca.publicKey as unknown as PublicKeyInput),
    ],
  });
  const issue = async (publicKey: PublicKeyInput, subject: string, serialNumber: string, extensions: x509.Extension[]) =>
    (
      await x509.X509CertificateGenerator.create({
        serialNumber,
        subject,
        issuer: caCert.subject,
        notBefore,
        notAfter: new Date(notBefore.getTime() + 5 * 365 * DAY_MS),
        publicKey,
        signingKey: ca.privateKey as unknown as SigningKey,
        signingAlgorithm: ECDSA_SHA256,
        extensions: [new x509.BasicConstraintsExtension(false, undefined, true), await x509.AuthorityKeyIdentifierExtension.create(caCert), ...extensions],
      })
    ).toString('pem');

  const server = await ecdsaPair();
  const serverPem = await issue(server.publicKey as unknown as PublicKeyInput, 'CN=localhost,OU=wechat-h5-pay sandbox /secapi (mutual TLS),O=wechat-h5-pay,C=CN', serial(), [
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    new x509.SubjectAlternativeNameExtension([
      { type: 'dns', value: 'localhost' },
      { type: 'ip', value: '127.0.0.1' },
      { type: 'ip', value: '::1' },
    ]),
  ]);

  const merchantKey = await webcrypto.subtle.importKey('spki', pemDer(merchant.publicKeyPem), RSA_SHA256, true, ['verify']);
  const merchantPem = await issue(
    merchantKey as unknown as PublicKeyInput,
    `CN=${merchant.mchid},OU=Sandbox merchant,O=WeChat merchant system (sandbox),L=Shenzhen,ST=Guangdong,C=CN`,
    merchant.certSerial,
    [
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
    ],
  );

  return {
    version: 1,
    ca: { privateKeyPem: await privatePem(ca.privateKey), certificatePem: caCert.toString('pem') },
    server: { privateKeyPem: await privatePem(server.privateKey), certificatePem: serverPem },
    merchantCertificatePem: merchantPem,
  };
}

/** Whether `certificatePem` was signed by the CA `caPem` (an older sandbox's self-signed apiclient_cert.pem was not). */
export function issuedBy(certificatePem: string, caPem: string): boolean {
  try {
    const cert = new X509Certificate(certificatePem);
    const ca = new X509Certificate(caPem);
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  } catch {
    return false;
  }
}
