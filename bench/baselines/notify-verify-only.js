// Baseline (a) of bench/notify.ts: a bare Node http server that only verifies, decrypts and parses a
// WeChat Pay notification, then answers 204. No framework, no database. Hand-written, independent.
'use strict';
const crypto = require('node:crypto');
const { serve, verifyAndDecryptV3 } = require('./common');

const [, , port, publicKeyPath, apiv3Key] = process.argv;
const publicKey = crypto.createPublicKey(require('node:fs').readFileSync(publicKeyPath));
const key = Buffer.from(apiv3Key);

serve(port, (req, res, body) => {
  if (!verifyAndDecryptV3(publicKey, key, req.headers, body)) {
    res.writeHead(401).end();
    return;
  }
  res.writeHead(204).end();
});
