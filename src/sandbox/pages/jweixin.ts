/**
 * The sandbox's stand-in for WeChat's JS-SDK (jweixin-1.6.0.js) and for the WeixinJSBridge that the
 * WeChat browser injects. It enforces what WeChat enforces — wx.config signature and JS-safe domain,
 * the JSAPI payment directory, paySign — by asking the sandbox, then opens the sandbox cashier and
 * answers with WeChat's err_msg values.
 */
export const JWEIXIN_JS = String.raw`/* wechat-h5-pay sandbox: WeChat JS-SDK + WeixinJSBridge stand-in */
(function () {
  'use strict';
  if (window.__wxSandbox) return;
  var script = document.currentScript;
  var base = script ? new URL(script.src).origin + '/sandbox' : location.origin + '/sandbox';
  var state = { configCount: 0, status: 'idle', appId: null, readyCallbacks: [], errorCallbacks: [], error: null, invokes: 0 };
  window.__wxSandbox = state;

  function pageUrl() { return location.href.split('#')[0]; }
  function post(path, body) {
    return fetch(base + path, {
      method: 'POST', credentials: 'include',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body)
    }).then(function (r) { return r.json(); });
  }

  function openCashier(prepayId, done) {
    var overlay = document.createElement('div');
    overlay.id = 'wx-sandbox-cashier';
    // Styles through the CSSOM, not a style attribute: the merchant's page may forbid inline styles (CSP).
    overlay.style.cssText = 'position:fixed;inset:0;z-index:2147483647;background:rgba(0,0,0,.5);display:flex;align-items:flex-end;justify-content:center';
    var frame = document.createElement('iframe');
    frame.src = base + '/cashier?bridge=1&prepay_id=' + encodeURIComponent(prepayId);
    frame.title = 'WeChat Pay (sandbox)';
    frame.style.cssText = 'width:100%;max-width:480px;height:75%;border:0;border-radius:12px 12px 0 0;background:#ededed';
    overlay.appendChild(frame);
    document.body.appendChild(overlay);
    function onMessage(event) {
      var data = event.data || {};
      if (data.type !== 'wx-sandbox-pay-result' || event.source !== frame.contentWindow) return;
      window.removeEventListener('message', onMessage);
      overlay.parentNode && overlay.parentNode.removeChild(overlay);
      done(data);
    }
    window.addEventListener('message', onMessage);
  }

  function requestPayment(params, cb) {
    state.invokes++;
    post('/jsbridge/pay', { url: pageUrl(), params: params || {} }).then(function (check) {
      if (!check.ok) { cb({ err_msg: 'get_brand_wcpay_request:fail', err_desc: check.errDesc }); return; }
      openCashier(check.prepayId, function (result) {
        cb({ err_msg: 'get_brand_wcpay_request:' + result.result, err_desc: result.reason || '' });
      });
    }, function (error) {
      cb({ err_msg: 'get_brand_wcpay_request:fail', err_desc: String(error) });
    });
  }

  window.WeixinJSBridge = {
    invoke: function (name, params, cb) {
      cb = cb || function () {};
      if (name === 'getBrandWCPayRequest') return requestPayment(params, cb);
      cb({ err_msg: name + ':fail (not simulated by the sandbox)' });
    },
    on: function () {},
    call: function () {}
  };

  function settle() {
    var cbs = state.status === 'ready' ? state.readyCallbacks : state.errorCallbacks;
    state.readyCallbacks = []; state.errorCallbacks = [];
    cbs.forEach(function (fn) { try { state.status === 'ready' ? fn() : fn(state.error); } catch (e) { setTimeout(function () { throw e; }); } });
  }

  window.wx = {
    config: function (options) {
      state.configCount++;
      if (state.configCount > 1) {
        console.error('[wx sandbox] wx.config was called ' + state.configCount + ' times on this page: real WeChat may then open the cashier more than once.');
      }
      state.status = 'pending';
      state.appId = options && options.appId;
      post('/jsbridge/config', {
        url: pageUrl(), appId: options.appId, timestamp: options.timestamp, nonceStr: options.nonceStr,
        signature: options.signature, jsApiList: options.jsApiList || []
      }).then(function (result) {
        if (result.ok) { state.status = 'ready'; } else { state.status = 'error'; state.error = { errMsg: result.errMsg }; }
        if (options.debug) alert(result.ok ? 'config:ok' : result.errMsg);
        settle();
      }, function (error) { state.status = 'error'; state.error = { errMsg: 'config:fail ' + error }; settle(); });
    },
    ready: function (fn) { state.readyCallbacks.push(fn); if (state.status === 'ready' || state.status === 'error') settle(); },
    error: function (fn) { state.errorCallbacks.push(fn); if (state.status === 'error') settle(); },
    checkJsApi: function (o) { o && o.success && o.success({ checkResult: {}, errMsg: 'checkJsApi:ok' }); },
    chooseWXPay: function (o) {
      o = o || {};
      function finish(res) {
        var suffix = res.err_msg.split(':')[1];
        var out = { errMsg: 'chooseWXPay:' + suffix, errDesc: res.err_desc };
        if (suffix === 'ok') o.success && o.success(out);
        else if (suffix === 'cancel') (o.cancel || o.fail || function () {})(out);
        else o.fail && o.fail(out);
        o.complete && o.complete(out);
      }
      if (state.status !== 'ready') { finish({ err_msg: 'get_brand_wcpay_request:fail', err_desc: 'wx.config is not ready (' + state.status + ')' }); return; }
      requestPayment({ appId: state.appId, timeStamp: o.timestamp, nonceStr: o.nonceStr, package: o.package, signType: o.signType, paySign: o.paySign }, finish);
    }
  };

  setTimeout(function () { document.dispatchEvent(new Event('WeixinJSBridgeReady')); }, 0);
})();
`;
