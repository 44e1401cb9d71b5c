/* The admin console: orders and their timelines, refunds, bills and reconciliation, notification health.
   Plain browser JavaScript, no build step. Every number comes from the server; amounts are integer fen. */
(function () {
  'use strict';

  var TOKEN_KEY = 'whp.adminToken';
  var view = document.getElementById('view');
  var timers = { health: null, view: [] };

  var ORDER_STATUS = { NOTPAY: '待支付', PAID: '已支付', CLOSED: '已关闭', REFUNDED: '已退款', ANOMALY: '异常', PAID_AFTER_CLOSE: '关闭后支付' };
  var REFUND_STATUS = { PROCESSING: '处理中', SUCCESS: '已退款', CLOSED: '已关闭', ABNORMAL: '异常', FAILED: '失败' };
  var DIFF_TYPE = {
    only_in_wechat: '仅微信有（我方未支付）',
    only_here: '仅我方有',
    amount_mismatch: '金额不一致',
    status_mismatch: '状态不一致',
    refund_only_in_wechat: '退款仅微信有',
    refund_only_here: '退款仅我方有',
    refund_amount_mismatch: '退款金额不一致'
  };

  /** Reconciliation runs: what their status means. */
  var RECON_STATUS = { done: '已完成', failed: '对账失败', running: '进行中' };
  /** Notification outcomes (the health panel). */
  var NOTIFY_OUTCOME = {
    applied: '已入账', duplicate: '重复通知', paid_after_close: '关闭后支付', anomaly: '异常', conflict: '冲突',
    unknown_order: '未知订单', unknown_refund: '未知退款', decrypt_failed: '解密失败', not_ours: '非本商户',
    still_processing: '仍在处理', wrong_endpoint: '发错地址', received: '已接收', verified: '已验签'
  };
  /** Who looked at the order (the first half of a timeline event "source:outcome"). */
  var EVENT_SOURCE = {
    notification: '支付通知', query: '查单', reconcile: '补单查询', 'close-check': '关单前查单', 'cancel-check': '取消前查单',
    bill: '对账单', after_close: '关闭后支付'
  };
  /** What happened (a whole event type, or the second half of "source:outcome"). */
  var EVENT_LABEL = {
    created: '创建订单', prepay: '微信下单（prepay）', prepay_failed: '微信下单失败', closed: '订单关闭', reinstated: '恢复为已支付',
    reinstate_failed: '恢复失败，改为退款', refund_requested: '申请退款', refund_success: '退款成功', refund_closed: '退款关闭',
    refund_abnormal: '退款异常', refund_processing: '退款处理中', refund_failed: '退款失败', refund_outcome_unknown: '退款结果未知',
    refund_resent: '重新提交退款', applied: '确认已支付', duplicate: '重复确认', paid_after_close: '关闭后才支付', anomaly: '金额或商户不符（异常）',
    conflict: '冲突', ORDER_NOT_EXIST: '微信无此订单', NOTPAY: '未支付', CLOSED: '已关闭', REVOKED: '已撤销', USERPAYING: '用户支付中',
    PAYERROR: '支付失败', SUCCESS: '支付成功', REFUND: '转入退款', close_refused: '微信拒绝关单', retry: '重试处理', refund: '决定退款'
  };
  /** A timeline event type in Chinese ("notification:applied" → "支付通知 · 确认已支付"). */
  function eventLabel(type) {
    if (EVENT_LABEL[type]) return EVENT_LABEL[type];
    var i = type.indexOf(':');
    if (i < 0) return type;
    var source = type.slice(0, i);
    var what = type.slice(i + 1);
    return (EVENT_SOURCE[source] || source) + ' · ' + (EVENT_LABEL[what] || what);
  }
  var CLOSE_REASON = { cancelled: '顾客取消', expired: '超时关闭' };
  var CHANNEL = { jsapi: 'JSAPI（微信内）', h5: 'H5（微信外浏览器）', native: 'Native（扫码）', miniprogram: '小程序' };
  var ATTEMPT_STATUS = { NOTPAY: '未支付', PAID: '已支付', CLOSED: '已关闭', REFUNDED: '已退款' };

  /** Chinese words for the server's refusals, by code (its own messages are English, for developers). */
  var ERRORS = {
    REFUND_EXCEEDS_REMAINING: '退款金额超过剩余可退金额。',
    REFUND_NO_REUSED: '退款单号已用于另一笔退款，请刷新页面后重试。',
    REFUND_NOT_FOUND: '找不到该退款。',
    ORDER_NOT_FOUND: '找不到该订单。',
    ORDER_NOT_PAID: '订单未支付，不能退款。',
    INVALID_STATE: '订单当前状态不允许此操作。',
    PRODUCT_NOT_FOUND: '找不到该商品。',
    RECONCILIATION_NOT_FOUND: '这一天还没有对账记录。',
    BILL_NOT_AVAILABLE: '微信尚未生成这一天的账单（次日 10 点后可下载）。',
    NO_STATEMENT_EXIST: '这一天没有交易，微信没有账单。',
    BILL_DATE_REJECTED: '微信不接受这个账单日期（只能下载三个月内的账单）。',
    DATE_IN_FUTURE: '日期不能晚于今天。',
    INVALID_DATE: '日期格式不正确。',
    INVALID_RANGE: '日期范围不正确。',
    INVALID_LIMIT: '数量参数超出范围。',
    RATE_LIMITED: '操作太频繁，请稍后再试。',
    CROSS_SITE_REQUEST: '请求来源不正确，请刷新页面后重试。',
    UNSUPPORTED_MEDIA_TYPE: '请求格式不正确。'
  };
  /** What the operator reads: Chinese words for the code; the server's own words only as the detail. */
  function errorText(error) {
    var message = String((error && error.message) || '');
    if (error && error.code && ERRORS[error.code]) return ERRORS[error.code];
    // Some answers are Chinese already (written for shoppers); product names do not make a message Chinese.
    if (/^[^A-Za-z]*[\u4e00-\u9fff]/.test(message) && !/[A-Za-z]{4,}/.test(message)) return message;
    if (error && error.status === 429) return ERRORS.RATE_LIMITED;
    if (!error || !error.status) return '网络异常，无法连接服务器。';
    if (error.code === 'VALIDATION_FAILED' || error.status === 400) return '输入有误（' + (error.code || 400) + '）：' + message;
    if (error.status >= 500) return '服务器或微信暂时出错（' + (error.code || error.status) + '），请稍后重试。';
    return '操作未成功（' + (error.code || error.status) + '）：' + message;
  }

  // ------------------------------------------------------------------ helpers

  function esc(text) {
    return String(text == null ? '' : text).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }
  function yuan(fen) { return fen == null ? '—' : (fen < 0 ? '-' : '') + '¥' + (Math.abs(fen) / 100).toFixed(2); }
  /** "12.3" → 1230 fen, exactly (no floating point); null when it is not an amount. */
  function toFen(text) {
    var m = /^\s*(\d{1,9})(?:\.(\d{1,2}))?\s*$/.exec(String(text));
    if (!m) return null;
    return Number(m[1]) * 100 + Number(((m[2] || '') + '00').slice(0, 2));
  }
  function time(iso) {
    if (!iso) return '—';
    var d = new Date(iso);
    function p(n) { return ('0' + n).slice(-2); }
    return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + ' ' + p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds());
  }
  /** Today in Beijing, as bills count days. */
  function beijingToday() { return new Date(Date.now() + 8 * 3600000).toISOString().slice(0, 10); }
  function badge(status, labels) { return '<span class="badge ' + esc(status) + '">' + esc((labels && labels[status]) || status) + '</span>'; }

  function toast(message, ms) {
    var el = document.getElementById('toast');
    el.textContent = message;
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { el.hidden = true; }, ms || 3000);
  }

  function token() { return sessionStorage.getItem(TOKEN_KEY); }

  /** fetch with the admin token; 401 ends the session and asks for the token again. */
  function request(path, options) {
    options = options || {};
    var headers = { Authorization: 'Bearer ' + token(), Accept: options.accept || 'application/json' };
    if (options.body !== undefined) headers['Content-Type'] = 'application/json';
    return fetch(path, {
      method: options.method || 'GET',
      headers: headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body)
    }).then(function (res) {
      if (res.status === 401) {
        signOut('令牌无效或已失效，请重新登录。');
        throw new Error('unauthorised');
      }
      return res;
    });
  }
  function api(path, options) {
    return request(path, options).then(function (res) {
      return res.text().then(function (text) {
        var data = text ? JSON.parse(text) : null;
        if (!res.ok) {
          var error = new Error((data && data.message) || res.statusText);
          error.status = res.status;
          error.code = data && data.code;
          error.details = data && data.details;
          throw error;
        }
        return data;
      });
    });
  }
  /** A file from an admin route (needs the bearer token, so not a plain link): fetched, then saved. */
  function download(path, fallbackName) {
    return request(path, { accept: 'text/csv' }).then(function (res) {
      if (!res.ok) {
        return res.json().then(function (data) { var e = new Error(data.message || res.statusText); e.status = res.status; throw e; });
      }
      var disposition = res.headers.get('Content-Disposition') || '';
      var match = /filename="([^"]+)"/.exec(disposition);
      return res.blob().then(function (blob) {
        var url = URL.createObjectURL(blob);
        var a = document.createElement('a');
        a.href = url;
        a.download = match ? match[1] : fallbackName;
        document.body.appendChild(a);
        a.click();
        a.remove();
        setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
        return { name: a.download, bytes: blob.size };
      });
    });
  }

  function failed(error) { if (error.message !== 'unauthorised') toast(errorText(error), 4000); }

  /** GET /admin/deployment (sandbox/live, API version, direct/partner), asked once per console load. */
  var deploymentPromise = null;
  function deployment() {
    if (!deploymentPromise) deploymentPromise = api('/admin/deployment').catch(function (error) { deploymentPromise = null; throw error; });
    return deploymentPromise;
  }

  // ------------------------------------------------------------------ session

  function showLogin(message) {
    document.getElementById('login').hidden = false;
    document.getElementById('app').hidden = true;
    document.getElementById('nav').hidden = true;
    document.getElementById('signout').hidden = true;
    document.getElementById('login-error').textContent = message || '';
    document.getElementById('token').focus();
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    clearInterval(timers.health);
    timers.health = null;
    showLogin(message);
  }

  function showApp() {
    document.getElementById('login').hidden = true;
    document.getElementById('app').hidden = false;
    document.getElementById('nav').hidden = false;
    document.getElementById('signout').hidden = false;
    refreshHealth();
    clearInterval(timers.health);
    timers.health = setInterval(refreshHealth, 5000);
    route();
  }

  document.getElementById('login-form').onsubmit = function (event) {
    event.preventDefault();
    var value = document.getElementById('token').value.trim();
    if (value.length < 16) { document.getElementById('login-error').textContent = '令牌至少 16 个字符。'; return; }
    sessionStorage.setItem(TOKEN_KEY, value);
    // One cheap admin call proves the token before the console opens.
    api('/admin/notifications?limit=1').then(function () {
      document.getElementById('token').value = '';
      showApp();
    }, function (error) {
      if (error.message !== 'unauthorised') signOut('无法验证令牌：' + errorText(error));
    });
  };
  document.getElementById('signout').onclick = function () { signOut('已退出。'); };

  // ------------------------------------------------------------------ notification health (live panel)

  function refreshHealth() {
    api('/admin/notifications?limit=8').then(renderHealth, function (error) {
      if (error.message === 'unauthorised') return;
      document.getElementById('health-light').className = 'light bad';
      document.getElementById('health-body').innerHTML = '<p class="error">无法读取：' + esc(errorText(error)) + '</p>';
    });
  }

  /** "rejected:bad_signature" → "已拒绝：bad_signature" (the reason stays a code: it names the check). */
  function outcomeLabel(outcome) {
    if (NOTIFY_OUTCOME[outcome]) return NOTIFY_OUTCOME[outcome];
    if (/^rejected:/.test(outcome)) return '已拒绝：' + outcome.slice(9);
    return outcome;
  }

  function renderHealth(h) {
    var counts = h.last24h || {};
    var total = 0;
    var bad = 0;
    Object.keys(counts).forEach(function (k) {
      total += counts[k];
      if (/^rejected|decrypt_failed|anomaly|unknown_order|conflict/.test(k)) bad += counts[k];
    });
    var last = h.recent && h.recent[0];
    var warnings = h.warnings || [];
    var light = document.getElementById('health-light');
    // Payments found only by query while no notification arrives: notify_url is unreachable (amber, never green).
    light.className = 'light ' + (bad ? 'bad' : warnings.length ? 'warn' : total ? 'ok' : '');
    light.title = bad ? '最近 24 小时有被拒绝或异常的通知' : warnings.length ? warnings[0].message : total ? '通知正常' : '最近 24 小时没有通知';
    var warningHtml = warnings.map(function (w) {
      return '<div class="health-warning" role="alert" data-code="' + esc(w.code) + '"><b>⚠ 警告：</b>' + esc(w.message) +
        '（查单发现 <b class="health-by-query">' + esc(w.appliedByQuery) + '</b> 笔）。请检查：<ul>' +
        (w.check || []).map(function (c) { return '<li>' + esc(c) + '</li>'; }).join('') + '</ul></div>';
    }).join('');
    var chips = Object.keys(counts).sort().map(function (k) {
      return '<span class="badge ' + (/^rejected|decrypt_failed|anomaly|unknown_order|conflict/.test(k) ? 'bad' : esc(k)) + '" data-outcome="' + esc(k) + '" title="' + esc(k) + '">' + esc(outcomeLabel(k)) + ' ' + counts[k] + '</span>';
    }).join('');
    var items = (h.recent || []).map(function (e) {
      var outcomeClass = /^rejected|decrypt_failed|anomaly|unknown_order|conflict/.test(e.outcome) ? 'bad' : e.outcome;
      return '<li><span class="muted">' + esc(time(e.receivedAt).slice(11)) + '</span><code title="' + esc(e.outTradeNo || e.outRefundNo || '') + '">' +
        esc(e.kind === 'refund' ? '退款 ' + (e.outRefundNo || '') : e.outTradeNo || '—') + '</code>' +
        '<span class="badge ' + esc(outcomeClass) + '" title="' + esc(e.outcome) + '">' + esc(outcomeLabel(e.outcome)) + '</span></li>';
    }).join('');
    document.getElementById('health-body').innerHTML = warningHtml +
      '<div class="muted">最近 24 小时：' + total + ' 条，异常 <b class="' + (bad ? 'error' : '') + '" id="health-bad">' + bad + '</b>，' +
      '微信重发 <b id="health-retries">' + (h.redeliveriesLast24h || 0) + '</b> 次</div>' +
      '<div class="chips">' + (chips || '<span class="muted">暂无</span>') + '</div>' +
      '<div class="muted">最近一条：' + (last ? esc(time(last.receivedAt)) : '—') + '</div>' +
      '<ul id="health-recent">' + items + '</ul>';
  }

  // ------------------------------------------------------------------ router

  function setNav(name) {
    document.querySelectorAll('[data-nav]').forEach(function (a) { a.classList.toggle('active', a.getAttribute('data-nav') === name); });
  }
  function query(hash) {
    var q = {};
    var i = hash.indexOf('?');
    if (i >= 0) hash.slice(i + 1).split('&').forEach(function (pair) {
      var kv = pair.split('=');
      if (kv[0]) q[decodeURIComponent(kv[0])] = decodeURIComponent(kv[1] || '');
    });
    return q;
  }
  function qs(params) {
    return Object.keys(params).filter(function (k) { return params[k] !== '' && params[k] != null; })
      .map(function (k) { return encodeURIComponent(k) + '=' + encodeURIComponent(params[k]); }).join('&');
  }

  function route() {
    timers.view.forEach(clearTimeout);
    timers.view = [];
    if (!token()) return;
    var hash = location.hash || '#/orders';
    var order = /^#\/order\/([0-9A-Za-z_\-|*]+)$/.exec(hash);
    if (order) return renderOrder(order[1]);
    if (hash.indexOf('#/bills') === 0) return renderBills(query(hash));
    if (hash.indexOf('#/products') === 0) return renderProducts();
    return renderOrders(query(hash));
  }
  window.addEventListener('hashchange', route);

  // ------------------------------------------------------------------ orders

  function renderOrders(q) {
    setNav('orders');
    var page = Number(q.page || 1);
    var statusOptions = ['<option value="">全部状态</option>'].concat(Object.keys(ORDER_STATUS).map(function (s) {
      return '<option value="' + s + '"' + (q.status === s ? ' selected' : '') + '>' + ORDER_STATUS[s] + ' (' + s + ')</option>';
    })).join('');
    view.innerHTML = '<section class="card"><h1>订单</h1>' +
      '<form class="filters" id="filters">' +
      '<label>状态<select name="status">' + statusOptions + '</select></label>' +
      '<label>下单日期从<input type="date" name="from" value="' + esc(q.from || '') + '"></label>' +
      '<label>到<input type="date" name="to" value="' + esc(q.to || '') + '"></label>' +
      '<label>openid<input name="openid" value="' + esc(q.openid || '') + '" placeholder="o_…" size="18"></label>' +
      '<button class="btn btn-primary" type="submit">筛选</button> <a href="#/orders" class="btn btn-ghost">清除</a></form>' +
      '<div id="orders-table" class="table-wrap"><p class="muted">加载中…</p></div></section>';
    document.getElementById('filters').onsubmit = function (event) {
      event.preventDefault();
      var form = event.target;
      location.hash = '#/orders?' + qs({ status: form.status.value, from: form.from.value, to: form.to.value, openid: form.openid.value.trim() });
    };
    api('/admin/orders?' + qs({ status: q.status, from: q.from, to: q.to, openid: q.openid, page: page, pageSize: 20 })).then(function (result) {
      var rows = result.items.map(function (o) {
        return '<tr class="clickable" data-order="' + esc(o.outTradeNo) + '"><td><code>' + esc(o.outTradeNo) + '</code></td><td>' + esc(time(o.createdAt)) + '</td>' +
          '<td><code>' + esc(o.openid) + '</code></td><td class="wrap">' + esc(o.description) + '</td><td class="num">' + yuan(o.total) + '</td>' +
          '<td class="num">' + (o.refundedTotal ? yuan(o.refundedTotal) : '') + '</td><td>' + badge(o.status, ORDER_STATUS) + '</td></tr>';
      }).join('');
      var pages = Math.max(1, Math.ceil(result.total / result.pageSize));
      document.getElementById('orders-table').innerHTML = result.items.length
        ? '<table><thead><tr><th>订单号</th><th>下单时间</th><th>openid</th><th>商品</th><th class="num">金额</th><th class="num">已退</th><th>状态</th></tr></thead><tbody>' + rows + '</tbody></table>' +
          '<div class="pager"><span class="muted">共 ' + result.total + ' 笔，第 ' + page + '/' + pages + ' 页</span>' +
          '<button class="btn btn-ghost btn-small" id="prev"' + (page > 1 ? '' : ' disabled') + '>上一页</button>' +
          '<button class="btn btn-ghost btn-small" id="next"' + (page < pages ? '' : ' disabled') + '>下一页</button></div>'
        : '<p class="muted">没有符合条件的订单</p>';
      view.querySelectorAll('tr[data-order]').forEach(function (tr) {
        tr.onclick = function () { location.hash = '#/order/' + tr.getAttribute('data-order'); };
      });
      var go = function (p) { location.hash = '#/orders?' + qs({ status: q.status, from: q.from, to: q.to, openid: q.openid, page: p }); };
      var prev = document.getElementById('prev');
      var next = document.getElementById('next');
      if (prev) prev.onclick = function () { go(page - 1); };
      if (next) next.onclick = function () { go(page + 1); };
    }, function (error) {
      failed(error);
      var el = document.getElementById('orders-table');
      if (el) el.innerHTML = '<p class="error">' + esc(errorText(error)) + '</p>';
    });
  }

  // ------------------------------------------------------------------ one order: details, timeline, refunds

  function describeEvent(e) {
    var d = e.detail;
    if (d == null) return '';
    if (typeof d !== 'object') return String(d);
    var parts = [];
    Object.keys(d).forEach(function (k) {
      var v = d[k];
      if (v == null || v === '') return;
      if (typeof v === 'object') v = JSON.stringify(v);
      parts.push(k + '=' + v);
    });
    return parts.join(' · ');
  }

  function refundRow(r) {
    return '<tr data-refund="' + esc(r.outRefundNo) + '" data-status="' + esc(r.status) + '"><td><code>' + esc(r.outRefundNo) + '</code><div class="muted">' + esc(time(r.createdAt)) + '</div></td>' +
      '<td class="num">' + yuan(r.amount) + '</td><td>' + badge(r.status, REFUND_STATUS) +
      (r.status === 'PROCESSING' ? '<div><button class="btn btn-ghost btn-small" data-check="' + esc(r.outRefundNo) + '">向微信查询</button></div>' : '') + '</td>' +
      '<td class="wrap">' + esc(r.reason || '') + (r.wechatCode ? ' <span class="error">' + esc(r.wechatCode + ' ' + (r.wechatMessage || '')) + '</span>' : '') + '</td></tr>';
  }

  /**
   * While a refund of this order is in progress, asks the server every 3 s (no WeChat call: the
   * server's view, which notifications and the refund job keep current) and redraws the order once
   * any refund's status changed: the operator does not reload to see a refund complete.
   */
  function watchRefunds(outTradeNo, refunds) {
    if (!refunds.some(function (r) { return r.status === 'PROCESSING'; })) return;
    var known = {};
    refunds.forEach(function (r) { known[r.outRefundNo] = r.status; });
    timers.view.push(setTimeout(function check() {
      if (location.hash !== '#/order/' + outTradeNo) return;
      api('/admin/refunds?outTradeNo=' + encodeURIComponent(outTradeNo)).then(function (now) {
        var changed = now.length !== refunds.length || now.some(function (r) { return known[r.outRefundNo] !== r.status; });
        if (changed) {
          now.forEach(function (r) { if (known[r.outRefundNo] && known[r.outRefundNo] !== r.status) toast('退款 ' + r.outRefundNo + '：' + (REFUND_STATUS[r.status] || r.status)); });
          renderOrder(outTradeNo);
        } else timers.view.push(setTimeout(check, 3000));
      }, function (error) {
        if (error.message !== 'unauthorised') timers.view.push(setTimeout(check, 6000));
      });
    }, 3000));
  }

  function renderOrder(outTradeNo) {
    setNav('orders');
    timers.view.forEach(clearTimeout);
    timers.view = [];
    view.innerHTML = '<section class="card"><p class="muted">加载中…</p></section>';
    Promise.all([api('/admin/orders/' + encodeURIComponent(outTradeNo)), api('/admin/refunds?outTradeNo=' + encodeURIComponent(outTradeNo))])
      .then(function (both) {
        var o = both[0];
        var refunds = both[1];
        var paid = o.paidTotal == null ? 0 : o.paidTotal;
        // Refunds of a duplicate payment (another attempt paid too) give that attempt's money back, not the order's.
        var ofOrder = function (r) { return !o.paidOutTradeNo || !r.paymentOutTradeNo || r.paymentOutTradeNo === o.paidOutTradeNo; };
        var committed = refunds.reduce(function (sum, r) { return sum + (ofOrder(r) && (r.status === 'SUCCESS' || r.status === 'PROCESSING' || r.status === 'ABNORMAL') ? r.amount : 0); }, 0);
        var refundable = Math.max(0, paid - committed);
        var canRefund = (o.status === 'PAID' || o.status === 'PAID_AFTER_CLOSE') && refundable > 0;
        var items = o.items.map(function (i) {
          return '<tr><td>' + esc(i.name) + '</td><td class="num">' + yuan(i.unitPrice) + '</td><td class="num">' + i.quantity + '</td><td class="num">' + yuan(i.subtotal) + '</td></tr>';
        }).join('');
        var timeline = (o.timeline || []).map(function (e) {
          var cls = /paid|applied|success|SUCCESS|refund:SUCCESS/.test(e.type) ? 'ok' : /anomaly|reject|fail|ABNORMAL|paid_after_close/i.test(e.type) ? 'warn' : '';
          return '<li class="' + cls + '" data-type="' + esc(e.type) + '"><div><span class="type">' + esc(eventLabel(e.type)) + '</span> <code class="muted">' + esc(e.type) + '</code> <span class="muted">' + esc(time(e.at || e.createdAt)) + '</span></div>' +
            '<div class="detail">' + esc(describeEvent(e)) + '</div></li>';
        }).join('');
        var refundRows = refunds.map(refundRow).join('');
        var paymentRows = (o.payments || []).map(function (p) {
          var note = p.outTradeNo === o.paidOutTradeNo ? '订单的支付' : (p.status === 'PAID' || p.status === 'REFUNDED') ? '重复支付（自动退款）' : '';
          return '<tr data-out-trade-no="' + esc(p.outTradeNo) + '" data-status="' + esc(p.status) + '"><td><code>' + esc(p.outTradeNo) + '</code></td><td>' + esc(CHANNEL[p.channel] || p.channel) + '</td><td>' +
            esc(ATTEMPT_STATUS[p.status] || p.status) + '</td><td>' + esc(time(p.createdAt)) + '</td><td class="muted">' + esc(note) + '</td></tr>';
        }).join('');
        var refundNo = 'RF' + Date.now().toString(36).toUpperCase() + Math.random().toString(36).slice(2, 8).toUpperCase();
        view.innerHTML =
          '<p><a href="#/orders">← 返回订单列表</a></p>' +
          '<section class="card" id="order" data-status="' + esc(o.status) + '"><h1>订单 <code>' + esc(o.outTradeNo) + '</code> ' + badge(o.status, ORDER_STATUS) + '</h1>' +
          (o.anomalyReason ? '<div class="notice bad">异常原因：' + esc(o.anomalyReason) + '</div>' : '') +
          '<div class="grid2"><dl class="kv">' +
          '<dt>订单金额</dt><dd>' + yuan(o.total) + '</dd><dt>实付</dt><dd>' + yuan(o.paidTotal) + '</dd>' +
          '<dt>已退款</dt><dd id="refunded-total">' + yuan(o.refundedTotal) + '</dd><dt>下单</dt><dd>' + esc(time(o.createdAt)) + '</dd>' +
          '<dt>支付</dt><dd>' + esc(time(o.paidAt)) + '</dd><dt>过期</dt><dd>' + esc(time(o.expiresAt)) + '</dd>' +
          (o.status === 'CLOSED' ? '<dt>关闭</dt><dd id="closed-info">' + esc(time(o.closedAt)) + (o.closeReason ? '（' + esc(CLOSE_REASON[o.closeReason] || o.closeReason) + '）' : '') + '</dd>' : '') + '</dl>' +
          '<dl class="kv"><dt>openid</dt><dd><code>' + esc(o.openid) + '</code></dd><dt>付款人</dt><dd><code>' + esc(o.payerOpenid || '—') + '</code></dd>' +
          '<dt>微信单号</dt><dd><code>' + esc(o.transactionId || '—') + '</code></dd><dt>prepay_id</dt><dd><code>' + esc(o.prepayId || '—') + '</code></dd></dl></div>' +
          '<h3>商品</h3><div class="table-wrap"><table><thead><tr><th>商品</th><th class="num">单价</th><th class="num">数量</th><th class="num">小计</th></tr></thead><tbody>' + items + '</tbody></table></div>' +
          '<h3>支付尝试</h3><div class="table-wrap"><table id="payments"><thead><tr><th>商户单号</th><th>渠道</th><th>状态</th><th>创建</th><th></th></tr></thead><tbody>' +
          (paymentRows || '<tr><td colspan="5" class="muted">尚未发起支付</td></tr>') + '</tbody></table></div></section>' +
          '<div class="grid2 spaced">' +
          '<section class="card"><h2>时间线</h2><ol class="timeline" id="timeline">' + (timeline || '<li>无</li>') + '</ol></section>' +
          '<section class="card" id="refunds"><h2>退款</h2>' +
          '<p class="refundable">可退金额 <b id="refundable" data-fen="' + refundable + '">' + yuan(refundable) + '</b>' +
          ' <span class="muted">= 实付 ' + yuan(paid) + ' − 已退及处理中 ' + yuan(committed) + '</span></p>' +
          (canRefund
            ? '<form id="refund-form"><div class="form-row">' +
              '<label>退款金额（元）<input name="amount" id="refund-amount" inputmode="decimal" required size="10" placeholder="0.00"></label>' +
              '<button type="button" class="btn btn-ghost btn-small" id="refund-all">全额</button>' +
              '<label>原因<input name="reason" id="refund-reason" required maxlength="80" value="协商退款" size="14"></label>' +
              '<button class="btn btn-danger" type="submit" id="refund-submit">退款</button></div>' +
              '<p class="muted">退款单号 <code>' + refundNo + '</code>（重复提交不会重复退款）</p></form>'
            : '<p class="muted">' + (o.status === 'PAID' || o.status === 'PAID_AFTER_CLOSE' ? '已无可退金额。' : '订单未支付，不能退款。') + '</p>') +
          (refunds.length ? '<div class="table-wrap" id="refunds-wrap"><table class="compact" id="refunds-table"><thead><tr><th>退款单号 / 时间</th><th class="num">金额</th><th>状态</th><th>原因</th></tr></thead><tbody>' + refundRows + '</tbody></table></div>' : '') +
          '</section></div>';

        view.querySelectorAll('[data-check]').forEach(function (b) {
          b.onclick = function () {
            b.disabled = true;
            api('/admin/refunds/' + encodeURIComponent(b.getAttribute('data-check'))).then(function (r) {
              toast('退款 ' + r.outRefundNo + '：' + (REFUND_STATUS[r.status] || r.status));
              renderOrder(outTradeNo);
            }, function (error) { b.disabled = false; failed(error); });
          };
        });
        watchRefunds(outTradeNo, refunds);
        var form = document.getElementById('refund-form');
        if (!form) return;
        document.getElementById('refund-all').onclick = function () { document.getElementById('refund-amount').value = (refundable / 100).toFixed(2); };
        form.onsubmit = function (event) {
          event.preventDefault();
          var fen = toFen(document.getElementById('refund-amount').value);
          if (!fen) { toast('请输入正确的金额，如 12.50'); return; }
          if (fen > refundable) { toast('超过可退金额 ' + yuan(refundable)); return; }
          var reason = document.getElementById('refund-reason').value.trim();
          if (!reason) { toast('请填写退款原因'); return; }
          if (!window.confirm('确认退款 ' + yuan(fen) + ' 给订单 ' + outTradeNo + '？')) return;
          var button = document.getElementById('refund-submit');
          button.disabled = true;
          api('/admin/refunds', { method: 'POST', body: { outTradeNo: outTradeNo, amount: fen, reason: reason, outRefundNo: refundNo } })
            .then(function (r) {
              toast('已提交退款 ' + yuan(r.amount) + '：' + (REFUND_STATUS[r.status] || r.status));
              renderOrder(outTradeNo);
            }, function (error) {
              button.disabled = false;
              failed(error);
              renderOrder(outTradeNo);
            });
        };
      }, function (error) {
        failed(error);
        view.innerHTML = '<p><a href="#/orders">← 返回订单列表</a></p><section class="card"><p class="error" id="order-error">' + esc(errorText(error)) + '</p></section>';
      });
  }

  // ------------------------------------------------------------------ products

  /** "" → null (unlimited); a whole number ≥ 0 → that number; anything else → undefined (invalid). */
  function toStock(text) {
    var t = String(text).trim();
    if (t === '') return null;
    return /^\d{1,9}$/.test(t) ? Number(t) : undefined;
  }
  var MAX_PRICE_FEN = 10000000;

  /** Checks a product form's price and stock; returns the values or shows what is wrong. */
  function productValues(priceText, stockText, errorEl) {
    var price = toFen(priceText);
    var stock = toStock(stockText);
    var problem = !price ? '价格须为大于 0 的金额，如 39.00' : price > MAX_PRICE_FEN ? '价格不能超过 ¥100000.00' : stock === undefined ? '库存须为 0 或正整数（留空表示不限）' : '';
    errorEl.textContent = problem;
    return problem ? null : { price: price, stock: stock };
  }

  function renderProducts() {
    setNav('products');
    view.innerHTML = '<section class="card"><h1>商品</h1>' +
      '<form id="product-create" class="form-row" novalidate>' +
      '<label>名称<input name="name" id="new-name" required maxlength="128" size="18" placeholder="如：微信定制马克杯"></label>' +
      '<label>价格（元）<input name="price" id="new-price" inputmode="decimal" required size="8" placeholder="39.00"></label>' +
      '<label>库存<input name="stock" id="new-stock" inputmode="numeric" size="6" placeholder="不限"></label>' +
      '<label>描述<input name="description" id="new-description" maxlength="512" size="22"></label>' +
      '<button class="btn btn-primary" type="submit" id="new-submit">新增商品</button></form>' +
      '<p class="error" id="product-error" role="alert"></p>' +
      '<div id="products-table" class="table-wrap"><p class="muted">加载中…</p></div></section>';
    var form = document.getElementById('product-create');
    form.onsubmit = function (event) {
      event.preventDefault();
      var errorEl = document.getElementById('product-error');
      var name = form.name.value.trim();
      if (!name) { errorEl.textContent = '请填写商品名称'; return; }
      var values = productValues(form.price.value, form.stock.value, errorEl);
      if (!values) return;
      var body = { name: name, price: values.price, stock: values.stock };
      if (form.description.value.trim()) body.description = form.description.value.trim();
      var button = document.getElementById('new-submit');
      button.disabled = true;
      api('/admin/products', { method: 'POST', body: body }).then(function (p) {
        toast('已新增商品「' + p.name + '」');
        renderProducts();
      }, function (error) {
        button.disabled = false;
        errorEl.textContent = errorText(error);
      });
    };
    api('/admin/products').then(function (products) {
      var el = document.getElementById('products-table');
      if (!el) return;
      el.innerHTML = products.length
        ? '<table id="products"><thead><tr><th>ID</th><th>名称</th><th class="num">价格</th><th class="num">库存</th><th>状态</th><th></th></tr></thead><tbody>' +
          products.map(function (p) {
            return '<tr data-product="' + p.id + '"><td>' + p.id + '</td><td class="wrap">' + esc(p.name) + '</td>' +
              '<td class="num" data-price="' + p.price + '">' + yuan(p.price) + '</td><td class="num" data-stock="' + (p.stock == null ? '' : p.stock) + '">' + (p.stock == null ? '不限' : p.stock) + '</td>' +
              '<td>' + (p.active === false ? '<span class="badge">已下架</span>' : '<span class="badge PAID">在售</span>') + '</td>' +
              '<td><button class="btn btn-ghost btn-small" data-edit="' + p.id + '">编辑</button></td></tr>';
          }).join('') + '</tbody></table>'
        : '<p class="muted">还没有商品</p>';
      el.querySelectorAll('[data-edit]').forEach(function (b) {
        b.onclick = function () { editProduct(products.filter(function (p) { return String(p.id) === b.getAttribute('data-edit'); })[0]); };
      });
    }, function (error) {
      failed(error);
      var el = document.getElementById('products-table');
      if (el) el.innerHTML = '<p class="error">' + esc(errorText(error)) + '</p>';
    });
  }

  /** The product's row becomes a form: price, stock and on sale; only what changed is sent. */
  function editProduct(p) {
    var tr = view.querySelector('tr[data-product="' + p.id + '"]');
    tr.classList.add('editing');
    tr.innerHTML = '<td>' + p.id + '</td><td class="wrap">' + esc(p.name) + '</td>' +
      '<td class="num"><input class="num" id="edit-price" inputmode="decimal" size="8" value="' + (p.price / 100).toFixed(2) + '"></td>' +
      '<td class="num"><input class="num" id="edit-stock" inputmode="numeric" size="6" placeholder="不限" value="' + (p.stock == null ? '' : p.stock) + '"></td>' +
      '<td><label class="inline"><input type="checkbox" id="edit-active"' + (p.active === false ? '' : ' checked') + '> 在售</label></td>' +
      '<td><button class="btn btn-primary btn-small" id="edit-save">保存</button> <button class="btn btn-ghost btn-small" id="edit-cancel">取消</button>' +
      '<div class="error" id="edit-error"></div></td>';
    document.getElementById('edit-cancel').onclick = function () { renderProducts(); };
    document.getElementById('edit-save').onclick = function () {
      var errorEl = document.getElementById('edit-error');
      var values = productValues(document.getElementById('edit-price').value, document.getElementById('edit-stock').value, errorEl);
      if (!values) return;
      var body = {};
      if (values.price !== p.price) body.price = values.price;
      if (values.stock !== p.stock) body.stock = values.stock;
      var active = document.getElementById('edit-active').checked;
      if (active !== (p.active !== false)) body.active = active;
      if (!Object.keys(body).length) { renderProducts(); return; }
      var button = document.getElementById('edit-save');
      button.disabled = true;
      api('/admin/products/' + p.id, { method: 'PATCH', body: body }).then(function (after) {
        toast('已保存「' + after.name + '」：' + yuan(after.price) + '，库存 ' + (after.stock == null ? '不限' : after.stock));
        renderProducts();
      }, function (error) {
        button.disabled = false;
        errorEl.textContent = errorText(error);
      });
    };
  }

  // ------------------------------------------------------------------ bills and reconciliation

  function renderBills(q) {
    setNav('bills');
    var date = /^\d{4}-\d{2}-\d{2}$/.test(q.date || '') ? q.date : beijingToday();
    // Service-provider mode: the sub-merchant whose bills and reconciliation are shown ('' = the default one).
    var sub = /^\d{8,12}$/.test(q.sub || '') ? q.sub : '';
    var subQuery = function () { return sub ? '&subMchid=' + encodeURIComponent(sub) : ''; };
    view.innerHTML = '<section class="card"><h1>账单与对账</h1>' +
      '<div class="filters"><label>账单日期（北京时间）<input type="date" id="bill-date" value="' + esc(date) + '" max="' + beijingToday() + '"></label>' +
      '<span id="bill-sub-wrap"></span>' +
      '<button class="btn btn-ghost" id="download-trade">下载交易账单</button>' +
      '<button class="btn btn-ghost" id="download-fund">下载资金账单</button>' +
      '<button class="btn btn-ghost" id="download-sub-fund" hidden>下载特约商户资金账单</button>' +
      '<button class="btn btn-primary" id="reconcile">开始对账</button></div>' +
      '<p class="muted">对账会下载当日 ALL 交易账单（校验 SHA-1、解压），逐笔与本系统订单和退款比对；微信已支付而本系统未支付的订单会被补记为已支付。</p>' +
      '<div id="recon-status"></div></section>' +
      '<section class="card spaced" id="recon-result" hidden></section>' +
      '<section class="card spaced"><h2>最近对账</h2><div id="recon-list" class="table-wrap"><p class="muted">加载中…</p></div></section>';
    var input = document.getElementById('bill-date');
    var target = function (d, s) { return '#/bills?date=' + d + (s ? '&sub=' + encodeURIComponent(s) : ''); };
    input.onchange = function () { location.hash = target(input.value, sub); };
    // Sub-merchants exist in service-provider mode only (GET /admin/deployment says which; no selector in direct mode).
    deployment().then(function (d) { return d.merchantType === 'partner' ? api('/admin/sub-merchants') : []; }).then(function (list) {
      var wrap = document.getElementById('bill-sub-wrap');
      if (!wrap || !list.length) return;
      var selected = sub || (list.filter(function (m) { return m.isDefault; })[0] || list[0]).subMchid;
      wrap.innerHTML = '<label>特约商户<select id="bill-sub">' + list.map(function (m) {
        return '<option value="' + esc(m.subMchid) + '"' + (m.subMchid === selected ? ' selected' : '') + '>' + esc(m.name) + '（' + esc(m.subMchid) + '）' + (m.enabled ? '' : '（已停用）') + '</option>';
      }).join('') + '</select></label>';
      document.getElementById('bill-sub').onchange = function (event) { location.hash = target(input.value, event.currentTarget.value); };
      document.getElementById('download-sub-fund').hidden = false;
    }, failed);
    /** A button that downloads the selected day's bill of `kind` (trade | fundflow | sub-merchant-fundflow) as CSV. */
    function billButton(id, kind, query, fileName) {
      document.getElementById(id).onclick = function (event) {
        var b = event.currentTarget;
        b.disabled = true;
        download('/admin/bills/' + kind + '?date=' + input.value + '&' + query, fileName + '-' + input.value + '.csv')
          .then(function (file) { toast('已下载 ' + file.name + '（' + file.bytes + ' 字节）'); }, failed)
          .then(function () { b.disabled = false; });
      };
    }
    billButton('download-trade', 'trade', 'type=ALL' + subQuery(), 'tradebill');
    billButton('download-fund', 'fundflow', 'account=BASIC', 'fundflow');
    billButton('download-sub-fund', 'sub-merchant-fundflow', 'account=BASIC' + subQuery(), 'sub-merchant-fundflow');
    document.getElementById('reconcile').onclick = function (event) {
      var b = event.currentTarget;
      b.disabled = true;
      document.getElementById('recon-status').innerHTML = '<div class="notice">正在对账 ' + esc(input.value) + '…</div>';
      api('/admin/reconciliations?date=' + input.value + subQuery(), { method: 'POST' }).then(function (result) {
        document.getElementById('recon-status').innerHTML = '';
        renderReconciliation(result);
        loadList(input.value, false, sub);
      }, function (error) {
        document.getElementById('recon-status').innerHTML = '<div class="notice bad">对账失败：' + esc(errorText(error)) + '</div>';
        failed(error);
      }).then(function () { b.disabled = false; });
    };
    loadList(date, true, sub);
  }

  /**
   * Recent runs; the selected date's stored result is shown when there is one. Service-provider mode:
   * every sub-merchant's runs (a 特约商户 column); `sub` is the one shown ('' = the default one).
   */
  function loadList(date, showStored, sub) {
    api('/admin/reconciliations?limit=14').then(function (list) {
      var el = document.getElementById('recon-list');
      if (!el) return;
      var partner = list.some(function (r) { return r.subMchid; });
      el.innerHTML = list.length
        ? '<table><thead><tr><th>日期</th>' + (partner ? '<th>特约商户</th>' : '') + '<th>状态</th><th class="num">账单笔数</th><th class="num">差异</th><th>对账时间</th></tr></thead><tbody>' +
          list.map(function (r) {
            return '<tr class="clickable' + (r.differenceCount ? ' diff' : '') + '" data-date="' + esc(r.date) + '" data-sub="' + esc(r.subMchid || '') + '"><td>' + esc(r.date) + '</td>' +
              (partner ? '<td><code>' + esc(r.subMchid || '') + '</code></td>' : '') + '<td>' + badge(r.status, RECON_STATUS) + '</td><td class="num">' + r.billRows +
              '</td><td class="num">' + r.differenceCount + '</td><td>' + esc(time(r.startedAt)) + '</td></tr>';
          }).join('') + '</tbody></table>'
        : '<p class="muted">还没有对账记录</p>';
      el.querySelectorAll('tr[data-date]').forEach(function (tr) {
        tr.onclick = function () {
          var s = tr.getAttribute('data-sub');
          location.hash = '#/bills?date=' + tr.getAttribute('data-date') + (s ? '&sub=' + encodeURIComponent(s) : '');
        };
      });
      if (showStored && list.some(function (r) { return r.date === date && (!sub || r.subMchid === sub); })) {
        // Without a sub-merchant chosen the default one's result is asked for: it may not have run (404) while another did.
        api('/admin/reconciliations/' + date + (sub ? '?subMchid=' + encodeURIComponent(sub) : '')).then(renderReconciliation, function (error) { if (error.status !== 404) failed(error); });
      }
    }, failed);
  }

  /** Horizontal bars: amounts by outcome; differences in red. */
  function chart(amounts) {
    var bars = [
      { key: 'matched', label: '已匹配', color: '#07c160', value: amounts.matched || 0 },
      { key: 'onlyInWechat', label: '仅微信有', color: '#fa5151', value: amounts.onlyInWechat || 0, diff: true },
      { key: 'onlyHere', label: '仅我方有', color: '#fa5151', value: amounts.onlyHere || 0, diff: true },
      { key: 'mismatched', label: '金额/状态不一致', color: '#fa9d3b', value: amounts.mismatched || 0, diff: true },
      { key: 'refunded', label: '退款', color: '#10aeff', value: amounts.refunded || 0 }
    ];
    var max = Math.max.apply(null, bars.map(function (b) { return b.value; }).concat([1]));
    var left = 120;
    var width = 420;
    var rowH = 34;
    var svg = '<svg class="chart" id="recon-chart" viewBox="0 0 ' + (left + width + 110) + ' ' + (bars.length * rowH + 10) + '" role="img" aria-label="按结果分类的金额">';
    bars.forEach(function (b, i) {
      var y = 8 + i * rowH;
      var w = b.value ? Math.max(3, Math.round((b.value / max) * width)) : 0;
      svg += '<text x="' + (left - 8) + '" y="' + (y + 17) + '" text-anchor="end"' + (b.diff && b.value ? ' fill="#fa5151" font-weight="600"' : '') + '>' + esc(b.label) + '</text>' +
        '<rect class="axis" x="' + left + '" y="' + (y + 2) + '" width="' + width + '" height="22" fill="#f5f6f7"></rect>' +
        '<rect data-bar="' + b.key + '" x="' + left + '" y="' + (y + 2) + '" width="' + w + '" height="22" rx="3" fill="' + b.color + '"></rect>' +
        '<text x="' + (left + w + 6) + '" y="' + (y + 17) + '">' + yuan(b.value) + '</text>';
    });
    return svg + '</svg>';
  }

  function renderReconciliation(r) {
    var el = document.getElementById('recon-result');
    if (!el) return;
    el.hidden = false;
    var s = r.summary;
    var p = s.payments;
    var f = s.refunds;
    var diffRows = r.differences.map(function (d) {
      return '<tr class="diff" data-diff="' + esc(d.type) + '" data-order="' + esc(d.outTradeNo) + '"><td>' + esc(DIFF_TYPE[d.type] || d.type) + '<div class="muted"><code>' + esc(d.type) + '</code></div></td>' +
        // An order WeChat has and we do not (no status here): nothing to open, so no link.
        '<td>' + (!(d.type === 'only_in_wechat' && (!d.ourStatus || d.ourStatus === 'unknown'))
          ? '<a href="#/order/' + esc(d.outTradeNo) + '"><code>' + esc(d.outTradeNo) + '</code></a>'
          : '<code class="no-link" data-missing="' + esc(d.outTradeNo) + '">' + esc(d.outTradeNo) + '</code><div class="muted">本系统无此订单</div>') +
          (d.outRefundNo ? '<div class="muted"><code>' + esc(d.outRefundNo) + '</code></div>' : '') + '</td>' +
        '<td class="num">' + yuan(d.wechatAmount) + '</td><td class="num">' + yuan(d.ourAmount) + '</td>' +
        '<td>' + esc(d.wechatState || '') + '</td><td>' + (d.ourStatus && d.ourStatus !== 'unknown' ? badge(d.ourStatus, d.outRefundNo ? REFUND_STATUS : ORDER_STATUS) : '—') + '</td>' +
        '<td class="wrap">' + esc(d.detail) + (d.action ? '<div><b>处理：</b>' + esc(d.action) + '</div>' : '') + '</td></tr>';
    }).join('');
    var legend = '<div class="legend"><span><i class="matched"></i>已匹配</span><span><i class="diff"></i>差异（单边账）</span>' +
      '<span><i class="mismatch"></i>不一致</span><span><i class="refund"></i>退款</span></div>';
    el.innerHTML = '<h2>对账结果 ' + esc(r.date) + (r.subMchid ? ' 特约商户 <code>' + esc(r.subMchid) + '</code>' : '') + ' ' + badge(r.status, RECON_STATUS) + '</h2>' +
      (r.error ? '<div class="notice bad">' + esc(r.error) + '</div>' : '') +
      (s.differenceCount ? '<div class="notice bad" id="recon-verdict">发现 ' + s.differenceCount + ' 处差异' + (s.appliedFromBill ? '，其中 ' + s.appliedFromBill + ' 笔微信已支付的订单已补记为已支付' : '') + '。</div>'
        : '<div class="notice good" id="recon-verdict">账实相符，没有差异。</div>') +
      '<div class="stats">' +
      '<div class="stat"><div class="label">账单笔数</div><div class="value" id="stat-rows">' + s.billRows + '</div></div>' +
      '<div class="stat good"><div class="label">支付已匹配</div><div class="value">' + p.matched + ' / ' + p.inBill + '</div></div>' +
      '<div class="stat ' + (s.differenceCount ? 'bad' : 'good') + '"><div class="label">差异</div><div class="value" id="stat-diffs">' + s.differenceCount + '</div></div>' +
      '<div class="stat"><div class="label">微信支付金额</div><div class="value">' + yuan(p.billAmount) + '</div></div>' +
      '<div class="stat"><div class="label">本系统支付金额</div><div class="value">' + yuan(p.ourAmount) + '</div></div>' +
      '<div class="stat"><div class="label">退款（微信 / 本系统）</div><div class="value">' + yuan(f.billAmount) + ' / ' + yuan(f.ourAmount) + '</div></div>' +
      '<div class="stat ' + (s.billSummaryConsistent ? 'good' : 'bad') + '"><div class="label">账单汇总行</div><div class="value">' + (s.billSummaryConsistent ? '一致' : '不一致') + '</div></div>' +
      '</div>' +
      '<h3>金额分布</h3>' + chart(s.amounts || {}) + legend +
      '<h3>差异明细 <button class="btn btn-ghost btn-small" id="download-diffs">下载差异 CSV</button></h3>' +
      (diffRows
        ? '<div class="table-wrap"><table id="diff-table"><thead><tr><th>类型</th><th>订单号</th><th class="num">微信金额</th><th class="num">我方金额</th><th>微信状态</th><th>我方状态</th><th>说明</th></tr></thead><tbody>' + diffRows + '</tbody></table></div>'
        : '<p class="muted">无</p>');
    document.getElementById('download-diffs').onclick = function () {
      download('/admin/reconciliations/' + r.date + '/differences.csv' + (r.subMchid ? '?subMchid=' + encodeURIComponent(r.subMchid) : ''), 'reconciliation-' + r.date + (r.subMchid ? '-' + r.subMchid : '') + '.csv').then(function (file) { toast('已下载 ' + file.name); }, failed);
    };
  }

  // ------------------------------------------------------------------ boot

  if (token()) {
    api('/admin/notifications?limit=1').then(showApp, function (error) { if (error.message !== 'unauthorised') showLogin(error.message); });
  } else {
    showLogin();
  }
})();
