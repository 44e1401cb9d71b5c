import { KeyObject, X509Certificate, createPrivateKey, createPublicKey, createSign, createVerify, sign, verify } from 'node:crypto';

/**
 * RSA primitives of APIv3: SHA256withRSA, PKCS#1 v1.5 padding, Base64. Keys are parsed once into
 * KeyObjects by the load* functions; passing PEM text on every call re-parses the key and costs
 * 3x (sign) to 7x (verify) — see bench/crypto.ts.
 */
export function loadPrivateKey(pem: string): KeyObject {
  // createPrivateKey reads both PKCS#8 (BEGIN PRIVATE KEY) and PKCS#1 (BEGIN RSA PRIVATE KEY).
  const key = createPrivateKey({ key: pem, format: 'pem' });
  if (key.asymmetricKeyType !== 'rsa') throw new Error(`expected an RSA private key, got ${key.asymmetricKeyType}`);
  return key;
}

/** A public key from SPKI (`BEGIN PUBLIC KEY`), PKCS#1 (`BEGIN RSA PUBLIC KEY`) or an X.509 certificate. */
export function loadPublicKey(pem: string): KeyObject {
  if (pem.includes('BEGIN CERTIFICATE')) return new X509Certificate(pem).publicKey;
  const key = createPublicKey({ key: pem, format: 'pem' });
  if (key.asymmetricKeyType !== 'rsa') throw new Error(`expected an RSA public key, got ${key.asymmetricKeyType}`);
  return key;
}

export function rsaSign(message: string | Buffer, key: KeyObject): string {
  return sign('sha256', typeof message === 'string' ? Buffer.from(message, 'utf8') : message, key).toString('base64');
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export function rsaVerify(message: string | Buffer, signatureBase64: string, key: KeyObject): boolean {
  if (!BASE64.test(signatureBase64)) return false;
  const signature = Buffer.from(signatureBase64, 'base64');
  try {
    return verify('sha256', typeof message === 'string' ? Buffer.from(message, 'utf8') : message, key, signature);
  } catch {
    return false;
  }
}

/** Streaming variants, for bodies held as several buffers (avoids concatenating them). */
export function rsaVerifyParts(parts: Array<string | Buffer>, signatureBase64: string, key: KeyObject): boolean {
  if (!BASE64.test(signatureBase64)) return false;
  const verifier = createVerify('RSA-SHA256');
  for (const part of parts) verifier.update(part);
  try {
    return verifier.verify(key, Buffer.from(signatureBase64, 'base64'));
  } catch {
    return false;
  }
}

export function rsaSignParts(parts: Array<string | Buffer>, key: KeyObject): string {
  const signer = createSign('RSA-SHA256');
  for (const part of parts) signer.update(part);
  return signer.sign(key, 'base64');
}
