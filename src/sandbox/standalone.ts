// `npm run sandbox`: the WeChat sandbox alone, on SANDBOX_PORT (default 3100), for a backend written in
// any language. Prints what that backend must be configured with.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import cookieParser from 'cookie-parser';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { securityHeaders } from '../common/security-headers';
import { ConfigValidationError, loadConfig } from '../config/load-config';
import { AppConfigModule } from '../config/config.module';
import { SandboxKeystore, SandboxSignMode, loadOrCreateSandboxKeystore, sandboxKeystoreFiles, sandboxApiV2Key, sandboxMiniprogram, sandboxSubOfficialAccount } from './keystore';
import { sandboxSubMchids } from './sandbox-partner';
import { sandboxRootAlias } from './root-alias';
import { SandboxSecapiServer } from './sandbox-secapi.server';
import { SandboxModule } from './sandbox.module';

/** What the backend needs for the sign mode: the public key and its id, the platform certificate, or both. */
function signModeLines(mode: SandboxSignMode, ks: SandboxKeystore, files: ReturnType<typeof sandboxKeystoreFiles>, base: string): string[] {
  const publicKey = [`  WECHATPAY_PUBLIC_KEY_PATH=${files.wechatpayPublicKey}`, `  WECHATPAY_PUBLIC_KEY_ID=${ks.publicKey.id}`];
  const certificate = `  (platform certificate ${ks.platform.serial}: download it from ${base}/v3/certificates)`;
  if (mode === 'public_key') return [...publicKey, `  (public-key mode: ${base}/v3/certificates answers 404 RESOURCE_NOT_EXISTS, as WeChat does)`];
  if (mode === 'certificate') return [certificate];
  return [
    ...publicKey,
    certificate,
    "  (migration: answers are signed with the key the request's Wechatpay-Serial names, the certificate when none;",
    '   notifications with either at random)',
  ];
}

async function main(): Promise<void> {
  if (existsSync('.env')) process.loadEnvFile('.env');
  let config;
  try {
    const port = process.env.SANDBOX_PORT || '3100';
    // The sandbox's own public address: what the backend under test and the browser reach it at.
    config = loadConfig({ ...process.env, WECHAT_MODE: 'sandbox', PORT: port, PUBLIC_BASE_URL: process.env.SANDBOX_PUBLIC_URL || `http://localhost:${port}` });
  } catch (error) {
    if (error instanceof ConfigValidationError) {
      process.stderr.write(`the sandbox cannot start.\n${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }

  @Module({ imports: [AppConfigModule.forRoot(config), SandboxModule.forRoot(config, { standalone: true })] })
  class StandaloneSandboxModule {}

  const app = await NestFactory.create<NestExpressApplication>(StandaloneSandboxModule, { rawBody: true, bodyParser: false, logger: ['error', 'warn'] });
  app.disable('x-powered-by');
  // The same headers as the app's /sandbox pages (CSP without inline code, nosniff, no framing but the cashier's).
  app.use(securityHeaders({ publicBaseUrl: config.publicBaseUrl, sandboxOnly: true }));
  app.useBodyParser('json', { limit: '1mb' });
  app.useBodyParser('urlencoded', { extended: false });
  app.use(cookieParser());
  // WeChat's own paths at the root too (/v3/…, /sns/…, /cgi-bin/…, /connect/oauth2/authorize): an SDK
  // only changes its host. Before any route, so that every sandbox route gets the alias.
  app.use(sandboxRootAlias);
  app.enableShutdownHooks();
  await app.listen(config.port);

  const ks = await loadOrCreateSandboxKeystore(config.sandbox.dataDir);
  const base = `${config.publicBaseUrl}/sandbox`;
  const secapi = app.get(SandboxSecapiServer).origin;
  const dir = config.sandbox.dataDir;
  const files = sandboxKeystoreFiles(dir);
  const lines = [
    `WeChat sandbox listening on ${base} (sign mode: ${config.sandbox.signMode}, time scale: ${config.sandbox.timeScale})`,
    `Mutual-TLS port (the merchant certificate required): ${secapi}/secapi/… and ${secapi}/pay/downloadfundflow (also under /sandbox)`,
    `WeChat's paths also at the root, ${config.publicBaseUrl}/v3/…, /sns/…, /cgi-bin/…, /connect/oauth2/authorize:`,
    `  an SDK only changes its host (api.mch.weixin.qq.com, api.weixin.qq.com, open.weixin.qq.com → ${config.publicBaseUrl}).`,
    '',
    'Configure the backend under test with:',
    `  WECHATPAY_API_BASE=${base}        WECHAT_API_BASE=${base}        WECHAT_OPEN_BASE=${base}`,
    `  WECHAT_APPID=${ks.appid}`,
    `  WECHAT_APPSECRET=${ks.appsecret}`,
    `  WECHATPAY_MCHID=${ks.mchid}`,
    `  WECHAT_MINIPROGRAM_APPID=${(config.wechat.miniprogram ?? sandboxMiniprogram(ks)).appid}`,
    `  WECHAT_MINIPROGRAM_APPSECRET=${(config.wechat.miniprogram ?? sandboxMiniprogram(ks)).appsecret}`,
        `  WECHATPAY_PRIVATE_KEY_PATH=${files.merchantPrivateKey}`,
    `  WECHATPAY_CERT_SERIAL=${ks.merchant.certSerial}`,
    `  WECHATPAY_APIV3_KEY=${ks.apiv3Key}`,
    `  APIv2 merchants: WECHATPAY_API_V2_KEY=${sandboxApiV2Key(ks)}  WECHATPAY_CERT_PATH=${files.merchantCertificate}`,
    `    mutual TLS (/secapi/…, /pay/downloadfundflow): WECHATPAY_SECAPI_BASE=${secapi}/sandbox  NODE_EXTRA_CA_CERTS=${files.tlsCa}`,
    `  Service providers: WECHATPAY_SUB_MCHID=${sandboxSubMchids(config.sandbox.subMerchants).join(' or ')} (SANDBOX_SUB_MERCHANTS); sub-merchant ${sandboxSubMchids()[0]}'s own official account (sub_openid):`,
    `    WECHAT_SUB_APPID=${(config.wechat.partner?.subApp ?? sandboxSubOfficialAccount(ks)).appid}  WECHAT_SUB_APPSECRET=${(config.wechat.partner?.subApp ?? sandboxSubOfficialAccount(ks)).appsecret}`,
    `    the other sub-merchants' own official accounts (POST /admin/sub-merchants { subMchid, name, subAppid, subAppSecret }):`,
    ...sandboxSubMchids(config.sandbox.subMerchants)
      .slice(1)
      .map((subMchid) => `      ${subMchid}: subAppid=${sandboxSubOfficialAccount(ks, subMchid).appid}  subAppSecret=${sandboxSubOfficialAccount(ks, subMchid).appsecret}`),
    ...signModeLines(config.sandbox.signMode, ks, files, base),
    '',
    'Files (generated on the first start, kept under DATA_DIR/sandbox):',
    `  merchant API private key     ${files.merchantPrivateKey}`,
    `  merchant API certificate     ${files.merchantCertificate} (serial ${ks.merchant.certSerial})`,
    `  WeChat Pay public key        ${files.wechatpayPublicKey} (${ks.publicKey.id})`,
    `  WeChat Pay public key id     ${files.wechatpayPublicKeyId}`,
    `  WeChat Pay platform cert.    ${files.platformCertificate} (serial ${ks.platform.serial})`,
    `  sandbox TLS CA               ${files.tlsCa} (issued apiclient_cert.pem and the mutual-TLS port's certificate)`,
    `  everything (keystore)        ${join(dir, 'keystore.json')}`,
    '',
    `Browser side: ${base}/jweixin.js (JS-SDK + WeixinJSBridge), cashier ${base}/cashier?prepay_id=…`,
    `Test controls: ${base}/control/* (stats, faults, pay, notifications, clock, reset)` +
      (config.sandbox.controlToken ? ' (Authorization: Bearer $SANDBOX_CONTROL_TOKEN required)' : ' (open: set SANDBOX_CONTROL_TOKEN to require a bearer token)'),
    'These are sandbox credentials generated on this machine; they are worthless anywhere else.',
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

void main();
