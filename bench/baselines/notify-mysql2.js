// Baseline (b) of bench/notify.ts: a minimal hand-written durable handler. Verify, decrypt, then one
// transaction per notification through mysql2 that inserts the raw event and runs the guarded
// UPDATE … WHERE status = 'NOTPAY'; 204 after COMMIT. Default MariaDB durability.
'use strict';
const crypto = require('node:crypto');
const { applyPayment, createPool, serve, verifyAndDecryptV3 } = require('./common');

const [, , port, publicKeyPath, apiv3Key, databaseUrl] = process.argv;
const publicKey = crypto.createPublicKey(require('node:fs').readFileSync(publicKeyPath));
const key = Buffer.from(apiv3Key);
const pool = createPool(databaseUrl);

serve(port, (req, res, body) => {
  const tx = verifyAndDecryptV3(publicKey, key, req.headers, body);
  if (!tx) {
    res.writeHead(401).end();
    return;
  }
  applyPayment(pool, { notificationId: tx.id, outTradeNo: tx.out_trade_no, transactionId: tx.transaction_id, total: tx.amount.total, body: body.toString() }).then(
    () => res.writeHead(204).end(),
    () => res.writeHead(500).end('{"code":"FAIL","message":"db"}'),
  );
});
