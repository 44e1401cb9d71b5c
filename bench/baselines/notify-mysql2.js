// Baseline (b) of bench/notify.ts: a minimal hand-written durable handler. Verify, decrypt, then one
// transaction per notification through mysql2 that inserts the raw event and runs the guarded
// UPDATE … WHERE status = 'NOTPAY'; 204 after COMMIT. Default MariaDB durability.
'use strict';
const http = require('node:http');
const crypto = require('node:crypto');
const mysql = require('mysql2/promise');

const [, , port, publicKeyPath, apiv3Key, databaseUrl] = process.argv;
const publicKey = crypto.createPublicKey(require('node:fs').readFileSync(publicKeyPath));
const key = Buffer.from(apiv3Key);
const url = new URL(databaseUrl);
const pool = mysql.createPool({
  host: url.hostname,
  port: Number(url.port || 3306),
  user: decodeURIComponent(url.username),
  password: decodeURIComponent(url.password),
  database: url.pathname.slice(1),
  connectionLimit: 16,
  timezone: 'Z',
});

async function apply(body, tx) {
  const conn = await pool.getConnection();
  try {
    await conn.beginTransaction();
    await conn.query(
      "INSERT INTO payment_events (kind, notification_id, event_type, out_trade_no, verified, outcome, raw_body, received_at) VALUES ('transaction', ?, 'TRANSACTION.SUCCESS', ?, 1, 'received', ?, NOW(3))",
      [tx.id, tx.out_trade_no, body],
    );
    await conn.query(
      "UPDATE orders SET status = 'PAID', transaction_id = ?, paid_total = ?, paid_at = NOW(3), updated_at = NOW(3) WHERE out_trade_no = ? AND status = 'NOTPAY' AND total = ?",
      [tx.transaction_id, tx.amount.total, tx.out_trade_no, tx.amount.total],
    );
    await conn.commit();
  } catch (error) {
    await conn.rollback().catch(() => undefined);
    throw error;
  } finally {
    conn.release();
  }
}

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
      const tx = JSON.parse(Buffer.concat([d.update(data.subarray(0, data.length - 16)), d.final()]).toString());
      tx.id = envelope.id;
      apply(body.toString(), tx).then(
        () => res.writeHead(204).end(),
        () => res.writeHead(500).end('{"code":"FAIL","message":"db"}'),
      );
    });
  })
  .listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
