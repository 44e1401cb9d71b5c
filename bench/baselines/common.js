// What the hand-written baselines share, so that each of them shows only what it measures: reading the
// body, APIv3's verify + decrypt, the mysql2 pool, one durable transaction (per notification), and for
// the shop baselines (checkout, flash sale) their JSON server, session lookup and setup routes. Plain
// Node and mysql2, hand-written, independent of the app.
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

/** A mysql2 pool of `connectionLimit` connections to DATABASE_URL (default MariaDB durability). */
function createPool(databaseUrl, connectionLimit = 16) {
  const mysql = require('mysql2/promise');
  const url = new URL(databaseUrl);
  return mysql.createPool({
    host: url.hostname,
    port: Number(url.port || 3306),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: url.pathname.slice(1),
    connectionLimit,
    timezone: 'Z',
  });
}

/**
 * One transaction per notification: the raw event inserted and the guarded
 * UPDATE … WHERE status = 'NOTPAY' AND total = ?, then COMMIT (rolled back on any error, which rejects).
 */
async function applyPayment(pool, { notificationId, outTradeNo, transactionId, total, body }) {
  await transaction(pool, async (conn) => {
    await conn.query(
      "INSERT INTO payment_events (kind, notification_id, event_type, out_trade_no, verified, outcome, raw_body, received_at) VALUES ('transaction', ?, 'TRANSACTION.SUCCESS', ?, 1, 'received', ?, NOW(3))",
      [notificationId, outTradeNo, body],
    );
    await conn.query(
      "UPDATE orders SET status = 'PAID', transaction_id = ?, paid_total = ?, paid_at = NOW(3), updated_at = NOW(3) WHERE out_trade_no = ? AND status = 'NOTPAY' AND total = ?",
      [transactionId, total, outTradeNo, total],
    );
  });
}

/** fn(conn) inside BEGIN … COMMIT on a pooled connection; rolled back (and rethrown) on any error. */
async function transaction(pool, fn) {
  const conn = await pool.getConnection();
  try {
    await conn.beginTransaction();
    const result = await fn(conn);
    await conn.commit();
    return result;
  } catch (error) {
    await conn.rollback().catch(() => undefined);
    throw error;
  } finally {
    conn.release();
  }
}

class HttpError extends Error {
  constructor(status, code) {
    super(code);
    this.status = status;
    this.code = code;
  }
}

/** The openid of the request's `Authorization: Bearer <token>` session in `table`; HttpError 401 otherwise. */
async function sessionOf(pool, table, req) {
  const m = /^Bearer (.+)$/.exec(req.headers.authorization || '');
  if (!m) throw new HttpError(401, 'UNAUTHENTICATED');
  const [rows] = await pool.execute(`SELECT openid FROM ${table} WHERE token = ? AND expires_at > NOW(3)`, [m[1]]);
  if (!rows.length) throw new HttpError(401, 'UNAUTHENTICATED');
  return rows[0].openid;
}

/**
 * The shop baselines' setup routes, or undefined for another request: POST /bench/session {openid} →
 * {token} (a day's session in `<prefix>sessions`), POST /bench/product {name, price, stock?} → {id}.
 */
async function benchSetup(pool, prefix, req, path, json) {
  if (req.method === 'POST' && path === '/bench/session') {
    const token = crypto.randomBytes(32).toString('base64url');
    await pool.execute(`INSERT INTO ${prefix}sessions (token, openid, expires_at) VALUES (?, ?, NOW(3) + INTERVAL 1 DAY)`, [token, json().openid]);
    return [201, { token }];
  }
  if (req.method === 'POST' && path === '/bench/product') {
    const body = json();
    const [r] = await pool.execute(`INSERT INTO ${prefix}products (name, price, stock) VALUES (?, ?, ?)`, [body.name, body.price, body.stock ?? null]);
    return [201, { id: r.insertId }];
  }
  return undefined;
}

/**
 * serve() for a JSON API: route(req, rawBody, json) answers [status, body] (no body: none sent); an
 * HttpError is answered with its status and code, anything else 500.
 */
function serveJson(port, route) {
  serve(port, (req, res, raw) => {
    const json = () => (raw.length ? JSON.parse(raw.toString()) : undefined);
    route(req, raw, json).then(
      ([status, body]) => {
        if (body === undefined) return res.writeHead(status).end();
        const text = JSON.stringify(body);
        res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }).end(text);
      },
      (error) => {
        const status = error instanceof HttpError ? error.status : 500;
        res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify({ code: error.code || 'INTERNAL', message: String(error.message) }));
      },
    );
  });
}

module.exports = { serve, verifyAndDecryptV3, createPool, applyPayment, transaction, HttpError, sessionOf, benchSetup, serveJson };
