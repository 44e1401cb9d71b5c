import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { generateKeyPairSync, randomBytes, webcrypto } from 'node:crypto';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export interface TestKeyPair {
  privateKeyPem: string;
  /** PKCS#1 form of the same private key (`BEGIN RSA PRIVATE KEY`). */
  privateKeyPkcs1Pem: string;
  publicKeyPem: string;
}

/** A fresh RSA-2048 key pair, generated at run time (no keys live in the repository). */
export function rsaKeyPair(): TestKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    privateKeyPkcs1Pem: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

export function randomSerial(): string {
  return randomBytes(20).toString('hex').toUpperCase();
}

/** A self-signed X.509 certificate for a key pair, like a WeChat Pay platform certificate (or `name`, `extensions`). */
export async function selfSignedCertificate(options: {
  keys: Pick<TestKeyPair, 'privateKeyPem' | 'publicKeyPem'>;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  name?: string;
  extensions?: x509.Extension[];
}): Promise<string> {
  const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };
  const der = (pem: string) => Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const privateKey = await webcrypto.subtle.importKey('pkcs8', der(options.keys.privateKeyPem), alg, true, ['sign']);
  const publicKey = await webcrypto.subtle.importKey('spki', der(options.keys.publicKeyPem), alg, true, ['verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: options.serial,
    name: options.name ?? 'CN=Tenpay.com Root CA (test),O=Tenpay.com,C=CN',
    notBefore: options.notBefore,
    notAfter: options.notAfter,
    keys: { privateKey, publicKey } as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'],
    signingAlgorithm: alg,
    extensions: options.extensions,
  });
  return cert.toString('pem');
}
