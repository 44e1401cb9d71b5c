// Baseline (b2) of bench/flash-sale.ts: a minimal hand-written node:http + mysql2 server that answers
// POST /orders the way a flash sale needs: session lookup by token, then one transaction with the
// guarded `UPDATE … SET stock = stock - ? WHERE id = ? AND stock >= ?` and, when it took the units, the
// order and its item; 201, or 409 OUT_OF_STOCK (rolled back) when short. Driven by the same load
// generator as the app, so the HTTP cost shows beside baseline (b)'s bare mysql2 loop.
//   POST /orders          {items: [{productId, quantity}]}, Authorization: Bearer <token>
//   POST /bench/session   (setup) {openid} → {token};  POST /bench/product (setup) {name, price, stock} → {id}
//   node bench/baselines/flash-sale-mysql2.js <port> <database url>
'use strict';
const http = require('node:http');
const crypto = require('node:crypto');
const mysql = require('mysql2/promise');

const [, , port, databaseUrl] = process.argv;
const url = new URL(databaseUrl);
const pool = mysql.createPool({
  host: url.hostname,
  port: Number(url.port || 3306),
  user: decodeURIComponent(url.username),
  password: decodeURIComponent(url.password),
  database: url.pathname.slice(1),
  connectionLimit: 20,
  timezone: 'Z',
});

const SCHEMA = [
  'CREATE TABLE IF NOT EXISTS b2_sessions (token CHAR(43) PRIMARY KEY, openid VARCHAR(128) NOT NULL, expires_at DATETIME(3) NOT NULL)',
  'CREATE TABLE IF NOT EXISTS b2_products (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, name VARCHAR(128) NOT NULL, price INT NOT NULL, stock INT NULL)',
  `CREATE TABLE IF NOT EXISTS b2_orders (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, out_trade_no VARCHAR(32) NOT NULL UNIQUE, openid VARCHAR(128) NOT NULL,
    status VARCHAR(20) NOT NULL, total INT NOT NULL, created_at DATETIME(3) NOT NULL)`,
  'CREATE TABLE IF NOT EXISTS b2_order_items (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, order_id BIGINT UNSIGNED NOT NULL, product_id BIGINT UNSIGNED NOT NULL, quantity INT NOT NULL, unit_price INT NOT NULL)',
];

class HttpError extends Error {
  constructor(status, code) {
    super(code);
    this.status = status;
    this.code = code;
  }
}

async function session(req) {
  const m = /^Bearer (.+)$/.exec(req.headers.authorization || '');
  if (!m) throw new HttpError(401, 'UNAUTHENTICATED');
  const [rows] = await pool.execute('SELECT openid FROM b2_sessions WHERE token = ? AND expires_at > NOW(3)', [m[1]]);
  if (!rows.length) throw new HttpError(401, 'UNAUTHENTICATED');
  return rows[0].openid;
}

async function createOrder(req, body) {
  const openid = await session(req);
  const item = body && Array.isArray(body.items) && body.items[0];
  const quantity = item && Number.isInteger(item.quantity) && item.quantity > 0 ? item.quantity : 0;
  if (!quantity || !Number.isInteger(item.productId)) throw new HttpError(400, 'INVALID_ITEMS');
  const conn = await pool.getConnection();
  try {
    await conn.beginTransaction();
    const [stock] = await conn.execute('UPDATE b2_products SET stock = stock - ? WHERE id = ? AND stock >= ?', [quantity, item.productId, quantity]);
    if (!stock.affectedRows) {
      await conn.rollback();
      throw new HttpError(409, 'OUT_OF_STOCK');
    }
    const outTradeNo = `B${Date.now()}${crypto.randomBytes(6).toString('hex')}`;
    const [order] = await conn.execute("INSERT INTO b2_orders (out_trade_no, openid, status, total, created_at) VALUES (?, ?, 'NOTPAY', ?, NOW(3))", [outTradeNo, openid, 100 * quantity]);
    await conn.execute('INSERT INTO b2_order_items (order_id, product_id, quantity, unit_price) VALUES (?, ?, ?, 100)', [order.insertId, item.productId, quantity]);
    await conn.commit();
    return [201, { outTradeNo, status: 'NOTPAY' }];
  } catch (error) {
    await conn.rollback().catch(() => undefined);
    throw error;
  } finally {
    conn.release();
  }
}

async function route(req, raw) {
  const path = req.url.split('?', 1)[0];
  const json = () => (raw.length ? JSON.parse(raw.toString()) : undefined);
  if (req.method === 'POST' && path === '/orders') return createOrder(req, json());
  if (req.method === 'POST' && path === '/bench/session') {
    const token = crypto.randomBytes(32).toString('base64url');
    await pool.execute('INSERT INTO b2_sessions (token, openid, expires_at) VALUES (?, ?, NOW(3) + INTERVAL 1 DAY)', [token, json().openid]);
    return [201, { token }];
  }
  if (req.method === 'POST' && path === '/bench/product') {
    const body = json();
    const [r] = await pool.execute('INSERT INTO b2_products (name, price, stock) VALUES (?, ?, ?)', [body.name, body.price, body.stock]);
    return [201, { id: r.insertId }];
  }
  return [404, { code: 'NOT_FOUND' }];
}

async function main() {
  for (const sql of SCHEMA) await pool.query(sql);
  http
    .createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        route(req, Buffer.concat(chunks)).then(
          ([status, body]) => {
            const text = JSON.stringify(body);
            res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }).end(text);
          },
          (error) => {
            const status = error instanceof HttpError ? error.status : 500;
            res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify({ code: error.code || 'INTERNAL', message: String(error.message) }));
          },
        );
      });
    })
    .listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
