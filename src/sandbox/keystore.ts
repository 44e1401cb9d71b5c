import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createHash, generateKeyPairSync, randomBytes, randomInt, webcrypto } from 'node:crypto';
import { chmodSync, existsSync, linkSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WechatCredentials } from '../wechat/wechat-credentials';
import { SandboxTls, generateSandboxTls, issuedBy } from './keystore-tls';

export type { SandboxTls } from './keystore-tls';

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
  /** The merchant's APIv2 key (32 characters; absent from keystores made before APIv2: see sandboxApiV2Key). */
  apiV2Key?: string;
}

/** The merchant's APIv2 key: the keystore's, or for an older keystore one derived from its secrets (stable across processes). */
export function sandboxApiV2Key(keystore: SandboxKeystore): string {
  if (keystore.apiV2Key) return keystore.apiV2Key;
  return createHash('sha256').update(`apiv2-key:${keystore.appsecret}:${keystore.apiv3Key}`).digest('hex').slice(0, 32);
}

/**
 * The sandbox's mini-program: the keystore's, or for a keystore written before mini-programs existed
 * one derived from its secrets (the same in every process sharing the directory, without rewriting
 * the file).
 */
/**
 * The official account of a sandbox sub-merchant (service-provider mode): its sub_appid, bound to that
 * sub-merchant only. The first one's (no `subMchid`: 1900000201, or the app's default sub-merchant)
 * is WECHAT_SUB_APPID/WECHAT_SUB_APPSECRET when set; every other bound sub-merchant has one derived
 * with its number. Derived from the keystore's secrets (stable across processes).
 */
export function sandboxSubOfficialAccount(keystore: SandboxKeystore, subMchid?: string): { appid: string; appsecret: string } {
  // The first sub-merchant's keeps the labels it always had; any other's names its sub-merchant.
  const suffix = subMchid ? `:${subMchid}` : '';
  const digest = (label: string) => createHash('sha256').update(`${label}${suffix}:${keystore.appsecret}:${keystore.apiv3Key}`).digest('hex');
  return { appid: `wx${digest('sub-official-account-appid').slice(0, 16)}`, appsecret: digest('sub-official-account-secret').slice(0, 32) };
}

export function sandboxMiniprogram(keystore: SandboxKeystore): { appid: string; appsecret: string } {
  if (keystore.miniprogram) return keystore.miniprogram;
  const digest = (label: string) => createHash('sha256').update(`${label}:${keystore.appsecret}:${keystore.apiv3Key}`).digest('hex');
  return { appid: `wx${digest('miniprogram-appid').slice(0, 16)}`, appsecret: digest('miniprogram-secret').slice(0, 32) };
}

export type SandboxSignMode = 'public_key' | 'certificate' | 'migration';

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

const PLATFORM_NAME = 'CN=Tenpay.com Root CA (sandbox),OU=Tenpay.com CA Center,O=Tenpay.com,L=Shenzhen,ST=Guangdong,C=CN';

async function selfSigned(pair: { privateKeyPem: string; publicKeyPem: string }, serialHex: string, name = PLATFORM_NAME): Promise<string> {
  const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  const der = (pem: string) => Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const privateKey = await webcrypto.subtle.importKey('pkcs8', der(pair.privateKeyPem), alg, true, ['sign']);
  const publicKey = await webcrypto.subtle.importKey('spki', der(pair.publicKeyPem), alg, true, ['verify']);
  const notBefore = new Date(Date.now() - 24 * 3600_000);
  const notAfter = new Date(notBefore.getTime() + 5 * 365 * 24 * 3600_000);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialHex,
    name,
    notBefore,
    notAfter,
    keys: { privateKey, publicKey } as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'],
    signingAlgorithm: alg,
  });
  return cert.toString('pem');
}

/** 40 hex digits; the first byte is 0x10-0x7F so that the DER INTEGER is positive and keeps all 40 digits. */
function certificateSerial(): string {
  return (randomInt(0x10, 0x80).toString(16) + randomBytes(19).toString('hex')).toUpperCase();
}

async function generate(): Promise<SandboxKeystore> {
  const merchant = rsaPair();
  const platform = rsaPair();
  const wechatpayPublic = rsaPair();
  const platformSerial = certificateSerial();
  return {
    version: 1,
    appid: `wx${randomString(16)}`,
    appsecret: randomBytes(16).toString('hex'),
    mchid: `19${randomString(8, '0123456789')}`,
    apiv3Key: randomString(32, ALPHANUM + 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'),
    merchant: { ...merchant, certSerial: certificateSerial() },
    platform: {
      privateKeyPem: platform.privateKeyPem,
      certificatePem: await selfSigned(platform, platformSerial),
      serial: platformSerial,
    },
    publicKey: { id: `PUB_KEY_ID_${randomString(30, '0123456789')}`, ...wechatpayPublic },
    miniprogram: { appid: `wx${randomString(16)}`, appsecret: randomBytes(16).toString('hex') },
    apiV2Key: randomString(32, ALPHANUM + 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'),
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
const loading = new Map<string, Promise<{ keystore: SandboxKeystore; tls: SandboxTls }>>();

function load(dir: string): Promise<{ keystore: SandboxKeystore; tls: SandboxTls }> {
  // One generation per directory per process, however many modules ask at start-up.
  let promise = loading.get(dir);
  if (!promise) {
    promise = loadOrCreate(dir);
    loading.set(dir, promise);
    promise.catch(() => loading.delete(dir));
  }
  return promise;
}

export async function loadOrCreateSandboxKeystore(dir: string): Promise<SandboxKeystore> {
  return (await load(dir)).keystore;
}

/**
 * The sandbox's TLS material (its CA, the /secapi server certificate, the CA-issued apiclient_cert.pem),
 * generated beside the keystore on the first start (DATA_DIR/sandbox/sandbox-tls.json; a keystore made
 * before it existed gets it on the next start, keeping its merchant key and serial).
 */
export async function loadOrCreateSandboxTls(dir: string): Promise<SandboxTls> {
  return (await load(dir)).tls;
}

/** Reads `file`, or writes what `generate` makes under a temporary name and links it into place (the first process wins). */
async function loadOrCreateJson<T>(dir: string, file: string, generate: () => Promise<T>): Promise<T> {
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as T;
  mkdirSync(dir, { recursive: true });
  const generated = await generate();
  const tmp = temporaryName(file);
  writePrivate(tmp, JSON.stringify(generated, null, 2));
  try {
    linkSync(tmp, file);
    return generated;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } finally {
    unlinkSync(tmp);
  }
}

async function loadOrCreate(dir: string): Promise<{ keystore: SandboxKeystore; tls: SandboxTls }> {
  const keystore = await loadOrCreateJson(dir, join(dir, 'keystore.json'), generate);
  const tls = await loadOrCreateJson(dir, join(dir, 'sandbox-tls.json'), () =>
    generateSandboxTls({ mchid: keystore.mchid, publicKeyPem: keystore.merchant.publicKeyPem, certSerial: keystore.merchant.certSerial }),
  );
  await writeMerchantFiles(dir, keystore, tls);
  return { keystore, tls };
}

function temporaryName(file: string): string {
  return `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
}

/** Where the files another backend (or an SDK) needs to talk to the sandbox as this merchant are. */
export function sandboxKeystoreFiles(dir: string) {
  return {
    /** The merchant's API private key (WECHATPAY_PRIVATE_KEY_PATH). */
    merchantPrivateKey: join(dir, 'apiclient_key.pem'),
    /** The merchant's API certificate: SDKs read the serial (WECHATPAY_CERT_SERIAL) from it. */
    merchantCertificate: join(dir, 'apiclient_cert.pem'),
    /** WeChat Pay's public key (public-key mode, WECHATPAY_PUBLIC_KEY_PATH). */
    wechatpayPublicKey: join(dir, 'wechatpay_public_key.pem'),
    /** Its id, the `PUB_KEY_ID_…` (public-key mode, WECHATPAY_PUBLIC_KEY_ID). */
    wechatpayPublicKeyId: join(dir, 'wechatpay_public_key_id.txt'),
    /** WeChat Pay's platform certificate (certificate mode; also downloadable from /v3/certificates). */
    platformCertificate: join(dir, 'wechatpay_platform_cert.pem'),
    /**
     * The sandbox's own CA: it issued apiclient_cert.pem and the certificate of the mutual-TLS /secapi
     * endpoint. Trust it to call that endpoint (NODE_EXTRA_CA_CERTS, or an SDK's `ca`); it is valid for
     * localhost, 127.0.0.0/8 and ::1 only.
     */
    tlsCa: join(dir, 'sandbox_ca.pem'),
  };
}

/**
 * Writes each of those files that is missing (a keystore made before a file existed gets it on the next
 * start). Each is written under a temporary name and renamed into place, so that processes starting
 * together never see half a file.
 */
async function writeMerchantFiles(dir: string, keystore: SandboxKeystore, tls: SandboxTls): Promise<void> {
  const files = sandboxKeystoreFiles(dir);
  const put = async (path: string, content: () => string | Promise<string>, secret = false, keep: (existing: string) => boolean = () => true) => {
    if (existsSync(path) && keep(readFileSync(path, 'utf8'))) return;
    const tmp = temporaryName(path);
    if (secret) writePrivate(tmp, await content());
    else writeFileSync(tmp, await content());
    renameSync(tmp, path);
  };
  await put(files.merchantPrivateKey, () => keystore.merchant.privateKeyPem, true);
  // An older sandbox's apiclient_cert.pem was self-signed: replaced by the CA-issued one (same key and
  // serial), which the mutual-TLS endpoint accepts.
  await put(files.merchantCertificate, () => tls.merchantCertificatePem, false, (existing) => issuedBy(existing, tls.ca.certificatePem));
  await put(files.wechatpayPublicKey, () => keystore.publicKey.publicKeyPem);
  await put(files.wechatpayPublicKeyId, () => `${keystore.publicKey.id}\n`);
  await put(files.platformCertificate, () => keystore.platform.certificatePem);
  await put(files.tlsCa, () => tls.ca.certificatePem, false, (existing) => existing === tls.ca.certificatePem);
}

/**
 * The credentials our own app uses in sandbox mode. In public-key mode it knows only the WeChat Pay
 * public key; in certificate mode it does not, and downloads the platform certificates like a legacy
 * merchant; in migration mode it is configured like a merchant midway through the switch: with the
 * public key (named in its requests) and the platform certificates downloaded when a notification
 * signed with one arrives.
 */
export function sandboxMerchantCredentials(
  keystore: SandboxKeystore,
  signMode: SandboxSignMode,
  miniprogram: { appid: string; appsecret: string } = sandboxMiniprogram(keystore),
  tls?: SandboxTls,
): WechatCredentials {
  return {
    appid: keystore.appid,
    appsecret: keystore.appsecret,
    mchid: keystore.mchid,
    merchantPrivateKeyPem: keystore.merchant.privateKeyPem,
    merchantCertSerial: keystore.merchant.certSerial,
    apiv3Key: keystore.apiv3Key,
    wechatpayPublicKey:
      signMode === 'certificate' ? undefined : { id: keystore.publicKey.id, pem: keystore.publicKey.publicKeyPem },
    miniprogram: { ...miniprogram },
    apiV2Key: sandboxApiV2Key(keystore),
    // APIv2 /secapi calls: the CA-issued apiclient_cert.pem, and the sandbox's CA trusted for its TLS endpoint.
    ...(tls ? { merchantCertPem: tls.merchantCertificatePem, trustedCaPem: tls.ca.certificatePem } : {}),
  };
}
