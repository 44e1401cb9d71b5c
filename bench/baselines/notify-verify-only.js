// Baseline (a) of bench/notify.ts: a bare Node http server that only verifies, decrypts and parses a
// WeChat Pay notification, then answers 204. No framework, no database. Hand-written, independent.
'use strict';
const http = require('node:http');
const crypto = require('node:crypto');

const [, , port, publicKeyPath, apiv3Key] = process.argv;
const publicKey = crypto.createPublicKey(require('node:fs').readFileSync(publicKeyPath));
const key = Buffer.from(apiv3Key);

http
  .createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const ts = req.headers['wechatpay-timestamp'];
      const nonce = req.headers['wechatpay-nonce'];
      const signature = req.headers['wechatpay-signature'];
      const ok =
        Math.abs(Date.now() / 1000 - Number(ts)) < 300 &&
        crypto.verify('sha256', Buffer.concat([Buffer.from(`${ts}\n${nonce}\n`), body, Buffer.from('\n')]), publicKey, Buffer.from(signature, 'base64'));
      if (!ok) {
        res.writeHead(401).end();
        return;
      }
      const envelope = JSON.parse(body.toString());
      const r = envelope.resource;
      const data = Buffer.from(r.ciphertext, 'base64');
      const d = crypto.createDecipheriv('aes-256-gcm', key, Buffer.from(r.nonce));
      d.setAuthTag(data.subarray(data.length - 16));
      d.setAAD(Buffer.from(r.associated_data));
      JSON.parse(Buffer.concat([d.update(data.subarray(0, data.length - 16)), d.final()]).toString());
      res.writeHead(204).end();
    });
  })
  .listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
