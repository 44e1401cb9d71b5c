import { Body, Controller, Get, HttpCode, Param, Patch, Post, Query, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { SandboxControlError, SandboxPayError } from './sandbox-errors';
import { ALL_SANDBOX_ENDPOINTS, FaultKind, SANDBOX_ENDPOINTS, SandboxFaults, isSandboxEndpoint } from './sandbox-faults';
import { SandboxClock } from './sandbox-clock';
import { beijingTime } from './sandbox-crypto';
import { SandboxControlTokenGuard } from './sandbox-control-token.guard';
import { SandboxMpService } from './sandbox-mp.service';
import { SandboxNotifier, Tamper } from './sandbox-notifier.service';
import { SandboxPayService } from './sandbox-pay.service';
import { SandboxBillsService } from './sandbox-bills.service';
import { SandboxRefundsService } from './sandbox-refunds.service';
import { SandboxSecapiServer } from './sandbox-secapi.server';
import { SandboxSettings } from './sandbox.settings';
import { SandboxState } from './sandbox.state';

type Json = Record<string, unknown>;

function bad(res: Response, message: string) {
  res.status(400);
  return { statusCode: 400, error: 'Bad Request', message };
}

function targetOf(query: Json): string | undefined {
  if (typeof query.target === 'string') return query.target;
  if (typeof query.outTradeNo === 'string') return `transaction:${query.outTradeNo}`;
  if (typeof query.outRefundNo === 'string') return `refund:${query.outRefundNo}`;
  return undefined;
}

/**
 * Test controls of the sandbox (never present in live mode): call counts, fault injection,
 * programmatic payment, notification replay/tampering/dropping, clock shifts, data injection, reset.
 * Open unless SANDBOX_CONTROL_TOKEN is set (then a bearer token is required).
 */
@ApiTags('sandbox control')
@ApiBearerAuth()
@UseGuards(SandboxControlTokenGuard)
@Controller('sandbox/control')
export class SandboxControlController {
  constructor(
    private readonly faults: SandboxFaults,
    private readonly notifier: SandboxNotifier,
    private readonly pay: SandboxPayService,
    private readonly refunds: SandboxRefundsService,
    private readonly bills: SandboxBillsService,
    private readonly mp: SandboxMpService,
    private readonly clock: SandboxClock,
    private readonly state: SandboxState,
    private readonly settings: SandboxSettings,
    private readonly secapi: SandboxSecapiServer,
  ) {}

  @Get('merchant')
  @ApiOperation({ summary: 'Who the sandbox merchant is (no secrets)' })
  merchant() {
    const ks = this.settings.keystore;
    return {
      appid: ks.appid,
      mchid: ks.mchid,
      merchantCertSerial: ks.merchant.certSerial,
      platformCertSerial: ks.platform.serial,
      publicKeyId: ks.publicKey.id,
      signMode: this.settings.signMode,
      timeScale: this.settings.timeScale,
      oauthDomains: this.settings.oauthDomains,
      jsDomains: this.settings.jsDomains,
      payDirectories: this.settings.payDirectories,
      // As a service provider (服务商): what it may call, and the sub-merchants bound to it (SANDBOX_SUB_MERCHANTS).
      merchantKind: this.settings.merchantKind,
      subMchids: this.settings.subMchids,
      /** The mutual-TLS port's base (/secapi/…, /pay/downloadfundflow need the merchant certificate there). */
      secapiBase: `${this.secapi.origin}/sandbox`,
    };
  }

  @Get('sub-merchants')
  @ApiOperation({ summary: 'The sub-merchants bound to the merchant as a provider, with the appids of their own official accounts (no secrets)' })
  subMerchants() {
    return this.settings.subMerchantAccounts();
  }

  @Post('sub-merchants/:subMchid/official-account')
  @HttpCode(200)
  @ApiOperation({ summary: "Register an official account ({ appid, appsecret }) and bind it to a sub-merchant as its sub_appid (服务商平台 → 关联 APPID)" })
  bindSubOfficialAccount(@Param('subMchid') subMchid: string, @Body() body: Json, @Res({ passthrough: true }) res: Response) {
    const appid = typeof body.appid === 'string' ? body.appid : '';
    const appsecret = typeof body.appsecret === 'string' ? body.appsecret : '';
    if (!/^wx[0-9a-zA-Z]{16}$/.test(appid)) return bad(res, 'appid must be wx followed by 16 letters or digits');
    if (!/^[0-9a-zA-Z]{32}$/.test(appsecret)) return bad(res, 'appsecret must be 32 letters or digits');
    const problem = this.settings.bindSubAccount(subMchid, appid, appsecret);
    if (problem) return bad(res, problem);
    return { subMchid, appid };
  }

  @Get('stats')
  @ApiOperation({ summary: 'Calls per endpoint since start or the last reset' })
  stats() {
    // secapi: requests on the mutual-TLS port (served, refused without a certificate, refused for the one presented).
    return { calls: this.faults.counts(), pendingFaults: this.faults.pendingFaults(), secapi: { ...this.secapi.counts } };
  }

  @Post('stats/reset')
  @HttpCode(204)
  resetStats() {
    this.faults.resetCounts();
    this.secapi.resetCounts();
  }

  @Get('faults')
  @ApiOperation({ summary: 'The endpoint names faults can be injected into, by family, and the faults pending' })
  faultEndpoints() {
    return { endpoints: SANDBOX_ENDPOINTS, pending: this.faults.pendingFaults() };
  }

  @Post('faults')
  @HttpCode(200)
  @ApiOperation({ summary: 'Fail the next `count` calls of `endpoint` with 500, 429 FREQUENCY_LIMITED or a timeout' })
  fault(@Body() body: Json, @Res({ passthrough: true }) res: Response) {
    const endpoint = typeof body.endpoint === 'string' ? body.endpoint.replace(/^\//, '') : '';
    const kind = String(body.kind ?? '500') as FaultKind;
    const count = body.count === undefined ? 1 : Number(body.count);
    if (!endpoint) return bad(res, `endpoint is required, one of: ${ALL_SANDBOX_ENDPOINTS.join(', ')}`);
    if (!isSandboxEndpoint(endpoint)) return bad(res, `unknown endpoint "${endpoint}"; valid endpoints: ${ALL_SANDBOX_ENDPOINTS.join(', ')}`);
    if (!['500', '429', 'timeout'].includes(kind)) return bad(res, 'kind must be 500, 429 or timeout');
    if (!Number.isInteger(count) || count < 1) return bad(res, 'count must be a positive integer');
    this.faults.failNext(endpoint, count, kind);
    return { endpoint, kind, count };
  }

  @Post('pay')
  @HttpCode(200)
  @ApiOperation({ summary: 'Pay (or cancel/fail) a prepay as its own user ({ prepayId }), or "scan" a Native code_url ({ codeUrl }, paid by openid or a test user)' })
  payPrepay(@Body() body: Json, @Res({ passthrough: true }) res: Response) {
    let prepayId = typeof body.prepayId === 'string' ? body.prepayId : typeof body.prepay_id === 'string' ? body.prepay_id : undefined;
    if (!prepayId && typeof body.codeUrl === 'string') {
      prepayId = SandboxPayService.codeToken(body.codeUrl);
      if (!prepayId) return bad(res, 'codeUrl must be a weixin://wxpay/bizpayurl?pr=… code_url');
    }
    if (!prepayId) return bad(res, 'prepayId (or codeUrl) is required');
    const outcome = body.result === 'cancel' || body.result === 'fail' ? body.result : 'success';
    const answer = this.pay.pay(prepayId, typeof body.openid === 'string' ? body.openid : undefined, outcome);
    if (answer.problem) res.status(answer.problem === 'NOT_FOUND' ? 404 : 409);
    return {
      result: answer.result,
      reason: answer.reason,
      outTradeNo: answer.transaction?.outTradeNo,
      transactionId: answer.result === 'ok' ? answer.transaction?.transactionId : undefined,
    };
  }

  @Get('transactions/:outTradeNo')
  transaction(@Param('outTradeNo') outTradeNo: string, @Res({ passthrough: true }) res: Response) {
    const tx = this.state.transactions.get(outTradeNo);
    if (!tx) {
      res.status(404);
      return { statusCode: 404, error: 'Not Found', message: `no sandbox transaction ${outTradeNo}` };
    }
    return {
      ...this.pay.transactionView(tx),
      prepay_ids: tx.prepays.map((p) => p.prepayId),
      notify_url: tx.notifyUrl,
      payer_client_ip: tx.payerClientIp,
      time_expire: tx.timeExpire === undefined ? undefined : beijingTime(tx.timeExpire),
    };
  }

  @Post('transactions')
  @ApiOperation({ summary: 'Inject a paid transaction (as if paid at WeChat without our prepay)' })
  inject(@Body() body: Json, @Res({ passthrough: true }) res: Response) {
    try {
      const tx = this.pay.inject({
        outTradeNo: String(body.outTradeNo ?? ''),
        total: Number(body.total),
        openid: typeof body.openid === 'string' ? body.openid : undefined,
        successTime: typeof body.successTime === 'string' ? Date.parse(body.successTime) : undefined,
        description: typeof body.description === 'string' ? body.description : undefined,
      });
      return this.pay.transactionView(tx);
    } catch (error) {
      if (error instanceof SandboxPayError) return bad(res, error.message);
      throw error;
    }
  }

  @Patch('transactions/:outTradeNo')
  @ApiOperation({ summary: 'Change what WeChat recorded for an order (e.g. its amount)' })
  alter(@Param('outTradeNo') outTradeNo: string, @Body() body: Json, @Res({ passthrough: true }) res: Response) {
    if (body.total !== undefined && (!Number.isInteger(body.total) || (body.total as number) <= 0)) return bad(res, 'total must be a positive integer (fen)');
    try {
      return this.pay.transactionView(this.pay.alter(outTradeNo, { total: body.total as number | undefined }));
    } catch (error) {
      if (error instanceof SandboxPayError) {
        res.status(404);
        return { statusCode: 404, error: 'Not Found', message: error.message };
      }
      throw error;
    }
  }

  @Post('transactions/:outTradeNo/trade-state')
  @HttpCode(200)
  @ApiOperation({ summary: 'Put an unpaid order into USERPAYING (user entering the password) or PAYERROR, or back to NOTPAY' })
  tradeState(@Param('outTradeNo') outTradeNo: string, @Body() body: Json, @Res({ passthrough: true }) res: Response) {
    const state = body.state;
    if (state !== 'USERPAYING' && state !== 'PAYERROR' && state !== 'NOTPAY') return bad(res, 'state must be USERPAYING, PAYERROR or NOTPAY');
    try {
      return this.pay.transactionView(this.pay.setTradeState(outTradeNo, state));
    } catch (error) {
      if (error instanceof SandboxControlError) {
        res.status(error.status);
        return { statusCode: error.status, error: 'Conflict', message: error.message };
      }
      if (error instanceof SandboxPayError) {
        res.status(404);
        return { statusCode: 404, error: 'Not Found', message: `no sandbox transaction ${outTradeNo}` };
      }
      throw error;
    }
  }

  @Post('refunds/balance')
  @HttpCode(200)
  @ApiOperation({ summary: 'Simulate an insufficient merchant balance: refunds answer 403 NOT_ENOUGH while `insufficient` is true' })
  refundBalance(@Body() body: Json, @Res({ passthrough: true }) res: Response) {
    if (typeof body.insufficient !== 'boolean') return bad(res, 'insufficient (boolean) is required');
    this.refunds.setInsufficientBalance(body.insufficient);
    return { insufficient: this.refunds.balanceInsufficient };
  }

  @Post('refunds/next-outcome')
  @HttpCode(200)
  @ApiOperation({ summary: 'Make the next refund(s) end ABNORMAL or CLOSED instead of SUCCESS' })
  refundOutcome(@Body() body: Json, @Res({ passthrough: true }) res: Response) {
    const status = body.status;
    if (status !== 'SUCCESS' && status !== 'ABNORMAL' && status !== 'CLOSED') return bad(res, 'status must be SUCCESS, ABNORMAL or CLOSED');
    const count = body.count === undefined ? 1 : Number(body.count);
    this.refunds.forceNextRefundOutcome(status, count);
    return { status, count };
  }

  @Get('refunds/:outRefundNo')
  refund(@Param('outRefundNo') outRefundNo: string, @Res({ passthrough: true }) res: Response) {
    const refund = this.state.refunds.get(outRefundNo);
    if (!refund) {
      res.status(404);
      return { statusCode: 404, error: 'Not Found', message: `no sandbox refund ${outRefundNo}` };
    }
    return this.refunds.refundView(refund);
  }

  @Post('bills')
  @HttpCode(200)
  @ApiOperation({ summary: 'Serve a gzip file inside DATA_DIR as the ALL trade bill of a date (big-bill tests, benchmarks); with subMchid, as that sub-merchant\'s bill (sub_mchid)' })
  async registerBill(@Body() body: Json, @Res({ passthrough: true }) res: Response) {
    if (typeof body.date !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(body.date)) return bad(res, 'date must be YYYY-MM-DD');
    if (body.subMchid !== undefined && (typeof body.subMchid !== 'string' || !this.settings.subMchids.includes(body.subMchid))) {
      return bad(res, `subMchid must be one of the sandbox's sub-merchants (${this.settings.subMchids.join(', ')})`);
    }
    if (typeof body.path !== 'string' || !body.path || body.path.includes('\0')) {
      return bad(res, 'path is required: a .gz trade bill inside DATA_DIR, absolute or relative to it');
    }
    try {
      return { date: body.date, ...(body.subMchid ? { subMchid: body.subMchid } : {}), ...(await this.bills.registerTradeBillFile(body.date, body.path, body.subMchid as string | undefined)) };
    } catch (error) {
      if (error instanceof SandboxControlError) return bad(res, error.message);
      // Never echo an fs error's message: it carries the resolved absolute path.
      return bad(res, `cannot read ${JSON.stringify(body.path)} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`);
    }
  }

  @Post('bills/tamper')
  @HttpCode(200)
  @ApiOperation({ summary: 'The next bill files downloaded (count, default 1; 0 turns it off) come with one byte changed: a tampered download' })
  tamperBills(@Body() body: Json, @Res({ passthrough: true }) res: Response) {
    const count = body.count === undefined ? 1 : Number(body.count);
    if (!Number.isInteger(count) || count < 0 || count > 1000) return bad(res, 'count must be an integer from 0 to 1000');
    this.bills.tamperBillFiles(count);
    return { count };
  }

  @Post('bills/part-size')
  @HttpCode(200)
  @ApiOperation({ summary: 'Cut sub-merchant fund-flow bills into parts of at most bytes (of the plain file) each, as WeChat cuts a huge one; 0 = one part' })
  billPartSize(@Body() body: Json, @Res({ passthrough: true }) res: Response) {
    const bytes = Number(body.bytes);
    if (!Number.isInteger(bytes) || bytes < 0) return bad(res, 'bytes must be an integer, 0 or more');
    this.bills.setSubMerchantBillPartBytes(bytes);
    return { bytes };
  }

  @Get('notifications')
  @ApiOperation({ summary: 'Every delivery attempt (?outTradeNo= | ?outRefundNo= | ?target=)' })
  notifications(@Query() query: Json) {
    return { attempts: this.notifier.list(targetOf(query)), dropping: this.notifier.dropping };
  }

  @Post('notifications/drop')
  @HttpCode(200)
  @ApiOperation({ summary: 'Drop (true) or deliver (false) future notifications' })
  drop(@Body() body: Json) {
    this.notifier.dropping = body.enabled !== false;
    return { dropping: this.notifier.dropping };
  }

  @Post('notifications/deliver')
  @HttpCode(200)
  @ApiOperation({ summary: 'Deliver the latest notification of an order/refund `times` times at once, optionally tampered' })
  async deliver(@Body() body: Json, @Res({ passthrough: true }) res: Response) {
    const target = targetOf(body);
    if (!target) return bad(res, 'outTradeNo, outRefundNo or target is required');
    const tamper = body.tamper as Tamper | undefined;
    if (tamper !== undefined && !['signature', 'timestamp', 'ciphertext', 'probe'].includes(tamper)) {
      return bad(res, 'tamper must be signature, timestamp, ciphertext or probe');
    }
    const times = body.times === undefined ? 1 : Number(body.times);
    if (!Number.isInteger(times) || times < 1 || times > 1000) return bad(res, 'times must be 1..1000');
    if (!this.notifier.hasNotification(target)) {
      res.status(404);
      return { statusCode: 404, error: 'Not Found', message: `no notification was ever produced for ${target}` };
    }
    return { attempts: await this.notifier.redeliver(target, times, tamper) };
  }

  @Get('clock')
  clockNow() {
    return { now: new Date(this.clock.now()).toISOString(), offsetMs: this.clock.offset, wechatSkewMs: this.clock.wechatSkewMs };
  }

  @Post('clock')
  @HttpCode(200)
  @ApiOperation({
    summary:
      'Shift the sandbox\'s business time by shiftMs (expiry of codes, tokens, tickets, prepays, bill URLs; reset: true ends the shift), ' +
      'and/or set wechatSkewMs: how far simulated WeChat\'s own clock is off real time (its signatures, timestamps, Date and ' +
      'time_expire checks; 0 = off, the default), independently of the business shift',
  })
  shiftClock(@Body() body: Json, @Res({ passthrough: true }) res: Response) {
    const has = (key: string) => body[key] !== undefined;
    if (!has('shiftMs') && !has('reset') && !has('wechatSkewMs')) return bad(res, 'shiftMs (number), reset: true or wechatSkewMs (number) is required');
    if (has('shiftMs') && (typeof body.shiftMs !== 'number' || !Number.isFinite(body.shiftMs))) return bad(res, 'shiftMs must be a number of milliseconds');
    if (has('reset') && body.reset !== true) return bad(res, 'reset must be true');
    if (has('wechatSkewMs') && (typeof body.wechatSkewMs !== 'number' || !Number.isFinite(body.wechatSkewMs) || Math.abs(body.wechatSkewMs) > 86_400_000)) {
      return bad(res, 'wechatSkewMs must be a number of milliseconds between -86400000 and 86400000 (0 turns it off)');
    }
    if (body.reset === true) this.clock.reset();
    if (typeof body.shiftMs === 'number') this.clock.shift(body.shiftMs);
    if (typeof body.wechatSkewMs === 'number') this.clock.setWechatSkew(Math.round(body.wechatSkewMs));
    return this.clockNow();
  }

  @Post('tokens/invalidate')
  @HttpCode(200)
  @ApiOperation({ summary: 'Invalidate every basic access_token (APIs then answer 40001)' })
  invalidate() {
    return { invalidated: this.mp.invalidateTokens() };
  }

  @Get('users')
  users() {
    return { users: this.mp.listUsers() };
  }

  @Post('users')
  createUser(@Body() body: Json, @Res({ passthrough: true }) res: Response) {
    try {
      return this.mp.upsertUser({
        openid: typeof body.openid === 'string' ? body.openid : undefined,
        nickname: typeof body.nickname === 'string' ? body.nickname : undefined,
        avatarUrl: typeof body.avatarUrl === 'string' ? body.avatarUrl : undefined,
      });
    } catch (error) {
      return bad(res, (error as Error).message);
    }
  }

  @Post('reset')
  @HttpCode(204)
  @ApiOperation({ summary: 'Forget all state, faults, counts and notifications; clock back to real time (business shift and wechatSkewMs)' })
  reset() {
    this.state.reset();
    this.faults.reset();
    this.secapi.resetCounts();
    this.notifier.reset();
    this.refunds.reset();
    this.bills.reset();
    this.clock.reset();
    this.clock.setWechatSkew(0);
  }
}
