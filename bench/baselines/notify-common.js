// What the notify baselines of bench/notify.ts share, so that each of them shows only what it measures:
// reading the body, APIv3's verify + decrypt, the mysql2 pool and the one durable transaction per
// notification. Plain Node and mysql2, hand-written, independent of the app.
'use strict';
const http = require('node:http');
const crypto = require('node:crypto');

/** A server on 127.0.0.1:port that hands `handler` each request with its whole body; prints `ready` once listening. */
function serve(port, handler) {
  http
    .createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => handler(req, res, Buffer.concat(chunks)));
    })
    .listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
}

/**
 * APIv3: the Wechatpay-Signature over `timestamp\nnonce\nbody\n` (timestamp within 300 s) with the platform
 * public key, then the AES-256-GCM resource decrypted with the APIv3 key. The payment (its `id` = the
 * notification's), or undefined when the signature does not hold.
 */
function verifyAndDecryptV3(publicKey, key, headers, body) {
  const ts = headers['wechatpay-timestamp'];
  const nonce = headers['wechatpay-nonce'];
  const signature = headers['wechatpay-signature'];
  const ok =
    Math.abs(Date.now() / 1000 - Number(ts)) < 300 &&
    crypto.verify('sha256', Buffer.concat([Buffer.from(`${ts}\n${nonce}\n`), body, Buffer.from('\n')]), publicKey, Buffer.from(signature, 'base64'));
  if (!ok) return undefined;
  const envelope = JSON.parse(body.toString());
  const r = envelope.resource;
  const data = Buffer.from(r.ciphertext, 'base64');
  const d = crypto.createDecipheriv('aes-256-gcm', key, Buffer.from(r.nonce));
  d.setAuthTag(data.subarray(data.length - 16));
  d.setAAD(Buffer.from(r.associated_data));
  const tx = JSON.parse(Buffer.concat([d.update(data.subarray(0, data.length - 16)), d.final()]).toString());
  tx.id = envelope.id;
  return tx;
}

/** A mysql2 pool of 16 connections to DATABASE_URL (default MariaDB durability). */
function createPool(databaseUrl) {
  const mysql = require('mysql2/promise');
  const url = new URL(databaseUrl);
  return mysql.createPool({
    host: url.hostname,
    port: Number(url.port || 3306),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: url.pathname.slice(1),
    connectionLimit: 16,
    timezone: 'Z',
  });
}

/**
 * One transaction per notification: the raw event inserted and the guarded
 * UPDATE … WHERE status = 'NOTPAY' AND total = ?, then COMMIT (rolled back on any error, which rejects).
 */
async function applyPayment(pool, { notificationId, outTradeNo, transactionId, total, body }) {
  const conn = await pool.getConnection();
  try {
    await conn.beginTransaction();
    await conn.query(
      "INSERT INTO payment_events (kind, notification_id, event_type, out_trade_no, verified, outcome, raw_body, received_at) VALUES ('transaction', ?, 'TRANSACTION.SUCCESS', ?, 1, 'received', ?, NOW(3))",
      [notificationId, outTradeNo, body],
    );
    await conn.query(
      "UPDATE orders SET status = 'PAID', transaction_id = ?, paid_total = ?, paid_at = NOW(3), updated_at = NOW(3) WHERE out_trade_no = ? AND status = 'NOTPAY' AND total = ?",
      [transactionId, total, outTradeNo, total],
    );
    await conn.commit();
  } catch (error) {
    await conn.rollback().catch(() => undefined);
    throw error;
  } finally {
    conn.release();
  }
}

module.exports = { serve, verifyAndDecryptV3, createPool, applyPayment };
