import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createHash, generateKeyPairSync, randomBytes, randomInt, webcrypto } from 'node:crypto';
import { chmodSync, existsSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WechatCredentials } from '../wechat/wechat-credentials';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/**
 * Everything the sandbox generates once and keeps under DATA_DIR/sandbox: the simulated official
 * account and merchant (with the merchant's API key pair — in real life the merchant's own), WeChat
 * Pay's platform key pair and certificate, and the WeChat Pay public key with its id.
 */
export interface SandboxKeystore {
  version: 1;
  appid: string;
  appsecret: string;
  mchid: string;
  apiv3Key: string;
  merchant: { privateKeyPem: string; publicKeyPem: string; certSerial: string };
  platform: { privateKeyPem: string; certificatePem: string; serial: string };
  publicKey: { id: string; privateKeyPem: string; publicKeyPem: string };
  /** The simulated mini-program, bound to the merchant (absent from keystores made before it existed: see sandboxMiniprogram). */
  miniprogram?: { appid: string; appsecret: string };
}

/**
 * The sandbox's mini-program: the keystore's, or for a keystore written before mini-programs existed
 * one derived from its secrets (the same in every process sharing the directory, without rewriting
 * the file).
 */
export function sandboxMiniprogram(keystore: SandboxKeystore): { appid: string; appsecret: string } {
  if (keystore.miniprogram) return keystore.miniprogram;
  const digest = (label: string) => createHash('sha256').update(`${label}:${keystore.appsecret}:${keystore.apiv3Key}`).digest('hex');
  return { appid: `wx${digest('miniprogram-appid').slice(0, 16)}`, appsecret: digest('miniprogram-secret').slice(0, 32) };
}

export type SandboxSignMode = 'public_key' | 'certificate';

const ALPHANUM = 'abcdefghijklmnopqrstuvwxyz0123456789';

function randomString(length: number, alphabet = ALPHANUM): string {
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet[randomInt(alphabet.length)];
  return out;
}

function rsaPair(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

async function selfSigned(pair: { privateKeyPem: string; publicKeyPem: string }, serialHex: string): Promise<string> {
  const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  const der = (pem: string) => Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const privateKey = await webcrypto.subtle.importKey('pkcs8', der(pair.privateKeyPem), alg, true, ['sign']);
  const publicKey = await webcrypto.subtle.importKey('spki', der(pair.publicKeyPem), alg, true, ['verify']);
  const notBefore = new Date(Date.now() - 24 * 3600_000);
  const notAfter = new Date(notBefore.getTime() + 5 * 365 * 24 * 3600_000);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialHex,
    name: 'CN=Tenpay.com Root CA (sandbox),OU=Tenpay.com CA Center,O=Tenpay.com,L=Shenzhen,ST=Guangdong,C=CN',
    notBefore,
    notAfter,
    keys: { privateKey, publicKey } as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'],
    signingAlgorithm: alg,
  });
  return cert.toString('pem');
}

async function generate(): Promise<SandboxKeystore> {
  const merchant = rsaPair();
  const platform = rsaPair();
  const wechatpayPublic = rsaPair();
  // Serials are positive: keep the first hex digit below 8.
  const platformSerial = (randomInt(0x10, 0x80).toString(16) + randomBytes(19).toString('hex')).toUpperCase();
  return {
    version: 1,
    appid: `wx${randomString(16)}`,
    appsecret: randomBytes(16).toString('hex'),
    mchid: `19${randomString(8, '0123456789')}`,
    apiv3Key: randomString(32, ALPHANUM + 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'),
    merchant: { ...merchant, certSerial: randomBytes(20).toString('hex').toUpperCase() },
    platform: {
      privateKeyPem: platform.privateKeyPem,
      certificatePem: await selfSigned(platform, platformSerial),
      serial: platformSerial,
    },
    publicKey: { id: `PUB_KEY_ID_${randomString(30, '0123456789')}`, ...wechatpayPublic },
    miniprogram: { appid: `wx${randomString(16)}`, appsecret: randomBytes(16).toString('hex') },
  };
}

function writePrivate(path: string, content: string): void {
  writeFileSync(path, content, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/**
 * Loads the keystore from `dir`, generating it on the first start. Safe when several processes
 * sharing the directory start at once: the file is written completely under a temporary name and
 * then hard-linked into place, which fails for all but one; the others read the winner's file.
 */
const loading = new Map<string, Promise<SandboxKeystore>>();

export function loadOrCreateSandboxKeystore(dir: string): Promise<SandboxKeystore> {
  // One generation per directory per process, however many modules ask at start-up.
  let promise = loading.get(dir);
  if (!promise) {
    promise = loadOrCreate(dir);
    loading.set(dir, promise);
    promise.catch(() => loading.delete(dir));
  }
  return promise;
}

async function loadOrCreate(dir: string): Promise<SandboxKeystore> {
  const file = join(dir, 'keystore.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as SandboxKeystore;
  mkdirSync(dir, { recursive: true });
  const keystore = await generate();
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writePrivate(tmp, JSON.stringify(keystore, null, 2));
  try {
    linkSync(tmp, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    unlinkSync(tmp);
    return JSON.parse(readFileSync(file, 'utf8')) as SandboxKeystore;
  }
  unlinkSync(tmp);
  // The files another backend needs to talk to the sandbox as this merchant.
  writePrivate(join(dir, 'apiclient_key.pem'), keystore.merchant.privateKeyPem);
  writeFileSync(join(dir, 'wechatpay_public_key.pem'), keystore.publicKey.publicKeyPem);
  writeFileSync(join(dir, 'wechatpay_platform_cert.pem'), keystore.platform.certificatePem);
  return keystore;
}

/**
 * The credentials our own app uses in sandbox mode. In public-key mode it knows the WeChat Pay public
 * key; in certificate mode it does not, and downloads the platform certificates like a legacy merchant.
 */
export function sandboxMerchantCredentials(
  keystore: SandboxKeystore,
  signMode: SandboxSignMode,
  miniprogram: { appid: string; appsecret: string } = sandboxMiniprogram(keystore),
): WechatCredentials {
  return {
    appid: keystore.appid,
    appsecret: keystore.appsecret,
    mchid: keystore.mchid,
    merchantPrivateKeyPem: keystore.merchant.privateKeyPem,
    merchantCertSerial: keystore.merchant.certSerial,
    apiv3Key: keystore.apiv3Key,
    wechatpayPublicKey:
      signMode === 'public_key' ? { id: keystore.publicKey.id, pem: keystore.publicKey.publicKeyPem } : undefined,
    miniprogram: { ...miniprogram },
  };
}
