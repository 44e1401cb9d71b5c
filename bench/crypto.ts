// Crypto path benchmark: what does one APIv3 signature, verification and notification decryption
// cost with each option, relative to raw node:crypto with a parsed KeyObject (measured in this run)?
//   npm run bench:crypto
import { createDecipheriv, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import NodeRSA from 'node-rsa';
import { AesGcmCipher } from '../src/wechat/pay/cipher';
import { WechatPaySigner } from '../src/wechat/pay/signer';
import { PublicKeySource, verifySigned } from '../src/wechat/pay/verifier';
import { responseMessageParts } from '../src/wechat/pay/formatter';
import { rsaVerifyParts } from '../src/wechat/pay/rsa';
import { opsPerSecond } from './lib';

async function asyncOpsPerSecond(fn: () => Promise<unknown>, durationMs = 1500): Promise<number> {
  const warm = performance.now() + 200;
  while (performance.now() < warm) await fn();
  let ops = 0;
  const start = performance.now();
  let now = start;
  while (now - start < durationMs) {
    for (let i = 0; i < 20; i++) await fn();
    ops += 20;
    now = performance.now();
  }
  return (ops * 1000) / (now - start);
}

function row(name: string, ops: number, base: number): string {
  return `| ${name} | ${Math.round(ops).toLocaleString('en-US')} | ${(ops / base).toFixed(2)}x |`;
}

async function main(): Promise<void> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const privateKeyObject = createPrivateKey(privatePem);
  const publicKeyObject = createPublicKey(publicPem);

  // A realistic request message and notification.
  const body = JSON.stringify({
    appid: 'wx1234567890abcdef',
    mchid: '1900000109',
    description: '测试商品 x 2',
    out_trade_no: 'T202611240000000001',
    notify_url: 'https://shop.example.com/notify/wechatpay/transaction',
    amount: { total: 8800, currency: 'CNY' },
    payer: { openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' },
  });
  const message = `POST\n/v3/pay/transactions/jsapi\n1732406400\n593BEC0C930BF1AFEB40B4A08C8FB242\n${body}\n`;
  const messageBuf = Buffer.from(message);
  const signature = sign('sha256', messageBuf, privateKeyObject);
  const signatureB64 = signature.toString('base64');

  const signer = new WechatPaySigner('1900000109', 'ABCDEF', privateKeyObject);
  const nodeRsaPkcs1 = new NodeRSA(privatePem, 'pkcs8-private-pem', { signingScheme: 'pkcs1-sha256' });
  const nodeRsaPublic = new NodeRSA(publicPem, 'pkcs8-public-pem', { signingScheme: 'pkcs1-sha256' });
  const nodeRsaDefault = new NodeRSA(privatePem, 'pkcs8-private-pem');
  const nodeRsaPureJs = new NodeRSA(privatePem, 'pkcs8-private-pem', { signingScheme: 'pkcs1-sha256', environment: 'browser' });

  // Correctness before speed: node-rsa's default scheme (PSS) is not what WeChat verifies.
  const pss = nodeRsaDefault.sign(messageBuf);
  console.log(`node-rsa default scheme verifies as PKCS#1 v1.5 (what WeChat checks): ${verify('sha256', messageBuf, publicKeyObject, pss)}`);
  console.log(`node-rsa 'pkcs1-sha256' verifies as PKCS#1 v1.5: ${verify('sha256', messageBuf, publicKeyObject, nodeRsaPkcs1.sign(messageBuf))}`);

  const rawSign = opsPerSecond(() => sign('sha256', messageBuf, privateKeyObject));
  const rows = [
    '| RSA-2048 sign | ops/s | vs raw |',
    '|---|---:|---:|',
    row('raw node:crypto, KeyObject (baseline)', rawSign, rawSign),
    row('ours: WechatPaySigner (KeyObject)', opsPerSecond(() => signer.sign(message)), rawSign),
    row("node-rsa 2, native, 'pkcs1-sha256'", opsPerSecond(() => nodeRsaPkcs1.sign(messageBuf)), rawSign),
    row('node:crypto with a PEM string per call', opsPerSecond(() => sign('sha256', messageBuf, privatePem)), rawSign),
    row("node-rsa 2, pure-JS engine, 'pkcs1-sha256'", opsPerSecond(() => nodeRsaPureJs.sign(messageBuf), 3000), rawSign),
  ];

  // Verification of a notification: three lines over the raw body.
  const now = 1_795_000_000;
  const notifyBody = Buffer.from(`{"id":"EV-1","event_type":"TRANSACTION.SUCCESS","resource":{"ciphertext":"${'A'.repeat(600)}"}}`);
  const notifyMessage = Buffer.concat([Buffer.from(`${now}\nd824f2e086d3c1df967785d13fcd22ef\n`), notifyBody, Buffer.from('\n')]);
  const notifySig = sign('sha256', notifyMessage, privateKeyObject).toString('base64');
  const notifySigBuf = Buffer.from(notifySig, 'base64');
  const keys = new PublicKeySource('PUB_KEY_ID_01', publicKeyObject);
  const headers = { timestamp: String(now), nonce: 'd824f2e086d3c1df967785d13fcd22ef', signature: notifySig, serial: 'PUB_KEY_ID_01' };
  const rawVerify = opsPerSecond(() => verify('sha256', notifyMessage, publicKeyObject, notifySigBuf));
  rows.push(
    '',
    '| RSA-2048 verify (notification) | ops/s | vs raw |',
    '|---|---:|---:|',
    row('raw node:crypto, KeyObject (baseline)', rawVerify, rawVerify),
    row('ours: rsaVerifyParts (no concatenation)', opsPerSecond(() => rsaVerifyParts(responseMessageParts(headers.timestamp, headers.nonce, notifyBody), notifySig, publicKeyObject)), rawVerify),
    row('ours: verifySigned (headers, skew, serial, signature)', await asyncOpsPerSecond(() => verifySigned(headers, notifyBody, keys, now)), rawVerify),
    row("node-rsa 2, native, 'pkcs1-sha256'", opsPerSecond(() => nodeRsaPublic.verify(notifyMessage, notifySigBuf)), rawVerify),
    row('node:crypto with a PEM string per call', opsPerSecond(() => verify('sha256', notifyMessage, publicPem, notifySigBuf)), rawVerify),
  );
  void signatureB64;

  // AES-256-GCM decryption of a notification resource.
  const apiv3Key = '0123456789abcdef0123456789abcdef';
  const cipher = new AesGcmCipher(apiv3Key);
  const resource = cipher.encrypt(
    JSON.stringify({
      appid: 'wx1234567890abcdef',
      mchid: '1900000109',
      out_trade_no: 'T202611240000000001',
      transaction_id: '4200000000202611240000000001',
      trade_type: 'JSAPI',
      trade_state: 'SUCCESS',
      trade_state_desc: '支付成功',
      bank_type: 'OTHERS',
      success_time: '2026-11-24T08:00:00+08:00',
      payer: { openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' },
      amount: { total: 8800, payer_total: 8800, currency: 'CNY', payer_currency: 'CNY' },
    }),
    'transaction',
  );
  const keyBuf = Buffer.from(apiv3Key);
  const rawDecrypt = opsPerSecond(() => {
    const data = Buffer.from(resource.ciphertext, 'base64');
    const d = createDecipheriv('aes-256-gcm', keyBuf, Buffer.from(resource.nonce));
    d.setAuthTag(data.subarray(data.length - 16));
    d.setAAD(Buffer.from('transaction'));
    return Buffer.concat([d.update(data.subarray(0, data.length - 16)), d.final()]);
  });
  rows.push(
    '',
    '| AES-256-GCM decrypt (notification resource) | ops/s | vs raw |',
    '|---|---:|---:|',
    row('raw node:crypto (baseline)', rawDecrypt, rawDecrypt),
    row('ours: AesGcmCipher.decryptResource', opsPerSecond(() => cipher.decryptResource(resource)), rawDecrypt),
  );
  console.log(`\nNode ${process.version}, one core, same run:\n`);
  console.log(rows.join('\n'));
}

void main();
