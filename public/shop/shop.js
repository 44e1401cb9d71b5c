/* The demo H5 shop: WeChat login, products, cart, JSAPI pay through WeixinJSBridge, my orders.
   Plain browser JavaScript, no build step. The server is the only source of prices and statuses. */
(function () {
  'use strict';

  var state = { config: null, me: null, products: [], cart: {}, wxReady: null, timers: [] };
  /**
   * Service-provider mode: a sub-merchant's storefront link (/?subMchid=…) logs in through that
   * sub-merchant's own official account and signs wx.config with it (the server falls back to the
   * provider's when it has none).
   */
  var SUB_MCHID = (function () {
    var value = new URLSearchParams(location.search).get('subMchid');
    return value && /^[0-9]{8,12}$/.test(value) ? value : null;
  })();
  function subMchidParam() { return SUB_MCHID ? '&subMchid=' + SUB_MCHID : ''; }
  var view = document.getElementById('view');

  function yuan(fen) { return '¥' + (fen / 100).toFixed(2); }
  function esc(text) {
    return String(text == null ? '' : text).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }
  /** Result icons as inline SVG: emoji are missing from some WebViews' fonts. */
  var ICONS = {
    ok: '<circle cx="32" cy="32" r="30" fill="#07c160"/><path d="M18 33l9 9 19-20" stroke="#fff" stroke-width="6" fill="none" stroke-linecap="round" stroke-linejoin="round"/>',
    wait: '<circle cx="32" cy="32" r="30" fill="#10aeff"/><path d="M32 16v17l11 7" stroke="#fff" stroke-width="6" fill="none" stroke-linecap="round" stroke-linejoin="round"/>',
    closed: '<circle cx="32" cy="32" r="30" fill="#b2b2b2"/><path d="M21 21l22 22M43 21L21 43" stroke="#fff" stroke-width="6" stroke-linecap="round"/>',
    warn: '<circle cx="32" cy="32" r="30" fill="#fa9d3b"/><path d="M32 15v22" stroke="#fff" stroke-width="6" stroke-linecap="round"/><circle cx="32" cy="47" r="4" fill="#fff"/>'
  };
  function icon(name) { return '<svg viewBox="0 0 64 64" width="64" height="64" aria-hidden="true">' + ICONS[name] + '</svg>'; }

  var STATUS = { NOTPAY: '待支付', PAID: '已支付', CLOSED: '已关闭', REFUNDED: '已退款', ANOMALY: '异常', PAID_AFTER_CLOSE: '关闭后支付' };
  /** A closed order: cancelled by the shopper, or closed because it was not paid in time. */
  var CLOSE_REASON = { cancelled: '已取消', expired: '已超时关闭' };

  /** "2026-12-03 18:39" in the shopper's time zone. */
  function dateTime(iso) {
    if (!iso) return '';
    var d = new Date(iso);
    function p(n) { return ('0' + n).slice(-2); }
    return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + ' ' + p(d.getHours()) + ':' + p(d.getMinutes());
  }

  function toast(message, ms) {
    var el = document.getElementById('toast');
    el.textContent = message;
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { el.hidden = true; }, ms || 2600);
  }

  // Which way to pay, by where the page runs: the WeChat browser → jsapi; another phone browser → h5
  // (WeChat's H5 cashier); a desktop → native (a QR code to scan with WeChat).
  var UA = navigator.userAgent || '';
  var IN_WECHAT = /MicroMessenger/i.test(UA);
  var MOBILE = /Mobi|Android|iPhone|iPad|iPod/i.test(UA);
  var CHANNEL_LABEL = { jsapi: '微信支付', h5: '手机浏览器支付（H5）', native: '扫码支付（电脑）' };
  function defaultChannel() { return IN_WECHAT ? 'jsapi' : MOBILE ? 'h5' : 'native'; }
  /** The ways this page can pay (jsapi only inside WeChat with a WeChat login). */
  function channels() {
    return ['jsapi', 'h5', 'native'].filter(function (c) { return c !== 'jsapi' || (IN_WECHAT && state.me && state.me.openid); });
  }
  /** "换一种方式支付": buttons for the other channels (each opens a new payment attempt). */
  function switchButtons(outTradeNo, current) {
    return '<div class="switch" id="switch-channel"><p class="muted">换一种方式支付</p>' + channels().filter(function (c) { return c !== current; }).map(function (c) {
      return '<button type="button" class="btn btn-ghost" data-channel="' + c + '" data-switch-order="' + esc(outTradeNo) + '">' + esc(CHANNEL_LABEL[c]) + '</button>';
    }).join(' ') + '</div>';
  }
  function bindSwitch(root) {
    root.querySelectorAll('[data-channel]').forEach(function (b) {
      b.onclick = function () { b.disabled = true; pay(b.getAttribute('data-switch-order'), b.getAttribute('data-channel')).then(function () { b.disabled = false; }); };
    });
  }

  function login() {
    var back = location.pathname + location.search + location.hash;
    location.href = '/auth/wechat/authorize?scope=snsapi_userinfo' + subMchidParam() + '&redirect=' + encodeURIComponent(back);
  }

  /**
   * The order is paid through another official account than the one this session logged in through
   * (WECHAT_ACCOUNT_MISMATCH: a sub-merchant's own): log in through that one and come back to this
   * page as that sub-merchant's storefront.
   */
  function loginThrough(loginUrl) {
    var target = new URL(loginUrl, location.origin);
    var sub = target.searchParams.get('subMchid');
    var here = new URL(location.href);
    if (sub) here.searchParams.set('subMchid', sub);
    target.searchParams.set('scope', 'snsapi_userinfo');
    target.searchParams.set('redirect', here.pathname + here.search + here.hash);
    location.href = target.pathname + target.search;
  }

  /** fetch + JSON; a 401 sends the shopper through WeChat login and back. */
  function api(path, options) {
    options = options || {};
    var headers = { Accept: 'application/json' };
    if (options.body !== undefined) headers['Content-Type'] = 'application/json';
    Object.assign(headers, options.headers || {});
    return fetch(path, {
      method: options.method || 'GET',
      credentials: 'same-origin',
      headers: headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body)
    }).then(function (res) {
      return res.text().then(function (text) {
        var data = text ? JSON.parse(text) : null;
        if (res.status === 401 && data && data.code === 'LOGIN_REQUIRED') { login(); throw new Error('login required'); }
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

  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      var s = document.createElement('script');
      s.src = src;
      s.onload = resolve;
      s.onerror = function () { reject(new Error('cannot load ' + src)); };
      document.head.appendChild(s);
    });
  }

  /** wx.config exactly once per page: configuring twice can make WeChat open the cashier twice. */
  function ensureWxConfig() {
    if (!state.wxReady) {
      var url = location.href.split('#')[0];
      state.wxReady = api('/jssdk/config?url=' + encodeURIComponent(url) + subMchidParam()).then(function (cfg) {
        return new Promise(function (resolve, reject) {
          var wx = window.wx;
          if (!wx) { reject(new Error('微信 JS-SDK 未加载，请在微信中打开')); return; }
          wx.config({ debug: false, appId: cfg.appId, timestamp: cfg.timestamp, nonceStr: cfg.nonceStr, signature: cfg.signature, jsApiList: cfg.jsApiList });
          wx.ready(resolve);
          wx.error(function (res) { reject(new Error('wx.config 失败：' + (res && res.errMsg))); });
        });
      });
      state.wxReady.catch(function () { state.wxReady = null; });
    }
    return state.wxReady;
  }

  function bridge() {
    if (window.WeixinJSBridge) return Promise.resolve(window.WeixinJSBridge);
    return new Promise(function (resolve, reject) {
      var timer = setTimeout(function () { reject(new Error('请在微信中打开本页面完成支付')); }, 3000);
      document.addEventListener('WeixinJSBridgeReady', function () { clearTimeout(timer); resolve(window.WeixinJSBridge); }, { once: true });
    });
  }

  /** Chinese words for the server's refusals, by code (its own messages are English, for developers). */
  var ERRORS = {
    ORDER_PAID: '该订单已支付，请勿重复支付。',
    ORDER_CLOSED: '该订单已关闭，请重新下单。',
    ORDER_EXPIRED: '该订单已超时关闭，请重新下单。',
    ORDER_NOT_PAYABLE: '该订单当前无法支付。',
    ORDER_NOT_FOUND: '找不到该订单。',
    ORDER_NOT_CANCELLABLE: '该订单已支付或已处理，不能取消；如需退款请联系客服。',
    OUT_OF_STOCK: '商品库存不足，请减少数量或稍后再试。',
    UNKNOWN_PRODUCT: '商品已下架或不存在，请刷新后重新选择。',
    PRODUCT_NOT_FOUND: '商品已下架或不存在，请刷新后重新选择。',
    QUANTITY_OVER_LIMIT: '单次购买数量超过上限，请减少数量。',
    ORDER_TOO_LARGE: '订单商品过多或金额过大，请分开下单。',
    TOO_MANY_OPEN_ORDERS: '你有太多未支付的订单，请先支付或取消后再下单。',
    TOO_MANY_RESERVED_UNITS: '你的未支付订单中该商品数量已达上限，请先支付或取消。',
    RATE_LIMITED: '操作太频繁，请稍后再试。',
    IDEMPOTENCY_KEY_REUSED: '订单重复提交，请刷新页面后重试。',
    CHANNEL_UNAVAILABLE: '当前登录方式不支持微信支付，请在微信中打开本页面。',
    CHANNEL_NEEDS_WECHAT: '请在微信中打开本页面完成支付，或换一种方式支付。',
    CHANNEL_NEEDS_MINIPROGRAM: '请在小程序中完成支付，或换一种方式支付。',
    WECHAT_ACCOUNT_MISMATCH: '该商品由另一家店铺的公众号收款，正在通过该公众号重新登录…',
    INVALID_CHANNEL: '不支持该支付方式，请换一种方式支付。',
    PAYMENT_IN_PROGRESS: '该订单正在支付中，请等待支付结果后再换其他方式。',
    CLIENT_IP_UNKNOWN: '无法发起 H5 支付，请换一种方式支付。',
    CROSS_SITE_REQUEST: '请求来源不正确，请刷新页面后重试。',
    VALIDATION_FAILED: '提交的内容有误，请刷新页面后重试。'
  };
  /** What the shopper reads: Chinese words for the code, else the server's message when it is Chinese. */
  function shopperMessage(error, fallback) {
    var message = String((error && error.message) || '');
    if (error && error.code && ERRORS[error.code]) return ERRORS[error.code];
    // Some answers are Chinese already (written for shoppers); product names do not make a message Chinese.
    if (/^[^A-Za-z]*[\u4e00-\u9fff]/.test(message) && !/[A-Za-z]{4,}/.test(message)) return message;
    if (error && error.status === 429) return ERRORS.RATE_LIMITED;
    if (!error || !error.status) return '网络异常，请检查网络后重试。';
    if (error.status >= 500) return fallback || '服务暂时不可用，请稍后重试。';
    return (fallback || '操作未成功') + '（' + (error.code || error.status) + '）';
  }
  function payMessage(error) {
    if (!error || !error.status || error.status >= 500) {
      if (error && error.code && ERRORS[error.code]) return ERRORS[error.code];
      return '微信支付暂时无法下单，请稍后重试。订单已保留，重试不会重复下单。';
    }
    return shopperMessage(error, '支付未能发起');
  }

  /**
   * Prepay, then the WeChat cashier. The bridge's "ok" is not proof: the result page asks the server.
   * Resolves to null once the cashier was opened, or to the message shown when the prepay failed (the
   * order stays payable: a retry pays the same order, it never places a new one).
   */
  function pay(outTradeNo, channel) {
    channel = channel || defaultChannel();
    return api('/orders/' + encodeURIComponent(outTradeNo) + '/pay', { method: 'POST', body: { channel: channel } })
      .then(function (params) {
        // H5: to WeChat's cashier, which comes back to the result page (?result=…) whether paid or not.
        if (params.channel === 'h5') { location.href = params.h5Url; return { handled: true }; }
        if (params.channel === 'native') { renderQr(outTradeNo, params.codeUrl); return { handled: true }; }
        return ensureWxConfig().then(bridge).then(function (jsBridge) {
          return new Promise(function (resolve) {
            jsBridge.invoke('getBrandWCPayRequest', params, function (res) { resolve(res || {}); });
          });
        });
      })
      .then(function (res) {
        if (res.handled) return null;
        var msg = String(res.err_msg || '');
        if (/:ok$/.test(msg)) { location.hash = '#/result/' + outTradeNo; return null; }
        if (/:cancel$/.test(msg)) { toast('已取消支付。订单已保留，可在“我的订单”中继续支付。', 3500); location.hash = '#/orders'; return null; }
        toast('支付失败：' + (res.err_desc || msg || '未知原因') + '。订单已保留，可稍后重试。', 4000);
        location.hash = '#/orders';
        return null;
      })
      .catch(function (error) {
        if (error.message === 'login required') return null;
        if (error.code === 'WECHAT_ACCOUNT_MISMATCH' && error.details && typeof error.details.loginUrl === 'string') {
          toast(ERRORS.WECHAT_ACCOUNT_MISMATCH, 2500);
          loginThrough(error.details.loginUrl);
          return null;
        }
        var message = payMessage(error);
        toast(message, 4000);
        return message;
      });
  }

  /** Native pay: the code_url as a QR code (rendered by the server with the qrcode library), a countdown, and polling. */
  function renderQr(outTradeNo, codeUrl) {
    clearTimers();
    setNav('orders');
    view.innerHTML = '<div class="card result" id="qr-pay" data-order="' + esc(outTradeNo) + '" data-code-url="' + esc(codeUrl) + '">' +
      '<h2>请用微信扫码支付</h2><img class="qr" id="qr" alt="支付二维码" width="220" height="220" src="/shop/qr.svg?code_url=' + encodeURIComponent(codeUrl) + '">' +
      '<p class="muted">订单 ' + esc(outTradeNo) + '</p><p class="countdown" id="qr-countdown"></p>' + switchButtons(outTradeNo, 'native') + '</div>';
    bindSwitch(view);
    function poll() {
      api('/orders/' + encodeURIComponent(outTradeNo)).then(function (o) {
        var el = document.getElementById('qr-countdown');
        if (!el) return;
        if (o.status !== 'NOTPAY') { location.hash = '#/result/' + outTradeNo; return; }
        el.textContent = countdown(o.expiresAt);
        state.timers.push(setTimeout(poll, 1500));
      }).catch(function (error) { if (error.message !== 'login required') toast(shopperMessage(error, '查询订单未成功')); });
    }
    poll();
  }

  /** A prepay that failed right after checkout: the message and a retry of the same order. */
  function renderPayRetry(outTradeNo, message) {
    view.innerHTML = '<div class="card result" id="pay-retry" data-order="' + esc(outTradeNo) + '"><div class="icon">' + icon('warn') + '</div>' +
      '<h2>支付未完成</h2><p class="muted" id="pay-retry-message">' + esc(message) + '</p><p class="muted">订单 ' + esc(outTradeNo) + '</p>' +
      '<p><a href="#/orders" class="btn btn-ghost">查看我的订单</a> <button type="button" class="btn btn-primary" id="retry-pay">重试支付</button></p></div>';
    var button = document.getElementById('retry-pay');
    button.onclick = function () {
      button.disabled = true;
      button.textContent = '正在重试…';
      pay(outTradeNo).then(function (failure) {
        button.disabled = false;
        button.textContent = '重试支付';
        if (failure) document.getElementById('pay-retry-message').textContent = failure;
      });
    };
  }

  // ------------------------------------------------------------------ views

  function setNav(name) {
    document.querySelectorAll('[data-nav]').forEach(function (a) { a.classList.toggle('active', a.getAttribute('data-nav') === name); });
  }

  function clearTimers() {
    state.timers.forEach(clearInterval);
    state.timers = [];
  }

  function cartTotal() {
    return state.products.reduce(function (sum, p) { return sum + (state.cart[p.id] || 0) * p.price; }, 0);
  }

  function renderShop() {
    setNav('shop');
    var cards = state.products.map(function (p) {
      var qty = state.cart[p.id] || 0;
      var soldOut = p.stock !== null && p.stock <= 0;
      var maxed = p.stock !== null && qty >= p.stock;
      var hue = (p.id * 67) % 360;
      var tile = p.imageUrl
        ? '<img class="tile" alt="" src="' + esc(p.imageUrl) + '">'
        : '<div class="tile" aria-hidden="true" data-hue="' + hue + '">' + esc(String(p.name).charAt(0)) + '</div>';
      return '<article class="card product" data-product="' + p.id + '">' + tile +
        '<h3>' + esc(p.name) + '</h3><p>' + esc(p.description || '') + '</p>' +
        '<div class="price">' + yuan(p.price) + '</div>' +
        '<div class="stock">' + (p.stock === null ? '库存充足' : soldOut ? '已售罄' : '剩余 ' + p.stock + ' 件') + '</div>' +
        '<div class="qty"><button type="button" data-dec="' + p.id + '" aria-label="减少"' + (qty ? '' : ' disabled') + '>−</button>' +
        '<span data-qty="' + p.id + '">' + qty + '</span>' +
        '<button type="button" data-inc="' + p.id + '" aria-label="增加"' + (soldOut || maxed || qty >= 99 ? ' disabled' : '') + '>+</button></div>' +
        '</article>';
    }).join('');
    var total = cartTotal();
    view.innerHTML = '<section class="grid">' + cards + '</section>' +
      '<div class="cartbar"><span class="muted">合计</span> <span class="total price" id="cart-total">' + yuan(total) + '</span>' +
      '<button class="btn btn-primary" id="checkout"' + (total ? '' : ' disabled') + '>去支付</button></div>';
    // The tile's colours through the CSSOM: the page's CSP allows no style attributes.
    view.querySelectorAll('.tile[data-hue]').forEach(function (t) {
      var hue = Number(t.getAttribute('data-hue'));
      t.style.background = 'linear-gradient(135deg,hsl(' + hue + ',70%,62%),hsl(' + ((hue + 40) % 360) + ',70%,48%))';
    });
    view.querySelectorAll('[data-inc]').forEach(function (b) { b.onclick = function () { change(b.getAttribute('data-inc'), 1); }; });
    view.querySelectorAll('[data-dec]').forEach(function (b) { b.onclick = function () { change(b.getAttribute('data-dec'), -1); }; });
    document.getElementById('checkout').onclick = checkout;
  }

  function change(id, delta) {
    state.cart[id] = Math.max(0, (state.cart[id] || 0) + delta);
    renderShop();
  }

  function checkout() {
    var items = Object.keys(state.cart).filter(function (id) { return state.cart[id] > 0; }).map(function (id) {
      return { productId: Number(id), quantity: state.cart[id] };
    });
    if (!items.length) return;
    var button = document.getElementById('checkout');
    button.disabled = true;
    var key = 'checkout-' + Date.now() + '-' + Math.random().toString(36).slice(2);
    api('/orders', { method: 'POST', body: { items: items }, headers: { 'Idempotency-Key': key } })
      .then(function (order) {
        state.cart = {};
        return pay(order.outTradeNo).then(function (failure) {
          if (failure) renderPayRetry(order.outTradeNo, failure);
        });
      })
      .catch(function (error) {
        if (error.message === 'login required') return;
        toast(shopperMessage(error, '下单未成功'), 3500);
        button.disabled = false;
        return loadProducts().then(renderShop);
      });
  }

  function countdown(expiresAt) {
    var left = Math.max(0, Math.floor((Date.parse(expiresAt) - Date.now()) / 1000));
    return left > 0 ? Math.floor(left / 60) + ' 分 ' + ('0' + (left % 60)).slice(-2) + ' 秒后自动关闭' : '即将关闭';
  }

  function renderOrders() {
    setNav('orders');
    return api('/orders?pageSize=50').then(function (page) {
      if (!page.items.length) { view.innerHTML = '<p class="muted center">还没有订单</p>'; return; }
      view.innerHTML = page.items.map(function (o) {
        var items = o.items.map(function (i) { return esc(i.name) + ' × ' + i.quantity; }).join('，');
        var unpaid = o.status === 'NOTPAY';
        var label = o.status === 'CLOSED' && CLOSE_REASON[o.closeReason] ? CLOSE_REASON[o.closeReason] : STATUS[o.status] || o.status;
        return '<article class="card order" data-order="' + esc(o.outTradeNo) + '" data-status="' + o.status + '"' + (o.closeReason ? ' data-close-reason="' + esc(o.closeReason) + '"' : '') + '>' +
          '<div class="row"><span class="muted">' + esc(o.outTradeNo) + '</span><span class="badge ' + o.status + (o.closeReason ? ' ' + esc(o.closeReason) : '') + '">' + esc(label) + '</span></div>' +
          '<div class="row muted small"><span class="ordered-at">下单时间 ' + esc(dateTime(o.createdAt)) + '</span>' +
          (o.status === 'CLOSED' && o.closedAt ? '<span>' + (o.closeReason === 'expired' ? '超时关闭于 ' : '关闭于 ') + esc(dateTime(o.closedAt)) + '</span>' : '') + '</div>' +
          '<div class="items">' + items + '</div>' +
          '<div class="row"><span class="price">' + yuan(o.total) + (o.refundedTotal ? ' <span class="muted">（已退 ' + yuan(o.refundedTotal) + '）</span>' : '') + '</span>' +
          (unpaid ? '<span class="countdown" data-expires="' + esc(o.expiresAt) + '">' + countdown(o.expiresAt) + '</span>' : '') + '</div>' +
          (unpaid ? '<div class="actions"><button class="btn btn-ghost" data-cancel="' + esc(o.outTradeNo) + '">取消订单</button>' +
            '<button class="btn btn-primary" data-pay="' + esc(o.outTradeNo) + '">继续支付</button></div>' : '') +
          '</article>';
      }).join('');
      view.querySelectorAll('[data-pay]').forEach(function (b) { b.onclick = function () { b.disabled = true; pay(b.getAttribute('data-pay')).then(function () { b.disabled = false; }); }; });
      view.querySelectorAll('[data-cancel]').forEach(function (b) {
        b.onclick = function () { confirmCancel(b); };
      });
      var tick = setInterval(function () {
        var expired = false;
        view.querySelectorAll('[data-expires]').forEach(function (el) {
          el.textContent = countdown(el.getAttribute('data-expires'));
          if (Date.parse(el.getAttribute('data-expires')) < Date.now() - 1500) expired = true;
        });
        if (expired) { clearTimers(); setTimeout(renderOrders, 1000); }
      }, 1000);
      state.timers.push(tick);
    });
  }

  /**
   * Cancelling cannot be undone: the order's actions turn into a confirmation (in the page, not a
   * browser dialog) until the shopper confirms or keeps the order.
   */
  function confirmCancel(button) {
    var no = button.getAttribute('data-cancel');
    var actions = button.parentNode;
    actions.classList.add('confirm');
    actions.innerHTML = '<span class="confirm-text">确定取消这个订单吗？取消后不能恢复，需重新下单。</span>' +
      '<button class="btn btn-ghost" data-keep="' + esc(no) + '">不取消</button>' +
      '<button class="btn btn-danger" data-confirm-cancel="' + esc(no) + '">确定取消</button>';
    actions.querySelector('[data-keep]').onclick = function () { renderOrders(); };
    var confirmButton = actions.querySelector('[data-confirm-cancel]');
    confirmButton.onclick = function () {
      confirmButton.disabled = true;
      api('/orders/' + encodeURIComponent(no) + '/cancel', { method: 'POST' })
        .then(function () { toast('订单已取消'); return renderOrders(); })
        .catch(function (error) {
          if (error.message === 'login required') return;
          toast(shopperMessage(error, '取消未成功'));
          return renderOrders();
        });
    };
  }

  /** After the cashier: poll the server until it says paid, closed or failed. */
  function renderResult(outTradeNo) {
    setNav('orders');
    view.innerHTML = '<div class="card result" id="result"><div class="icon">' + icon('wait') + '</div><h2>正在确认支付结果…</h2><p class="muted">' + esc(outTradeNo) + '</p></div>';
    var started = Date.now();
    function show(icon, title, text, status) {
      view.innerHTML = '<div class="card result" id="result" data-status="' + status + '"><div class="icon">' + icon + '</div><h2>' + title + '</h2>' +
        '<p class="muted">' + text + '</p><p><a href="#/orders" class="btn btn-ghost">查看我的订单</a> <a href="#/" class="btn btn-primary">继续购物</a></p></div>';
    }
    function poll() {
      api('/orders/' + encodeURIComponent(outTradeNo)).then(function (o) {
        if (o.status === 'PAID' || o.status === 'REFUNDED') return show(icon('ok'), '支付成功', '订单 ' + esc(o.outTradeNo) + '，实付 ' + yuan(o.total), 'PAID');
        if (o.status === 'CLOSED') return show(icon('closed'), o.closeReason === 'cancelled' ? '订单已取消' : '订单已关闭', o.closeReason === 'cancelled' ? '你已取消该订单。' : '订单超时未支付，已自动关闭。', 'CLOSED');
        if (o.status === 'ANOMALY' || o.status === 'PAID_AFTER_CLOSE') return show(icon('warn'), '支付异常', '我们会尽快处理，款项不会丢失。', o.status);
        if (Date.now() - started > (o.status === 'NOTPAY' ? 8000 : 30000)) {
          show(icon('wait'), '暂未确认到支付', '如已付款，请稍后在“我的订单”中查看；未付款可继续支付。', 'PENDING');
          if (o.status === 'NOTPAY') {
            view.querySelector('#result').insertAdjacentHTML('beforeend', switchButtons(outTradeNo, null));
            bindSwitch(view);
          }
          return;
        }
        state.timers.push(setTimeout(poll, 800));
      }).catch(function (error) { if (error.message !== 'login required') toast(shopperMessage(error, '查询订单未成功')); });
    }
    poll();
  }

  function loadProducts() {
    return api('/products').then(function (products) { state.products = products; });
  }

  function route() {
    clearTimers();
    // Back from WeChat's H5 cashier: /?result=<order> (it returns whether or not the shopper paid; the page asks the server).
    var back = /[?&]result=([0-9A-Za-z_\-|*]+)/.exec(location.search);
    if (back) {
      history.replaceState(null, '', '/#/result/' + back[1]);
      return renderResult(back[1]);
    }
    var hash = location.hash || '#/';
    var result = /^#\/result\/([0-9A-Za-z_\-|*]+)$/.exec(hash);
    if (result) return renderResult(result[1]);
    if (hash === '#/orders') return renderOrders();
    return loadProducts().then(renderShop);
  }

  function logout() {
    api('/auth/logout', { method: 'POST' }).then(login, login);
  }

  function boot() {
    api('/shop/config')
      .then(function (config) {
        state.config = config;
        document.getElementById('mode').textContent = config.mode === 'sandbox' ? '沙箱模式：微信由本地沙箱模拟' : '正式环境';
        // Not logged in: inside WeChat straight to WeChat's authorize page (the sandbox's consent page in
        // sandbox mode); in another browser a guest session, to pay by H5 or by QR code.
        if (!config.user && IN_WECHAT) { login(); throw new Error('login required'); }
        if (!config.user) return api('/auth/guest', { method: 'POST' }).then(function () { return api('/shop/config'); });
        return config;
      })
      .then(function (config) {
        state.me = config.user || {};
        return loadScript(config.jweixin);
      })
      .then(function () {
        var me = state.me;
        document.getElementById('me').innerHTML = (me.avatarUrl ? '<img alt="" src="' + esc(me.avatarUrl) + '">' : '') +
          '<span id="nickname">' + esc(me.nickname || me.openid || '访客') + '</span> <a href="#" id="logout" class="muted">退出</a>';
        document.getElementById('logout').onclick = function (event) { event.preventDefault(); logout(); };
        window.addEventListener('hashchange', route);
        return route();
      })
      .catch(function (error) {
        if (error.message !== 'login required') view.innerHTML = '<p class="muted center">' + esc(shopperMessage(error, '页面加载失败，请刷新重试')) + '</p>';
      });
  }

  boot();
})();
