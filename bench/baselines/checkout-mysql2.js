// Baseline (b) of bench/checkout.ts: a minimal hand-written checkout server. node:http + mysql2 +
// node:crypto, keys parsed once, one transaction per write, default MariaDB durability:
//   POST /orders           session lookup by token, product read, then one transaction: guarded stock
//                          decrement (UPDATE … WHERE stock >= ?), order, item
//   POST /orders/:no/pay   session, order, JSAPI prepay signed to WeChat (the answer's signature
//                          verified), prepay_id stored (one autocommit), paySign
//   POST /notify           verify + decrypt, one transaction: raw event + guarded UPDATE … 'NOTPAY'
//   GET  /orders/:no       session, order status
//   POST /bench/session    (setup) a session for an openid; GET /bench/cpu: process.cpuUsage()
// Per checkout: 16 statements, 3 durable commits.
//   node bench/baselines/checkout-mysql2.js <port> <database url> <wechat pay base> <sandbox keystore dir> <public base>
'use strict';
const http = require('node:http');
const crypto = require('node:crypto');
const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const { HttpError, benchSetup, createPool, serveJson, sessionOf, transaction } = require('./common');

const [, , port, databaseUrl, payBase, keystoreDir, publicBase] = process.argv;
const ks = JSON.parse(readFileSync(join(keystoreDir, 'keystore.json'), 'utf8'));
const merchantKey = crypto.createPrivateKey(readFileSync(join(keystoreDir, 'apiclient_key.pem')));
const wechatKey = crypto.createPublicKey(readFileSync(join(keystoreDir, 'wechatpay_public_key.pem')));
const apiv3Key = Buffer.from(ks.apiv3Key);
const pool = createPool(databaseUrl, 20);
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

const SCHEMA = [
  'CREATE TABLE IF NOT EXISTS b_sessions (token CHAR(43) PRIMARY KEY, openid VARCHAR(128) NOT NULL, expires_at DATETIME(3) NOT NULL)',
  'CREATE TABLE IF NOT EXISTS b_products (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, name VARCHAR(128) NOT NULL, price INT NOT NULL, stock INT NULL)',
  `CREATE TABLE IF NOT EXISTS b_orders (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, out_trade_no VARCHAR(32) NOT NULL UNIQUE, openid VARCHAR(128) NOT NULL,
    status VARCHAR(20) NOT NULL, total INT NOT NULL, description VARCHAR(127) NOT NULL, prepay_id VARCHAR(64) NULL, transaction_id VARCHAR(32) NULL,
    paid_at DATETIME(3) NULL, created_at DATETIME(3) NOT NULL, updated_at DATETIME(3) NOT NULL)`,
  'CREATE TABLE IF NOT EXISTS b_order_items (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, order_id BIGINT UNSIGNED NOT NULL, product_id BIGINT UNSIGNED NOT NULL, quantity INT NOT NULL, unit_price INT NOT NULL)',
  'CREATE TABLE IF NOT EXISTS b_payment_events (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, out_trade_no VARCHAR(32) NULL, raw_body MEDIUMTEXT NOT NULL, received_at DATETIME(3) NOT NULL)',
];

const session = (req) => sessionOf(pool, 'b_sessions', req);

function newOutTradeNo() {
  return `B${Date.now()}${crypto.randomBytes(6).toString('hex')}`;
}

async function createOrder(req, body) {
  const openid = await session(req);
  const item = body && Array.isArray(body.items) && body.items[0];
  const quantity = item && Number.isInteger(item.quantity) && item.quantity > 0 ? item.quantity : 0;
  if (!quantity) throw new HttpError(400, 'INVALID_ITEMS');
  const [products] = await pool.execute('SELECT id, name, price FROM b_products WHERE id = ?', [item.productId]);
  if (!products.length) throw new HttpError(404, 'PRODUCT_NOT_FOUND');
  const product = products[0];
  const outTradeNo = newOutTradeNo();
  const total = product.price * quantity;
  await transaction(pool, async (conn) => {
    const [stock] = await conn.execute('UPDATE b_products SET stock = stock - ? WHERE id = ? AND (stock IS NULL OR stock >= ?)', [quantity, product.id, quantity]);
    if (!stock.affectedRows) throw new HttpError(409, 'OUT_OF_STOCK');
    const [order] = await conn.execute(
      "INSERT INTO b_orders (out_trade_no, openid, status, total, description, created_at, updated_at) VALUES (?, ?, 'NOTPAY', ?, ?, NOW(3), NOW(3))",
      [outTradeNo, openid, total, product.name],
    );
    await conn.execute('INSERT INTO b_order_items (order_id, product_id, quantity, unit_price) VALUES (?, ?, ?, ?)', [order.insertId, product.id, quantity, product.price]);
  });
  return [201, { outTradeNo, status: 'NOTPAY', total }];
}

function wechatRequest(method, path, body) {
  const target = new URL(payBase + path);
  const timestamp = Math.floor(Date.now() / 1000);
  const nonce = crypto.randomBytes(16).toString('hex');
  const signedPath = target.pathname + target.search;
  const signature = crypto.sign('sha256', Buffer.from(`${method}\n${signedPath}\n${timestamp}\n${nonce}\n${body}\n`), merchantKey).toString('base64');
  const authorization = `WECHATPAY2-SHA256-RSA2048 mchid="${ks.mchid}",nonce_str="${nonce}",signature="${signature}",timestamp="${timestamp}",serial_no="${ks.merchant.certSerial}"`;
  return new Promise((resolve, reject) => {
    const req = http.request(target, { method, agent, headers: { Authorization: authorization, 'Content-Type': 'application/json', Accept: 'application/json' } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        const h = res.headers;
        const message = Buffer.concat([Buffer.from(`${h['wechatpay-timestamp']}\n${h['wechatpay-nonce']}\n`), raw, Buffer.from('\n')]);
        if (!h['wechatpay-signature'] || !crypto.verify('sha256', message, wechatKey, Buffer.from(h['wechatpay-signature'], 'base64'))) {
          reject(new HttpError(502, 'WECHAT_ANSWER_NOT_VERIFIED'));
          return;
        }
        resolve({ status: res.statusCode, json: raw.length ? JSON.parse(raw.toString()) : undefined });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function pay(req, no) {
  const openid = await session(req);
  const [rows] = await pool.execute('SELECT out_trade_no, openid, status, total, description, prepay_id FROM b_orders WHERE out_trade_no = ?', [no]);
  const order = rows[0];
  if (!order || order.openid !== openid) throw new HttpError(404, 'ORDER_NOT_FOUND');
  if (order.status !== 'NOTPAY') throw new HttpError(409, 'ORDER_NOT_PAYABLE');
  let prepayId = order.prepay_id;
  if (!prepayId) {
    const answer = await wechatRequest(
      'POST',
      '/v3/pay/transactions/jsapi',
      JSON.stringify({
        appid: ks.appid,
        mchid: ks.mchid,
        description: order.description,
        out_trade_no: no,
        notify_url: `${publicBase}/notify`,
        amount: { total: order.total, currency: 'CNY' },
        payer: { openid },
      }),
    );
    if (answer.status !== 200 || !answer.json.prepay_id) throw new HttpError(502, 'PREPAY_FAILED');
    prepayId = answer.json.prepay_id;
    await pool.execute("UPDATE b_orders SET prepay_id = ?, updated_at = NOW(3) WHERE out_trade_no = ? AND status = 'NOTPAY'", [prepayId, no]);
  }
  const timeStamp = String(Math.floor(Date.now() / 1000));
  const nonceStr = crypto.randomBytes(16).toString('hex');
  const pkg = `prepay_id=${prepayId}`;
  const paySign = crypto.sign('sha256', Buffer.from(`${ks.appid}\n${timeStamp}\n${nonceStr}\n${pkg}\n`), merchantKey).toString('base64');
  return [200, { appId: ks.appid, timeStamp, nonceStr, package: pkg, signType: 'RSA', paySign }];
}

async function notify(req, raw) {
  const h = req.headers;
  const ts = h['wechatpay-timestamp'];
  const message = Buffer.concat([Buffer.from(`${ts}\n${h['wechatpay-nonce']}\n`), raw, Buffer.from('\n')]);
  if (Math.abs(Date.now() / 1000 - Number(ts)) >= 300 || !h['wechatpay-signature'] || !crypto.verify('sha256', message, wechatKey, Buffer.from(h['wechatpay-signature'], 'base64'))) {
    return [401, { code: 'SIGN_ERROR', message: 'signature' }];
  }
  const r = JSON.parse(raw.toString()).resource;
  const data = Buffer.from(r.ciphertext, 'base64');
  const d = crypto.createDecipheriv('aes-256-gcm', apiv3Key, Buffer.from(r.nonce));
  d.setAuthTag(data.subarray(data.length - 16));
  d.setAAD(Buffer.from(r.associated_data || ''));
  const tx = JSON.parse(Buffer.concat([d.update(data.subarray(0, data.length - 16)), d.final()]).toString());
  await transaction(pool, async (conn) => {
    await conn.execute('INSERT INTO b_payment_events (out_trade_no, raw_body, received_at) VALUES (?, ?, NOW(3))', [tx.out_trade_no, raw.toString()]);
    if (tx.trade_state === 'SUCCESS') {
      await conn.execute(
        "UPDATE b_orders SET status = 'PAID', transaction_id = ?, paid_at = NOW(3), updated_at = NOW(3) WHERE out_trade_no = ? AND status = 'NOTPAY' AND total = ?",
        [tx.transaction_id, tx.out_trade_no, tx.amount.total],
      );
    }
  });
  return [204, undefined];
}

async function status(req, no) {
  const openid = await session(req);
  const [rows] = await pool.execute('SELECT out_trade_no, openid, status, total FROM b_orders WHERE out_trade_no = ?', [no]);
  if (!rows.length || rows[0].openid !== openid) throw new HttpError(404, 'ORDER_NOT_FOUND');
  return [200, { outTradeNo: no, status: rows[0].status, total: rows[0].total }];
}

async function route(req, raw, json) {
  const path = req.url.split('?', 1)[0];
  let m;
  if (req.method === 'POST' && path === '/orders') return createOrder(req, json());
  if (req.method === 'POST' && (m = /^\/orders\/([\w-]+)\/pay$/.exec(path))) return pay(req, m[1]);
  if (req.method === 'GET' && (m = /^\/orders\/([\w-]+)$/.exec(path))) return status(req, m[1]);
  if (req.method === 'POST' && path === '/notify') return notify(req, raw);
  if (req.method === 'GET' && path === '/bench/cpu') return [200, process.cpuUsage()];
  return (await benchSetup(pool, 'b_', req, path, json)) ?? [404, { code: 'NOT_FOUND' }];
}

async function main() {
  for (const sql of SCHEMA) await pool.query(sql);
  serveJson(port, route);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
