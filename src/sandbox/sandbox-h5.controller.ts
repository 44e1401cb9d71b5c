import { Body, Controller, Get, Post, Query, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { yuan } from './bills/trade-bill';
import { cspSource, widenCsp } from './pages/csp';
import { escapeHtml, page } from './pages/layout';
import { DEFAULT_SANDBOX_PAYER, SandboxPayService } from './sandbox-pay.service';
import { SandboxMpService } from './sandbox-mp.service';
import { SandboxSettings, hostAllowed } from './sandbox.settings';

type Json = Record<string, unknown>;

/** WeChat's page when an H5 payment is opened from outside the registered H5 payment domains (or without a Referer). */
const BAD_MERCHANT_PARAMS = '商家参数格式有误，请联系商家解决';

const bar = '<div class="bar">微信支付<span class="badge">沙箱</span></div>';

/** An http(s) redirect_url, or undefined. */
function redirectTarget(raw: unknown): string | undefined {
  if (typeof raw !== 'string' || !raw) return undefined;
  try {
    const url = new URL(raw);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.toString() : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What a shopper outside WeChat sees: the H5 (MWEB) cashier behind h5_url, and the "scan" of a Native
 * code_url (a tester's stand-in for the WeChat app scanning the QR code). Plain HTML forms, no inline
 * script or style (CSP default-src 'self').
 */
@ApiExcludeController()
@Controller('sandbox')
export class SandboxH5Controller {
  constructor(
    private readonly settings: SandboxSettings,
    private readonly pay: SandboxPayService,
    private readonly mp: SandboxMpService,
  ) {}

  /**
   * h5_url (+ &redirect_url=…): WeChat checks that the page that sent the shopper here is under a
   * registered H5 payment domain (the Referer) — outside, or without a Referer, it shows
   * 「商家参数格式有误」 — and that the link is still valid (5 minutes).
   */
  @Get('h5pay')
  cashier(@Query() query: Json, @Req() req: Request, @Res() res: Response) {
    const prepayId = typeof query.prepay_id === 'string' ? query.prepay_id : '';
    const referer = req.headers.referer ?? '';
    if (!referer || !hostAllowed(referer, this.settings.h5Domains)) {
      const why = referer ? `当前页面的 Referer（${referer}）不在商户登记的 H5 支付域名内` : '请求没有 Referer（请从商户页面跳转）';
      return this.error(res, 400, BAD_MERCHANT_PARAMS, why);
    }
    const tx = prepayId ? this.pay.prepayInfo(prepayId) : undefined;
    if (!tx || (tx.tradeType ?? 'JSAPI') !== 'MWEB') return this.error(res, 404, BAD_MERCHANT_PARAMS, 'prepay_id 不存在');
    if (!this.pay.prepayValid(tx, prepayId)) return this.error(res, 409, '支付链接已失效', 'h5_url 有效期为 5 分钟，请返回商户页面重新发起支付');
    const redirect = redirectTarget(query.redirect_url);
    const users = this.mp.listUsers().slice(-5);
    const payers = [DEFAULT_SANDBOX_PAYER, ...users.map((u) => u.openid).filter((o) => o !== DEFAULT_SANDBOX_PAYER)];
    const hidden = `<input type="hidden" name="prepay_id" value="${escapeHtml(prepayId)}">${redirect ? `<input type="hidden" name="redirect_url" value="${escapeHtml(redirect)}">` : ''}`;
    const button = (result: string, label: string, cls: string) =>
      `<button class="btn ${cls}" type="submit" name="result" value="${result}" data-result="${result}">${label}</button>`;
    // The form posts here, then the browser is sent on to redirect_url: form-action must admit that origin.
    const target = redirect ? cspSource(redirect) : undefined;
    if (target) widenCsp(res, { 'form-action': ["'self'", target] });
    res.type('html').send(
      page(
        '微信支付',
        `${bar}
<div class="card center"><div class="muted">沙箱商户 ${escapeHtml(this.settings.keystore.mchid)}</div>
<div class="amount">¥${yuan(tx.total)}</div><div>${escapeHtml(tx.description)}</div>
<div class="muted">订单号 <code>${escapeHtml(tx.outTradeNo)}</code></div></div>
<form class="card" method="post" action="/sandbox/h5pay">${hidden}
<label class="muted" for="openid">付款用户（测试用户 openid）</label>
<input id="openid" name="openid" list="payers" value="${escapeHtml(payers[0])}">
<datalist id="payers">${payers.map((o) => `<option value="${escapeHtml(o)}">`).join('')}</datalist>
${button('success', '确认支付', 'btn-primary')}${button('cancel', '取消支付', 'btn-default')}${button('fail', '模拟支付失败', 'btn-warn')}
</form>`,
      ),
    );
  }

  /** The H5 cashier's buttons: pays (or not), then sends the browser to redirect_url whatever happened, as WeChat does. */
  @Post('h5pay')
  h5Pay(@Body() body: Json, @Res() res: Response) {
    const prepayId = typeof body?.prepay_id === 'string' ? body.prepay_id : '';
    const openid = typeof body?.openid === 'string' && body.openid.trim() ? body.openid.trim() : DEFAULT_SANDBOX_PAYER;
    const outcome = body?.result === 'cancel' || body?.result === 'fail' ? body.result : 'success';
    const tx = prepayId ? this.pay.prepayInfo(prepayId) : undefined;
    if (!tx || (tx.tradeType ?? 'JSAPI') !== 'MWEB') return this.error(res, 404, BAD_MERCHANT_PARAMS, 'prepay_id 不存在');
    const answer = this.pay.pay(prepayId, openid, outcome);
    const redirect = redirectTarget(body?.redirect_url);
    if (redirect) return res.redirect(303, redirect);
    const text = answer.result === 'ok' ? '支付成功' : answer.result === 'cancel' ? '已取消支付' : `支付失败：${answer.reason ?? ''}`;
    res.status(answer.problem ? 409 : 200).type('html').send(page('微信支付', `${bar}<div class="card center" role="status">${escapeHtml(text)}</div>`));
  }

  /** "Scanning" a Native code_url with the WeChat app: pick a test user and pay. */
  @Get('scan')
  scan(@Query('code_url') codeUrl: string | undefined, @Res() res: Response) {
    const token = codeUrl ? SandboxPayService.codeToken(codeUrl) : undefined;
    const tx = token ? this.pay.prepayInfo(token) : undefined;
    if (!token || !tx) return this.error(res, 404, '二维码无效', 'code_url 应为 weixin://wxpay/bizpayurl?pr=…，且由本沙箱下单得到');
    if (!this.pay.prepayValid(tx, token)) return this.error(res, 409, '二维码已过期', 'code_url 有效期为 2 小时');
    const users = this.mp.listUsers().slice(-5);
    const payers = [DEFAULT_SANDBOX_PAYER, ...users.map((u) => u.openid).filter((o) => o !== DEFAULT_SANDBOX_PAYER)];
    res.type('html').send(
      page(
        '微信支付',
        `${bar}
<div class="card center"><div class="muted">扫码支付 · 沙箱商户 ${escapeHtml(this.settings.keystore.mchid)}</div>
<div class="amount">¥${yuan(tx.total)}</div><div>${escapeHtml(tx.description)}</div>
<div class="muted">订单号 <code>${escapeHtml(tx.outTradeNo)}</code></div></div>
<form class="card" method="post" action="/sandbox/scan"><input type="hidden" name="code_url" value="${escapeHtml(codeUrl!)}">
<label class="muted" for="openid">扫码用户（测试用户 openid）</label>
<input id="openid" name="openid" list="payers" value="${escapeHtml(payers[0])}">
<datalist id="payers">${payers.map((o) => `<option value="${escapeHtml(o)}">`).join('')}</datalist>
<button class="btn btn-primary" type="submit" name="result" value="success">确认支付</button>
<button class="btn btn-default" type="submit" name="result" value="cancel">取消</button>
</form>`,
      ),
    );
  }

  @Post('scan')
  scanPay(@Body() body: Json, @Res() res: Response) {
    const codeUrl = typeof body?.code_url === 'string' ? body.code_url : '';
    const token = SandboxPayService.codeToken(codeUrl);
    if (!token) return this.error(res, 400, '二维码无效', 'code_url 应为 weixin://wxpay/bizpayurl?pr=…');
    const openid = typeof body?.openid === 'string' && body.openid.trim() ? body.openid.trim() : DEFAULT_SANDBOX_PAYER;
    const answer = this.pay.pay(token, openid, body?.result === 'cancel' ? 'cancel' : 'success');
    const text = answer.result === 'ok' ? '支付成功' : answer.result === 'cancel' ? '已取消支付' : `支付失败：${answer.reason ?? ''}`;
    res
      .status(answer.problem ? (answer.problem === 'NOT_FOUND' ? 404 : 409) : 200)
      .type('html')
      .send(page('微信支付', `${bar}<div class="card center" role="status" id="status">${escapeHtml(text)}</div>`));
  }

  private error(res: Response, status: number, title: string, detail: string): void {
    res.status(status).type('html').send(page('微信支付', `${bar}<div class="card"><p class="error">${escapeHtml(title)}</p><p class="muted">${escapeHtml(detail)}</p></div>`));
  }
}
