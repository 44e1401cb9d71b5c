// Baseline (b2) of bench/flash-sale.ts: a minimal hand-written node:http + mysql2 server that answers
// POST /orders the way a flash sale needs: session lookup by token, then one transaction with the
// guarded `UPDATE … SET stock = stock - ? WHERE id = ? AND stock >= ?` and, when it took the units, the
// order and its item; 201, or 409 OUT_OF_STOCK (rolled back) when short. Driven by the same load
// generator as the app, so the HTTP cost shows beside baseline (b)'s bare mysql2 loop.
//   POST /orders          {items: [{productId, quantity}]}, Authorization: Bearer <token>
//   POST /bench/session   (setup) {openid} → {token};  POST /bench/product (setup) {name, price, stock} → {id}
//   node bench/baselines/flash-sale-mysql2.js <port> <database url>
'use strict';
const crypto = require('node:crypto');
const { HttpError, benchSetup, createPool, serveJson, sessionOf, transaction } = require('./common');

const [, , port, databaseUrl] = process.argv;
const pool = createPool(databaseUrl, 20);

const SCHEMA = [
  'CREATE TABLE IF NOT EXISTS b2_sessions (token CHAR(43) PRIMARY KEY, openid VARCHAR(128) NOT NULL, expires_at DATETIME(3) NOT NULL)',
  'CREATE TABLE IF NOT EXISTS b2_products (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, name VARCHAR(128) NOT NULL, price INT NOT NULL, stock INT NULL)',
  `CREATE TABLE IF NOT EXISTS b2_orders (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, out_trade_no VARCHAR(32) NOT NULL UNIQUE, openid VARCHAR(128) NOT NULL,
    status VARCHAR(20) NOT NULL, total INT NOT NULL, created_at DATETIME(3) NOT NULL)`,
  'CREATE TABLE IF NOT EXISTS b2_order_items (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, order_id BIGINT UNSIGNED NOT NULL, product_id BIGINT UNSIGNED NOT NULL, quantity INT NOT NULL, unit_price INT NOT NULL)',
];

async function createOrder(req, body) {
  const openid = await sessionOf(pool, 'b2_sessions', req);
  const item = body && Array.isArray(body.items) && body.items[0];
  const quantity = item && Number.isInteger(item.quantity) && item.quantity > 0 ? item.quantity : 0;
  if (!quantity || !Number.isInteger(item.productId)) throw new HttpError(400, 'INVALID_ITEMS');
  // a refusal (409 OUT_OF_STOCK) rolls the transaction back
  return transaction(pool, async (conn) => {
    const [stock] = await conn.execute('UPDATE b2_products SET stock = stock - ? WHERE id = ? AND stock >= ?', [quantity, item.productId, quantity]);
    if (!stock.affectedRows) throw new HttpError(409, 'OUT_OF_STOCK');
    const outTradeNo = `B${Date.now()}${crypto.randomBytes(6).toString('hex')}`;
    const [order] = await conn.execute("INSERT INTO b2_orders (out_trade_no, openid, status, total, created_at) VALUES (?, ?, 'NOTPAY', ?, NOW(3))", [outTradeNo, openid, 100 * quantity]);
    await conn.execute('INSERT INTO b2_order_items (order_id, product_id, quantity, unit_price) VALUES (?, ?, ?, 100)', [order.insertId, item.productId, quantity]);
    return [201, { outTradeNo, status: 'NOTPAY' }];
  });
}

async function route(req, raw, json) {
  const path = req.url.split('?', 1)[0];
  if (req.method === 'POST' && path === '/orders') return createOrder(req, json());
  return (await benchSetup(pool, 'b2_', req, path, json)) ?? [404, { code: 'NOT_FOUND' }];
}

async function main() {
  for (const sql of SCHEMA) await pool.query(sql);
  serveJson(port, route);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
