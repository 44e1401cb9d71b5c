// Baseline (b2) of bench/notify.ts, the APIv2 case: a minimal hand-written durable v2 handler. Parse the
// XML (flat <xml><k><![CDATA[v]]></k>…</xml>, anything with a DTD refused), check return_code /
// result_code, appid and mch_id, verify the sign with the APIv2 key (MD5 or HMAC-SHA256 by sign_type,
// constant-time compare), then one transaction per notification through mysql2 that inserts the raw
// event and runs the guarded UPDATE … WHERE status = 'NOTPAY'; WeChat's SUCCESS XML after COMMIT, FAIL
// XML otherwise. Default MariaDB durability.
'use strict';
const crypto = require('node:crypto');
const { applyPayment, createPool, serve } = require('./common');

const [, , port, apiKey, appid, mchid, databaseUrl] = process.argv;
const pool = createPool(databaseUrl);

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

serve(port, (req, res, raw) => {
  const body = raw.toString('utf8');
  const answer = (status, xml) => res.writeHead(status, { 'Content-Type': 'text/xml; charset=utf-8' }).end(xml);
  const f = parse(body);
  if (!f || f.return_code !== 'SUCCESS' || f.result_code !== 'SUCCESS') return answer(400, failXml('bad notification'));
  if (!signOk(f)) return answer(401, failXml('sign does not match'));
  if (f.appid !== appid || f.mch_id !== mchid || (f.fee_type && f.fee_type !== 'CNY') || !/^[1-9]\d*$/.test(f.total_fee || '')) return answer(400, failXml('not ours'));
  const total = Number(f.total_fee);
  applyPayment(pool, { notificationId: f.transaction_id, outTradeNo: f.out_trade_no, transactionId: f.transaction_id, total, body }).then(
    () => answer(200, SUCCESS),
    () => answer(500, failXml('db')),
  );
});
