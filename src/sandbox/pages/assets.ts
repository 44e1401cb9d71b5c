/**
 * The sandbox pages' stylesheet and the cashier's script, served as files (/sandbox/sandbox.css,
 * /sandbox/cashier.js) so that the pages carry no inline style or script and run under
 * `Content-Security-Policy: default-src 'self'`.
 */
export const SANDBOX_CSS = `:root { --green: #07c160; --bg: #ededed; --text: #191919; --muted: #888; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 -apple-system, BlinkMacSystemFont, "PingFang SC", "Microsoft YaHei", sans-serif; background: var(--bg); color: var(--text); }
.bar { background: #f7f7f7; border-bottom: 1px solid #ddd; padding: 12px 16px; text-align: center; font-weight: 600; }
.badge { display: inline-block; font-size: 12px; color: #fff; background: #fa9d3b; border-radius: 4px; padding: 0 6px; margin-left: 6px; vertical-align: middle; }
.card { background: #fff; margin: 12px; border-radius: 8px; padding: 16px; }
.center { text-align: center; }
.muted { color: var(--muted); font-size: 14px; }
.btn { display: block; width: 100%; border: 0; border-radius: 8px; padding: 12px; font-size: 17px; margin-top: 10px; cursor: pointer; text-align: center; text-decoration: none; }
.btn-primary { background: var(--green); color: #fff; }
.btn-default { background: #f2f2f2; color: var(--text); }
.btn-warn { background: #fff; color: #fa5151; border: 1px solid #fa5151; }
.user { display: flex; align-items: center; gap: 12px; padding: 10px 0; border-bottom: 1px solid #f0f0f0; }
.user img { width: 40px; height: 40px; border-radius: 6px; background: #eee; }
.user button { margin-left: auto; width: auto; padding: 6px 14px; font-size: 15px; margin-top: 0; }
input { width: 100%; padding: 10px; border: 1px solid #ddd; border-radius: 6px; font-size: 16px; margin-top: 6px; }
.amount { font-size: 40px; font-weight: 600; text-align: center; margin: 8px 0; }
.error { color: #fa5151; }
code { font-size: 13px; word-break: break-all; }
`;

/** The cashier's buttons: reads the prepay, the payer and the bridge flag from #cashier's data attributes. */
export const CASHIER_JS = String.raw`/* wechat-h5-pay sandbox: cashier sheet */
(function () {
  'use strict';
  var data = document.getElementById('cashier').dataset;
  var bridge = data.bridge === '1';
  function send(result) {
    fetch('pay', { method: 'POST', credentials: 'include', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ prepay_id: data.prepayId, openid: data.openid, result: result }) })
      .then(function (r) { return r.json(); })
      .then(function (answer) {
        document.getElementById('status').textContent = answer.result === 'ok' ? '支付成功' : answer.result === 'cancel' ? '已取消' : '支付失败：' + (answer.reason || '');
        if (bridge && window.parent !== window) {
          setTimeout(function () { window.parent.postMessage({ type: 'wx-sandbox-pay-result', result: answer.result, reason: answer.reason || '' }, '*'); }, answer.result === 'ok' ? 400 : 0);
        }
      });
    Array.prototype.forEach.call(document.querySelectorAll('button'), function (b) { b.disabled = true; });
  }
  document.getElementById('pay').addEventListener('click', function () { send('success'); });
  document.getElementById('cancel').addEventListener('click', function () { send('cancel'); });
  document.getElementById('fail').addEventListener('click', function () { send('fail'); });
})();
`;
