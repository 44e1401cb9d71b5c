import { Body, Controller, Get, Header, Options, Post, Query, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { createHash } from 'node:crypto';
import type { Request, Response } from 'express';
import { escapeHtml, page } from './pages/layout';
import { CASHIER_JS, SANDBOX_CSS } from './pages/assets';
import { cspSource, widenCsp } from './pages/csp';
import { JWEIXIN_JS } from './pages/jweixin';
import { publicKeyOf, verifyBase64Signature } from './sandbox-crypto';
import { SandboxHttp } from './sandbox-http';
import { SandboxMpService } from './sandbox-mp.service';
import { PAY_PROBLEM_STATUS, SandboxPayService } from './sandbox-pay.service';
import { SandboxSettings, hostAllowed, pageUnderPayDirectory } from './sandbox.settings';
import { sandboxApiV2Key } from './keystore';
import { sandboxInvokeSignType, sandboxV2PaySignProblem } from './sandbox-v2-wire';
import { yuan } from './bills/trade-bill';

type Json = Record<string, unknown>;

const BUSY = '系统繁忙，请稍后再试';
const TOO_FREQUENT = '操作过于频繁，请稍后再试';

function cors(req: Request, res: Response): void {
  const origin = req.headers.origin;
  if (origin) {
    res.setHeader('Access-Control-Allow-Origin', origin);
    res.setHeader('Access-Control-Allow-Credentials', 'true');
    res.setHeader('Vary', 'Origin');
  }
}

/**
 * What happens inside the WeChat browser: the JS bridge shim (/sandbox/jweixin.js), its checks of
 * wx.config and getBrandWCPayRequest, and the cashier sheet where the user pays, cancels or fails.
 */
@ApiExcludeController()
@Controller('sandbox')
export class SandboxCashierController {
  private readonly merchantKey;

  constructor(
    private readonly settings: SandboxSettings,
    private readonly pay: SandboxPayService,
    private readonly mp: SandboxMpService,
    private readonly http: SandboxHttp,
  ) {
    this.merchantKey = publicKeyOf(settings.keystore.merchant.publicKeyPem);
  }

  @Get('jweixin.js')
  @Header('Content-Type', 'application/javascript; charset=utf-8')
  @Header('Cache-Control', 'no-cache')
  jweixin(): string {
    return JWEIXIN_JS;
  }

  @Get('cashier.js')
  @Header('Content-Type', 'application/javascript; charset=utf-8')
  @Header('Cache-Control', 'no-cache')
  cashierJs(): string {
    return CASHIER_JS;
  }

  @Get('sandbox.css')
  @Header('Content-Type', 'text/css; charset=utf-8')
  @Header('Cache-Control', 'no-cache')
  css(): string {
    return SANDBOX_CSS;
  }

  @Options(['jsbridge/config', 'jsbridge/pay', 'pay'])
  preflight(@Req() req: Request, @Res() res: Response) {
    cors(req, res);
    res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
    res.setHeader('Access-Control-Allow-Headers', 'Content-Type');
    res.status(204).end();
  }

  /** wx.config: JS-safe domain, appId, and signature against the current jsapi_ticket. */
  @Post('jsbridge/config')
  config(@Body() body: Json, @Req() req: Request, @Res() res: Response) {
    cors(req, res);
    const faulted = this.http.fault('jsbridge/config', res, (kind) =>
      res.status(Number(kind)).json({ ok: false, errMsg: kind === '429' ? 'config:fail, frequency limited' : 'config:fail, system error' }),
    );
    if (faulted) return;
    res.status(200).json(this.checkConfig(body ?? {}));
  }

  private checkConfig(body: Json): { ok: boolean; errMsg: string } {
    const url = String(body.url ?? '');
    // The merchant's own official account, or the sub-merchant's (its own jsapi_ticket).
    const account = this.mp.accountOf(typeof body.appId === 'string' ? body.appId : undefined);
    if (!account) return { ok: false, errMsg: 'config:invalid appid' };
    if (!hostAllowed(url, this.settings.jsDomains)) return { ok: false, errMsg: 'config:invalid url domain' };
    const ticket = this.mp.currentTicket(account.appid);
    const string1 = `jsapi_ticket=${ticket}&noncestr=${body.nonceStr}&timestamp=${body.timestamp}&url=${url.split('#')[0]}`;
    const expected = createHash('sha1').update(string1, 'utf8').digest('hex');
    if (!ticket || body.signature !== expected) return { ok: false, errMsg: 'config:invalid signature' };
    return { ok: true, errMsg: 'config:ok' };
  }

  /** getBrandWCPayRequest: payment directory, appId, paySign, prepay_id — then the cashier may open. */
  @Post('jsbridge/pay')
  payCheck(@Body() body: Json, @Req() req: Request, @Res() res: Response) {
    cors(req, res);
    const faulted = this.http.fault('jsbridge/pay', res, (kind) => res.status(Number(kind)).json({ ok: false, errDesc: kind === '429' ? TOO_FREQUENT : BUSY }));
    if (faulted) return;
    res.status(200).json(this.checkPay(body ?? {}));
  }

  private checkPay(body: Json): { ok: true; prepayId: string } | { ok: false; errDesc: string } {
    const url = String(body.url ?? '');
    const p = (body.params ?? {}) as Record<string, unknown>;
    if (!pageUnderPayDirectory(url, this.settings.payDirectories)) {
      return { ok: false, errDesc: `当前页面的URL未注册：${url}` };
    }
    if (p.appId !== this.settings.keystore.appid && !this.settings.subAccount(p.appId)) return { ok: false, errDesc: 'appId 与商户号绑定的 appid 不一致' };
    for (const field of ['timeStamp', 'nonceStr', 'package', 'paySign']) {
      if (typeof p[field] !== 'string' || !p[field]) return { ok: false, errDesc: `缺少参数 ${field}（必须是字符串）` };
    }
    const v2Problem = sandboxV2PaySignProblem(p, String(p.appId), sandboxApiV2Key(this.settings.keystore));
    if (v2Problem === 'rsa') {
      const message = Buffer.from(`${p.appId}\n${p.timeStamp}\n${p.nonceStr}\n${p.package}\n`, 'utf8');
      if (!verifyBase64Signature(message, String(p.paySign), this.merchantKey)) return { ok: false, errDesc: '支付验证签名失败' };
    } else if (v2Problem) {
      return { ok: false, errDesc: v2Problem };
    }
    const prepayId = /^prepay_id=(.+)$/.exec(String(p.package))?.[1];
    const tx = prepayId ? this.pay.prepayInfo(prepayId) : undefined;
    if (!prepayId || !tx) return { ok: false, errDesc: 'prepay_id 不存在' };
    // paySign is over the appid the payer was named under at prepay (sub_appid for a sub_openid).
    if (tx.appid && p.appId !== tx.appid) return { ok: false, errDesc: 'appId 与下单时的 appid 不一致' };
    if (p.signType !== sandboxInvokeSignType(tx)) return { ok: false, errDesc: `signType 与下单时不一致（应为 ${sandboxInvokeSignType(tx)}）` };
    if (!this.pay.prepayValid(tx, prepayId)) return { ok: false, errDesc: 'prepay_id 已过期' };
    return { ok: true, prepayId };
  }

  @Get('cashier')
  cashier(@Query('prepay_id') prepayId: string | undefined, @Query('bridge') bridge: string | undefined, @Req() req: Request, @Res() res: Response) {
    const tx = prepayId ? this.pay.prepayInfo(prepayId) : undefined;
    if (!prepayId || !tx) {
      res.status(404).type('html').send(page('微信支付', `<div class="bar">微信支付<span class="badge">沙箱</span></div><div class="card error">prepay_id 不存在</div>`));
      return;
    }
    const cookieOpenid = (req as Request & { cookies?: Record<string, string> }).cookies?.sandbox_openid;
    const payer = cookieOpenid || tx.openid;
    const merchant = `沙箱商户 ${this.settings.keystore.mchid}`;
    // jweixin.js opens this sheet in a frame over the merchant's page: pages in a registered JSAPI
    // payment directory may frame it (no other site may: clickjacking the pay button).
    widenCsp(res, { 'frame-ancestors': ["'self'", ...this.settings.payDirectories.map((d) => cspSource(d, true)).filter((s): s is string => !!s)] });
    res.removeHeader('X-Frame-Options');
    res.type('html').send(
      page(
        '微信支付',
        `<div class="bar">微信支付<span class="badge">沙箱</span></div>
<div class="card center" id="cashier" data-prepay-id="${escapeHtml(prepayId)}" data-openid="${escapeHtml(payer)}" data-bridge="${bridge ? '1' : '0'}"><div class="muted">${escapeHtml(merchant)}</div>
<div class="amount" id="amount">¥${yuan(tx.total)}</div><div>${escapeHtml(tx.description)}</div>
<div class="muted">订单号 <code>${escapeHtml(tx.outTradeNo)}</code></div>
<div class="muted">付款用户 <code>${escapeHtml(payer)}</code></div></div>
<div class="card"><button class="btn btn-primary" id="pay">确认支付</button>
<button class="btn btn-default" id="cancel">取消</button>
<button class="btn btn-warn" id="fail">模拟支付失败</button>
<p id="status" class="muted center" role="status"></p></div>
<script src="/sandbox/cashier.js"></script>`,
      ),
    );
  }

  /**
   * Pays a prepay as the given user (the cashier's buttons, and tests): body
   * `{ prepay_id, openid, result?: success|cancel|fail }`. The payer must be the prepay's openid, as
   * in WeChat where only the user the order was made for can pay it. 200 with result ok / cancel /
   * fail (the user's choice); 400 without prepay_id or openid; 403 for another payer; 404 for an
   * unknown prepay_id; 409 when it cannot be paid (expired prepay_id, paid, closed, PAYERROR).
   */
  @Post('pay')
  payNow(@Body() body: Json, @Req() req: Request, @Res() res: Response) {
    cors(req, res);
    const faulted = this.http.fault('sandbox/pay', res, (kind) =>
      res.status(Number(kind)).json({ result: 'fail', reason: kind === '429' ? TOO_FREQUENT : BUSY }),
    );
    if (faulted) return;
    body ??= {};
    const prepayId = typeof body.prepay_id === 'string' && body.prepay_id ? body.prepay_id : undefined;
    const openid = typeof body.openid === 'string' && body.openid ? body.openid : undefined;
    const outcome = body.result === 'cancel' || body.result === 'fail' ? body.result : 'success';
    if (!prepayId || !openid) {
      res.status(400).json({ result: 'fail', reason: 'prepay_id and openid are required' });
      return;
    }
    const answer = this.pay.pay(prepayId, openid, outcome);
    res.status(answer.problem ? PAY_PROBLEM_STATUS[answer.problem] : 200).json({
      result: answer.result,
      reason: answer.reason,
      outTradeNo: answer.transaction?.outTradeNo,
      transactionId: answer.result === 'ok' ? answer.transaction?.transactionId : undefined,
    });
  }
}
