// `npm run check:live`: before going live, checks the live credentials against WeChat without taking
// any money — a signed GET /v3/certificates (merchant id, certificate serial, private key; the answer's
// signature against the platform certificates or the WeChat Pay public key; the APIv3 key by
// decrypting the certificates), the official account's access_token (stable_token: a running instance
// keeps its token) and the jsapi_ticket. With WECHATPAY_API_VERSION=v2: the merchant certificate files
// (apiclient_cert.pem and its key, for the mutual-TLS refunds) and a signed APIv2 orderquery of an order
// that cannot exist (ORDERNOTEXIST = WeChat accepted the API key, mch_id and appid; its answer's sign is
// checked with the key too), instead of the APIv3 checks. Says what is wrong in plain words; never
// prints a secret.
import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { SystemClock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { ConfigValidationError, loadConfig } from '../config/load-config';
import { TransportError, TransportResponse, send } from '../wechat/http/transport';
import { WechatMpApiError, WechatMpNetworkError } from '../wechat/mp/errors';
import { WechatMpClient } from '../wechat/mp/wechat-mp.client';
import { CertificateManager } from '../wechat/pay/certificates';
import { AesGcmCipher } from '../wechat/pay/cipher';
import { PUBLIC_KEY_ID_PREFIX, USER_AGENT } from '../wechat/pay/constants';
import { WechatPayApiError, WechatPayBadAnswerError, WechatPayDecryptError, WechatPayNetworkError, WechatPaySignatureError } from '../wechat/pay/errors';
import { loadPrivateKey } from '../wechat/pay/rsa';
import { WechatPaySigner } from '../wechat/pay/signer';
import { CombinedKeySource, PublicKeySource, verifySigned } from '../wechat/pay/verifier';
import { signedHeadersOf } from '../wechat/pay/wechat-pay.http';
import type { WechatCredentials } from '../wechat/wechat-credentials';
import { v2Client } from '../wechat/wechat.module';

export interface CheckResult {
  ok: boolean;
  /** What was checked, e.g. "merchant signature". */
  name: string;
  /** What was found, or what is wrong and what to do, in plain words. */
  message: string;
}

const pass = (name: string, message: string): CheckResult => ({ ok: true, name, message });
const fail = (name: string, message: string): CheckResult => ({ ok: false, name, message });

function networkProblem(variable: string, base: string, error: { message: string; code?: string }): string {
  return `cannot reach ${variable} (${base}): ${error.code ?? error.message}. Check DNS, the firewall and any outbound proxy of this server.`;
}

/** WeChat's error body, as text for the message (never contains secrets). */
function wechatSaid(res: TransportResponse): { code: string; text: string } {
  const raw = res.body.toString('utf8');
  try {
    const body = JSON.parse(raw) as { code?: string; message?: string; detail?: unknown };
    const detail = body.detail === undefined ? '' : ` ${JSON.stringify(body.detail)}`;
    return { code: body.code ?? `HTTP_${res.status}`, text: `${res.status} ${body.code ?? ''} ${body.message ?? ''}${detail}`.replace(/\s+/g, ' ').trim() };
  } catch {
    return { code: `HTTP_${res.status}`, text: `${res.status} ${raw.slice(0, 200)}` };
  }
}

/** A 401 SIGN_ERROR: which of merchant id, serial and key is wrong, as far as WeChat's words tell. */
function signatureRefused(credentials: WechatCredentials, said: string): string {
  const m = credentials.mchid;
  const serial = credentials.merchantCertSerial;
  const tail = ` (WeChat Pay said: ${said})`;
  if (/序列号|serial/i.test(said)) {
    return (
      `WeChat Pay does not accept certificate serial ${serial} (WECHATPAY_CERT_SERIAL) for merchant ${m}. ` +
      'Read the serial from the merchant API certificate: openssl x509 -noout -serial -in apiclient_cert.pem (the hex after serial=), ' +
      'and make sure WECHATPAY_PRIVATE_KEY_PATH is the apiclient_key.pem issued with that certificate.' +
      tail
    );
  }
  if (/mchid|商户号|商户不存在|MCH_NOT_EXISTS/i.test(said)) {
    return (
      `WeChat Pay does not accept merchant id ${m} (WECHATPAY_MCHID) with certificate ${serial}: check the 商户号 ` +
      '(商户平台 → 账户中心 → 商户信息) and that the API certificate and key were issued for that merchant.' +
      tail
    );
  }
  return (
    `WeChat Pay could not verify our signature: WECHATPAY_PRIVATE_KEY_PATH is not the private key of certificate ${serial} ` +
    `(WECHATPAY_CERT_SERIAL) of merchant ${m} (WECHATPAY_MCHID). Use the apiclient_key.pem issued together with apiclient_cert.pem.` +
    tail
  );
}

/** The Pay API checks: one signed GET /v3/certificates. */
async function checkPay(config: AppConfig, credentials: WechatCredentials): Promise<CheckResult[]> {
  const base = config.wechat.payApiBase;
  let signer: WechatPaySigner;
  try {
    signer = new WechatPaySigner(credentials.mchid, credentials.merchantCertSerial, loadPrivateKey(credentials.merchantPrivateKeyPem));
  } catch (error) {
    return [fail('merchant private key', `WECHATPAY_PRIVATE_KEY_PATH is not a readable RSA private key (${(error as Error).message}): it must be apiclient_key.pem from the merchant API certificate download.`)];
  }
  let publicKey: PublicKeySource | undefined;
  if (credentials.wechatpayPublicKey) {
    try {
      publicKey = new PublicKeySource(credentials.wechatpayPublicKey.id, credentials.wechatpayPublicKey.pem);
    } catch (error) {
      return [fail('WeChat Pay public key', `WECHATPAY_PUBLIC_KEY_PATH is not a readable RSA public key (${(error as Error).message}): download it from 商户平台 → 账户中心 → API安全 → 微信支付公钥.`)];
    }
  }

  const url = new URL(`${base}/v3/certificates?algorithm_type=RSA`);
  let res: TransportResponse;
  try {
    res = await send({
      method: 'GET',
      url,
      headers: {
        Authorization: signer.authorization('GET', url.pathname + url.search, '', Math.floor(Date.now() / 1000)),
        Accept: 'application/json',
        'User-Agent': `${USER_AGENT} check-live`,
        ...(publicKey ? { 'Wechatpay-Serial': publicKey.keyId } : {}),
      },
      timeoutMs: config.wechat.httpTimeoutMs,
    });
  } catch (error) {
    if (error instanceof TransportError) return [fail('merchant signature', networkProblem('WECHATPAY_API_BASE', base, error))];
    throw error;
  }
  const said = res.status >= 200 && res.status < 300 ? undefined : wechatSaid(res);
  if (res.status === 401) return [fail('merchant signature', signatureRefused(credentials, said!.text))];
  // Merchants in WeChat Pay public-key mode have no platform certificates: WeChat answers 404
  // RESOURCE_NOT_EXISTS "无可用的平台证书…" (NOT_FOUND accepted too), signed with the public key.
  if (said && res.status === 404 && (said.code === 'RESOURCE_NOT_EXISTS' || said.code === 'NOT_FOUND')) {
    if (!publicKey) {
      const signedWith = signedHeadersOf(res.headers).serial;
      return [
        pass('merchant signature', `WeChat Pay accepted merchant ${credentials.mchid}, serial ${credentials.merchantCertSerial} and the private key`),
        fail(
          'answer verification',
          signedWith?.startsWith(PUBLIC_KEY_ID_PREFIX)
            ? `this merchant has no platform certificates: it uses WeChat Pay public-key mode. WeChat Pay signs with its public key ${signedWith}: set WECHATPAY_PUBLIC_KEY_ID=${signedWith} ` +
                'and WECHATPAY_PUBLIC_KEY_PATH to that key (商户平台 → 账户中心 → API安全 → 微信支付公钥).'
            : 'this merchant has no platform certificates: it uses WeChat Pay public-key mode. Download the public key and its id from 商户平台 → 账户中心 → API安全 → 微信支付公钥, ' +
                'and set WECHATPAY_PUBLIC_KEY_PATH and WECHATPAY_PUBLIC_KEY_ID (PUB_KEY_ID_…).',
        ),
      ];
    }
    return [
      pass('merchant signature', `WeChat Pay accepted merchant ${credentials.mchid}, serial ${credentials.merchantCertSerial} and the private key`),
      await verifyAnswer(res, new CombinedKeySource(publicKey, undefined), publicKey),
      pass('APIv3 key', 'public-key mode: nothing encrypted to try it on without a payment; it is 32 characters. The first payment notification proves it (a wrong key fails it with WECHATPAY_DECRYPT_FAILED in the log).'),
    ];
  }
  if (said) return [fail('merchant signature', `WeChat Pay answered ${said.text}. ${res.status >= 500 || res.status === 429 ? 'A passing failure: run the check again.' : 'See what it says above.'}`)];

  const results: CheckResult[] = [pass('merchant signature', `WeChat Pay accepted merchant ${credentials.mchid}, serial ${credentials.merchantCertSerial} and the private key`)];
  const manager = new CertificateManager({
    mchid: credentials.mchid,
    cipher: new AesGcmCipher(credentials.apiv3Key),
    fallbackKeys: publicKey,
    now: () => Date.now(),
    download: async () => ({ headers: signedHeadersOf(res.headers), body: res.body }),
  });
  try {
    await manager.refresh({ skipStore: true });
  } catch (error) {
    if (error instanceof WechatPayDecryptError) {
      results.push(fail('APIv3 key', 'the platform certificates cannot be decrypted with WECHATPAY_APIV3_KEY: it is not the APIv3 key set in 商户平台 → 账户中心 → API安全 → APIv3密钥 (setting a new one there replaces the old).'));
      return results;
    }
    if (error instanceof WechatPaySignatureError) {
      results.push(answerRefused(error, publicKey));
      return results;
    }
    results.push(fail('platform certificates', `the /v3/certificates answer could not be read: ${(error as Error).message}`));
    return results;
  } finally {
    manager.stop();
  }
  const serials = manager.list().map((c) => c.serialNo);
  results.push(pass('APIv3 key', `decrypts the platform certificates (${serials.join(', ')})`));
  results.push(await verifyAnswer(res, new CombinedKeySource(publicKey, manager), publicKey));
  return results;
}

function answerRefused(error: WechatPaySignatureError, publicKey: PublicKeySource | undefined): CheckResult {
  const serial = error.serial;
  if (serial?.startsWith(PUBLIC_KEY_ID_PREFIX)) {
    if (!publicKey) {
      return fail('answer verification', `WeChat Pay signs with its public key ${serial}: set WECHATPAY_PUBLIC_KEY_ID=${serial} and WECHATPAY_PUBLIC_KEY_PATH to that key (商户平台 → API安全 → 微信支付公钥).`);
    }
    if (serial !== publicKey.keyId) {
      return fail('answer verification', `WeChat Pay signs with public key ${serial}, but WECHATPAY_PUBLIC_KEY_ID is ${publicKey.keyId}: use the id shown next to the key in 商户平台 → API安全 → 微信支付公钥.`);
    }
    return fail('answer verification', `WeChat Pay's answer does not verify with WECHATPAY_PUBLIC_KEY_PATH: it is not the public key ${publicKey.keyId}. Download it again from 商户平台 → API安全 → 微信支付公钥.`);
  }
  if (error.reason === 'stale_timestamp') {
    return fail('answer verification', `${error.message}: this server's clock is off. Synchronise it (NTP); WeChat refuses requests more than 5 minutes away.`);
  }
  return fail('answer verification', `WeChat Pay's answer does not verify (${error.reason}: ${error.message}).`);
}

async function verifyAnswer(res: TransportResponse, keys: CombinedKeySource, publicKey: PublicKeySource | undefined): Promise<CheckResult> {
  try {
    const serial = await verifySigned(signedHeadersOf(res.headers), res.body, keys, Math.floor(Date.now() / 1000));
    return pass(
      'answer verification',
      serial.startsWith(PUBLIC_KEY_ID_PREFIX) ? `WeChat Pay's answer verifies with the public key ${serial}` : `WeChat Pay's answer verifies with platform certificate ${serial}`,
    );
  } catch (error) {
    if (error instanceof WechatPaySignatureError) return answerRefused(error, publicKey);
    throw error;
  }
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * APIv2: apiclient_cert.pem (WECHATPAY_CERT_PATH) and apiclient_key.pem (WECHATPAY_PRIVATE_KEY_PATH),
 * which the refunds present for mutual TLS: a certificate, its key, of this merchant (its CN is the
 * 商户号), valid now.
 */
function checkMerchantCertificate(credentials: WechatCredentials, now: number): CheckResult {
  const name = 'merchant certificate';
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(credentials.merchantCertPem ?? '');
  } catch (error) {
    return fail(name, `WECHATPAY_CERT_PATH is not a readable X.509 certificate (${(error as Error).message}): it must be apiclient_cert.pem from the merchant API certificate download.`);
  }
  const renew = 'Apply for a new API certificate in 商户平台 → 账户中心 → API安全 → API证书 and use the apiclient_cert.pem and apiclient_key.pem it gives.';
  try {
    if (!cert.checkPrivateKey(createPrivateKey(credentials.merchantPrivateKeyPem))) {
      return fail(name, `WECHATPAY_PRIVATE_KEY_PATH is not the private key of the certificate in WECHATPAY_CERT_PATH (serial ${cert.serialNumber}): use the apiclient_key.pem downloaded together with that apiclient_cert.pem.`);
    }
  } catch (error) {
    return fail(name, `WECHATPAY_PRIVATE_KEY_PATH is not a readable private key (${(error as Error).message}): it must be apiclient_key.pem from the merchant API certificate download.`);
  }
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1];
  if (cn && /^\d+$/.test(cn) && cn !== credentials.mchid) {
    return fail(name, `WECHATPAY_CERT_PATH is the API certificate of merchant ${cn}, not of ${credentials.mchid} (WECHATPAY_MCHID): use the certificate downloaded from merchant ${credentials.mchid}'s 商户平台.`);
  }
  const validFrom = Date.parse(cert.validFrom);
  const validTo = Date.parse(cert.validTo);
  if (now < validFrom) return fail(name, `the certificate in WECHATPAY_CERT_PATH (serial ${cert.serialNumber}) is valid only from ${cert.validFrom}: check this server's clock (NTP).`);
  if (now > validTo) return fail(name, `the certificate in WECHATPAY_CERT_PATH (serial ${cert.serialNumber}) expired on ${cert.validTo}: refunds will fail. ${renew}`);
  const days = Math.floor((validTo - now) / DAY_MS);
  const soon = days < 30 ? ` It expires in ${days} day(s): renew it before then. ${renew}` : '';
  return pass(name, `WECHATPAY_CERT_PATH (serial ${cert.serialNumber}, valid until ${cert.validTo}) and WECHATPAY_PRIVATE_KEY_PATH are a pair: refunds can present them (mutual TLS).${soon}`);
}

/** APIv2: a signed orderquery of an order that cannot exist; ORDERNOTEXIST is the good answer. */
async function checkPayV2(config: AppConfig, credentials: WechatCredentials): Promise<CheckResult[]> {
  const results = [checkMerchantCertificate(credentials, Date.now())];
  const name = 'APIv2 key';
  const m = credentials.mchid;
  const signType = config.wechat.v2SignType;
  const client = v2Client(credentials, config, new SystemClock(), undefined);
  const probe = `CHECKLIVE${Date.now()}`;
  try {
    await client.queryByOutTradeNo(probe);
    results.push(pass(name, `WeChat Pay accepted merchant ${m}'s ${signType} sign made with WECHATPAY_API_V2_KEY, and its answer verifies with it`));
  } catch (error) {
    if (error instanceof WechatPayApiError && error.wechatCode === 'ORDER_NOT_EXIST') {
      results.push(pass(name, `WeChat Pay accepted merchant ${m}'s ${signType} sign made with WECHATPAY_API_V2_KEY (an orderquery of the made-up out_trade_no ${probe}: ORDERNOTEXIST), and its answer verifies with it`));
    } else if (error instanceof WechatPayApiError) {
      const said = ` (WeChat Pay said: ${error.message})`;
      if (error.wechatCode === 'SIGN_ERROR') {
        results.push(
          fail(
            name,
            `WeChat Pay refused our ${signType} sign: WECHATPAY_API_V2_KEY is not the API key of merchant ${m} (WECHATPAY_MCHID). Copy it from 商户平台 → 账户中心 → API安全 → 设置API密钥 ` +
              '(32 characters; setting a new one there replaces the old, which then fails here).' +
              said,
          ),
        );
      } else if (/appid/i.test(error.message)) {
        results.push(fail(name, `WeChat Pay says WECHAT_APPID ${credentials.appid} is not bound to merchant ${m}: bind it in 商户平台 → 产品中心 → AppID账号管理, or fix WECHAT_APPID / WECHATPAY_MCHID.${said}`));
      } else if (/mch_?id|商户号/i.test(error.message)) {
        results.push(fail(name, `WeChat Pay does not accept merchant id ${m} (WECHATPAY_MCHID): check the 商户号 (商户平台 → 账户中心 → 商户信息).${said}`));
      } else {
        const passing = error.httpStatus >= 500 || error.httpStatus === 429;
        results.push(fail(name, `WeChat Pay answered ${error.wechatCode}: ${error.message}. ${passing ? 'A passing failure: run the check again.' : 'See what it says.'}`));
      }
    } else if (error instanceof WechatPayBadAnswerError) {
      results.push(fail(name, `WeChat Pay accepted the request, but its answer does not verify with WECHATPAY_API_V2_KEY (${error.message}): is something between this server and WECHATPAY_API_BASE rewriting answers?`));
    } else if (error instanceof WechatPayNetworkError) {
      results.push(fail(name, networkProblem('WECHATPAY_API_BASE', config.wechat.payApiBase, error)));
    } else {
      throw error;
    }
  }
  return results;
}

/** errcodes of the official-account API, in plain words. */
function mpProblem(error: WechatMpApiError, credentials: WechatCredentials): string {
  const said = ` (WeChat said: ${error.errcode} ${error.errmsg})`;
  switch (error.errcode) {
    case 40013:
      return `WECHAT_APPID ${credentials.appid} is not a valid appid: copy it from 公众号后台 → 设置与开发 → 基本配置 → 开发者ID(AppID).${said}`;
    case 40125:
    case 40001:
    case 41004:
      return `WECHAT_APPSECRET is not the AppSecret of ${credentials.appid}: copy it from 公众号后台 → 设置与开发 → 基本配置 → 开发者密码(AppSecret) (resetting it there makes the old one invalid).${said}`;
    case 40164:
    case 61004:
    case 89503:
      return `WeChat refuses calls from this server's IP address: add it to 公众号后台 → 设置与开发 → 基本配置 → IP白名单.${said}`;
    case 48001:
      return `the official account ${credentials.appid} may not call this API: JSAPI payment and the JS-SDK need a verified 服务号 (微信认证).${said}`;
    case 45009:
      return `the daily quota of this API is used up; try again tomorrow or reset the quota in 公众号后台.${said}`;
    case -1:
      return `WeChat is busy: run the check again.${said}`;
    default:
      return `WeChat answered errcode ${error.errcode}: ${error.errmsg}.`;
  }
}

async function checkMp(config: AppConfig, credentials: WechatCredentials): Promise<CheckResult[]> {
  // stable_token (without force_refresh) hands out the token in use: a running instance keeps its own.
  const mp = new WechatMpClient(credentials, { apiBase: config.wechat.mpApiBase, openBase: config.wechat.openBase, timeoutMs: config.wechat.httpTimeoutMs, useStableToken: true });
  let accessToken: string;
  try {
    accessToken = (await mp.getAccessToken()).access_token;
  } catch (error) {
    if (error instanceof WechatMpApiError) return [fail('official account (access_token)', mpProblem(error, credentials))];
    if (error instanceof WechatMpNetworkError) return [fail('official account (access_token)', networkProblem('WECHAT_API_BASE', config.wechat.mpApiBase, error))];
    throw error;
  }
  const results = [pass('official account (access_token)', `WECHAT_APPID ${credentials.appid} and WECHAT_APPSECRET get an access_token`)];
  try {
    await mp.getJsapiTicket(accessToken);
    results.push(pass('JS-SDK (jsapi_ticket)', 'the access_token gets a jsapi_ticket: wx.config can be signed'));
  } catch (error) {
    if (error instanceof WechatMpApiError) results.push(fail('JS-SDK (jsapi_ticket)', mpProblem(error, credentials)));
    else if (error instanceof WechatMpNetworkError) results.push(fail('JS-SDK (jsapi_ticket)', networkProblem('WECHAT_API_BASE', config.wechat.mpApiBase, error)));
    else throw error;
  }
  return results;
}

/** Every check, in order; a missing or unreadable key file is reported, not thrown. */
export async function runLiveChecks(config: AppConfig): Promise<CheckResult[]> {
  const w = config.wechat;
  const read = (variable: string, path: string): string | CheckResult => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return fail(variable, `${variable} points to ${path}, which does not exist or cannot be read by this user.`);
    }
  };
  const key = read('WECHATPAY_PRIVATE_KEY_PATH', w.privateKeyPath!);
  if (w.apiVersion === 'v2') {
    const cert = read('WECHATPAY_CERT_PATH', w.certPath!);
    const unreadableV2 = [key, cert].filter((x): x is CheckResult => typeof x === 'object');
    if (unreadableV2.length) return unreadableV2;
    const v2Credentials: WechatCredentials = {
      appid: w.appid!,
      appsecret: w.appsecret!,
      mchid: w.mchid!,
      merchantPrivateKeyPem: key as string,
      merchantCertSerial: '',
      apiv3Key: '',
      apiV2Key: w.apiV2Key!,
      merchantCertPem: cert as string,
    };
    return [...(await checkPayV2(config, v2Credentials)), ...(await checkMp(config, v2Credentials))];
  }
  const pub = w.publicKeyPath ? read('WECHATPAY_PUBLIC_KEY_PATH', w.publicKeyPath) : undefined;
  const unreadable = [key, pub].filter((x): x is CheckResult => typeof x === 'object');
  if (unreadable.length) return unreadable;
  const credentials: WechatCredentials = {
    appid: w.appid!,
    appsecret: w.appsecret!,
    mchid: w.mchid!,
    merchantPrivateKeyPem: key as string,
    merchantCertSerial: w.certSerial!.toUpperCase(),
    apiv3Key: w.apiv3Key!,
    wechatpayPublicKey: w.publicKeyId && pub ? { id: w.publicKeyId, pem: pub as string } : undefined,
  };
  return [...(await checkPay(config, credentials)), ...(await checkMp(config, credentials))];
}

async function main(): Promise<void> {
  // Only this command's own lines: the clients' request logs would bury them.
  Logger.overrideLogger(false);
  if (existsSync('.env')) process.loadEnvFile('.env');
  let config: AppConfig;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigValidationError) {
      process.stderr.write(`check:live: the configuration is not valid.\n${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  if (config.wechatMode !== 'live') {
    process.stderr.write('check:live: WECHAT_MODE is sandbox, so there is nothing to check against WeChat. Set WECHAT_MODE=live with the merchant and official-account credentials (README, "Going live").\n');
    process.exit(1);
  }
  process.stdout.write(`check:live: checking the live credentials against ${config.wechat.payApiBase} and ${config.wechat.mpApiBase} (no payment is made)\n`);
  const results = await runLiveChecks(config);
  for (const r of results) process.stdout.write(`${r.ok ? 'OK  ' : 'FAIL'}  ${r.name}: ${r.message}\n`);
  const failed = results.filter((r) => !r.ok).length;
  process.stdout.write(failed ? `check:live: ${failed} problem(s) found; fix them before going live.\n` : 'check:live: all OK.\n');
  process.exitCode = failed ? 1 : 0;
}

if (require.main === module) void main();
