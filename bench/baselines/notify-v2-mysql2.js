// Baseline (b2) of bench/notify.ts, the APIv2 case: a minimal hand-written durable v2 handler. Parse the
// XML (flat <xml><k><![CDATA[v]]></k>…</xml>, anything with a DTD refused), check return_code /
// result_code, appid and mch_id, verify the sign with the APIv2 key (MD5 or HMAC-SHA256 by sign_type,
// constant-time compare), then one transaction per notification through mysql2 that inserts the raw
// event and runs the guarded UPDATE … WHERE status = 'NOTPAY'; WeChat's SUCCESS XML after COMMIT, FAIL
// XML otherwise. Default MariaDB durability.
'use strict';
const http = require('node:http');
const crypto = require('node:crypto');
const mysql = require('mysql2/promise');

const [, , port, apiKey, appid, mchid, databaseUrl] = process.argv;
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

const SUCCESS = '<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>';
const failXml = (msg) => `<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[${msg}]]></return_msg></xml>`;

function parse(xml) {
  if (/<!(?!\[CDATA\[)/.test(xml)) return undefined; // a DTD, an entity or a comment: refused
  const fields = {};
  for (const m of xml.matchAll(/<(\w+)>(?:<!\[CDATA\[([\s\S]*?)\]\]>|([^<]*))<\/\1>/g)) if (m[1] !== 'xml') fields[m[1]] = m[2] ?? m[3];
  return fields;
}

function signOk(f) {
  if (!f.sign) return false;
  const type = f.sign_type || 'MD5';
  if (type !== 'MD5' && type !== 'HMAC-SHA256') return false;
  const a = Object.keys(f)
    .filter((k) => k !== 'sign' && f[k] !== '')
    .sort()
    .map((k) => `${k}=${f[k]}`)
    .join('&');
  const msg = `${a}&key=${apiKey}`;
  const expected = (type === 'MD5' ? crypto.createHash('md5').update(msg, 'utf8') : crypto.createHmac('sha256', apiKey).update(msg, 'utf8')).digest();
  const got = Buffer.from(f.sign, 'hex');
  return got.length === expected.length && crypto.timingSafeEqual(got, expected);
}

async function apply(body, f) {
  const total = Number(f.total_fee);
  const conn = await pool.getConnection();
  try {
    await conn.beginTransaction();
    await conn.query(
      "INSERT INTO payment_events (kind, notification_id, event_type, out_trade_no, verified, outcome, raw_body, received_at) VALUES ('transaction', ?, 'TRANSACTION.SUCCESS', ?, 1, 'received', ?, NOW(3))",
      [f.transaction_id, f.out_trade_no, body],
    );
    await conn.query(
      "UPDATE orders SET status = 'PAID', transaction_id = ?, paid_total = ?, paid_at = NOW(3), updated_at = NOW(3) WHERE out_trade_no = ? AND status = 'NOTPAY' AND total = ?",
      [f.transaction_id, total, f.out_trade_no, total],
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
      const body = Buffer.concat(chunks).toString('utf8');
      const answer = (status, xml) => res.writeHead(status, { 'Content-Type': 'text/xml; charset=utf-8' }).end(xml);
      const f = parse(body);
      if (!f || f.return_code !== 'SUCCESS' || f.result_code !== 'SUCCESS') return answer(400, failXml('bad notification'));
      if (!signOk(f)) return answer(401, failXml('sign does not match'));
      if (f.appid !== appid || f.mch_id !== mchid || (f.fee_type && f.fee_type !== 'CNY') || !/^[1-9]\d*$/.test(f.total_fee || '')) return answer(400, failXml('not ours'));
      apply(body, f).then(
        () => answer(200, SUCCESS),
        () => answer(500, failXml('db')),
      );
    });
  })
  .listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
