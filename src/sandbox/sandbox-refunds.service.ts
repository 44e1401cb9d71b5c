import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { checkRefundSubMchid, partnerOf } from './sandbox-partner';
import { Json, canonical, digits, isObject, requireString } from './sandbox-pay-input';
import { beijingDate, beijingTime } from './sandbox-crypto';
import { SandboxPayError, payError } from './sandbox-errors';
import { SandboxClock } from './sandbox-clock';
import { SandboxNotifier } from './sandbox-notifier.service';
import { SandboxSettings } from './sandbox.settings';
import { SandboxRefund, SandboxRefundStatus, SandboxState, SandboxTransaction } from './sandbox.state';

const OUT_REFUND_NO = /^[0-9A-Za-z_\-|*@]{1,64}$/;

/**
 * WeChat Pay's refunds (APIv3, and under the APIv2 front): apply, query, the refund settling after
 * the sandbox's refund delay (with its notification), and the control API's refund switches.
 */
@Injectable()
export class SandboxRefundsService implements OnModuleDestroy {
  private readonly refundTimers = new Set<NodeJS.Timeout>();
  /** Outcome forced on the next refunds (control API): ABNORMAL / CLOSED instead of SUCCESS. */
  private readonly nextRefundOutcomes: Array<Exclude<SandboxRefundStatus, 'PROCESSING'>> = [];
  /** Control API: the merchant's balance cannot cover refunds (403 NOT_ENOUGH) until turned off. */
  private insufficientBalance = false;

  constructor(
    private readonly state: SandboxState,
    private readonly settings: SandboxSettings,
    private readonly clock: SandboxClock,
    private readonly notifier: SandboxNotifier,
  ) {}

  /** Control API: refunds answer 403 NOT_ENOUGH (merchant balance insufficient) while enabled. */
  setInsufficientBalance(enabled: boolean): void {
    this.insufficientBalance = enabled;
  }

  get balanceInsufficient(): boolean {
    return this.insufficientBalance;
  }

  forceNextRefundOutcome(outcome: Exclude<SandboxRefundStatus, 'PROCESSING'>, count = 1): void {
    for (let i = 0; i < count; i++) this.nextRefundOutcomes.push(outcome);
  }

  createRefund(body: unknown): SandboxRefund {
    if (!isObject(body)) throw payError.param('请求体必须是 JSON 对象');
    const outRefundNo = requireString(body, 'out_refund_no', 64);
    if (!OUT_REFUND_NO.test(outRefundNo)) throw payError.param('out_refund_no 只能是数字、大小写字母、_-|*@', '/out_refund_no', outRefundNo);
    let tx: SandboxTransaction | undefined;
    if (typeof body.transaction_id === 'string') {
      const no = this.state.transactionIds.get(body.transaction_id);
      tx = no ? this.state.transactions.get(no) : undefined;
    } else if (typeof body.out_trade_no === 'string') {
      tx = this.state.transactions.get(body.out_trade_no);
    } else {
      throw payError.param('transaction_id 和 out_trade_no 必须二选一', '/out_trade_no');
    }
    checkRefundSubMchid(tx, body.sub_mchid, 'body', this.settings.subMchids);
    const amount = body.amount;
    if (!isObject(amount)) throw payError.param('amount 为必填项', '/amount');
    if (!Number.isInteger(amount.refund) || (amount.refund as number) <= 0) throw payError.param('amount.refund 必须是大于 0 的整数', '/amount/refund', amount.refund);
    if (!Number.isInteger(amount.total) || (amount.total as number) <= 0) throw payError.param('amount.total 必须是大于 0 的整数', '/amount/total', amount.total);
    if (amount.currency !== 'CNY') throw payError.param('amount.currency 必须是 CNY', '/amount/currency', amount.currency);
    if (body.notify_url !== undefined && typeof body.notify_url !== 'string') throw payError.param('notify_url 格式不正确', '/notify_url');
    if (body.reason !== undefined && (typeof body.reason !== 'string' || body.reason.length > 80)) throw payError.param('reason 长度不能超过 80', '/reason');

    const fingerprint = canonical({ ...body, notify_url: undefined, reason: undefined });
    const existing = this.state.refunds.get(outRefundNo);
    if (existing) {
      if (existing.fingerprint !== fingerprint) throw payError.invalid('请求重入时，参数与首次请求时不一致');
      this.refreshRefund(existing);
      return existing;
    }
    if (!tx || (tx.state !== 'SUCCESS' && tx.state !== 'REFUND')) throw payError.resourceNotFound('订单不存在或未支付');
    if (amount.total !== tx.total) throw payError.invalid('订单金额（amount.total）与原订单金额不一致');
    const refunded = [...this.state.refunds.values()]
      .filter((r) => r.outTradeNo === tx!.outTradeNo && r.status !== 'CLOSED' && r.status !== 'ABNORMAL')
      .reduce((sum, r) => sum + r.refund, 0);
    if ((amount.refund as number) > tx.total - refunded) {
      const detail = `订单金额 ${tx.total} 分，已退及退款中 ${refunded} 分，本次申请 ${amount.refund} 分`;
      // The issue pins 403 NOT_ENOUGH; the protocol's error table (E.5) gives 400 INVALID_REQUEST for
      // "amount exceeds refundable" (NOT_ENOUGH being the merchant's balance): SANDBOX_OVER_REFUND_ERROR.
      if (this.settings.overRefundError === 'INVALID_REQUEST') throw payError.invalid(`申请退款金额超过订单可退金额：${detail}`);
      throw new SandboxPayError(403, 'NOT_ENOUGH', `可退金额不足：${detail}`);
    }
    if (this.insufficientBalance) throw new SandboxPayError(403, 'NOT_ENOUGH', '基本账户余额不足，请充值后重新发起');
    const now = this.clock.now();
    const refund: SandboxRefund = {
      refundId: `50${digits(6)}${beijingDate(now).replace(/-/g, '')}${digits(13)}`,
      outRefundNo,
      outTradeNo: tx.outTradeNo,
      transactionId: tx.transactionId!,
      fingerprint,
      reason: body.reason as string | undefined,
      notifyUrl: body.notify_url as string | undefined,
      refund: amount.refund as number,
      total: tx.total,
      currency: 'CNY',
      status: 'PROCESSING',
      createdAt: now,
      outcome: this.nextRefundOutcomes.shift() ?? 'SUCCESS',
      completesAt: now + this.settings.scaled(this.settings.refundDelayMs),
    };
    this.state.refunds.set(outRefundNo, refund);
    tx.state = 'REFUND';
    this.state.changed();
    const timer = setTimeout(() => {
      this.refundTimers.delete(timer);
      this.refreshRefund(refund, true);
    }, refund.completesAt - now);
    timer.unref();
    this.refundTimers.add(timer);
    return refund;
  }

  /** `subMchid`: the query's ?sub_mchid (a provider's query of a partner trade's refund must name it). */
  queryRefund(outRefundNo: string, subMchid?: unknown): SandboxRefund {
    const refund = this.state.refunds.get(outRefundNo);
    if (!refund) throw payError.resourceNotFound('退款单不存在');
    checkRefundSubMchid(this.state.transactions.get(refund.outTradeNo), subMchid, 'query', this.settings.subMchids);
    this.refreshRefund(refund);
    return refund;
  }

  private refreshRefund(refund: SandboxRefund, timerFired = false): void {
    if (refund.status !== 'PROCESSING') return;
    if (!timerFired && this.clock.now() < refund.completesAt) return;
    refund.status = refund.outcome;
    if (refund.status === 'SUCCESS') refund.successTime = this.clock.now();
    this.state.changed();
    if (refund.notifyUrl) {
      this.notifier.enqueue({
        target: `refund:${refund.outRefundNo}`,
        url: refund.notifyUrl,
        eventType: `REFUND.${refund.status}`,
        summary: refund.status === 'SUCCESS' ? '退款成功' : refund.status === 'CLOSED' ? '退款关闭' : '退款异常',
        resourceType: 'refund',
        resource: {
          ...this.refundMerchantFields(refund),
          transaction_id: refund.transactionId,
          out_trade_no: refund.outTradeNo,
          refund_id: refund.refundId,
          out_refund_no: refund.outRefundNo,
          refund_status: refund.status,
          ...(refund.successTime ? { success_time: beijingTime(refund.successTime) } : {}),
          user_received_account: '支付用户零钱',
          amount: { total: refund.total, refund: refund.refund, payer_total: refund.total, payer_refund: refund.refund },
        },
        v2: refund.v2 ? { signType: 'MD5', appid: this.state.transactions.get(refund.outTradeNo)?.appid } : undefined,
      });
    }
  }

  /** A refund notification names mchid, or for a partner trade sp_mchid + sub_mchid (as WeChat's partner refund notifications). */
  private refundMerchantFields(refund: SandboxRefund): Json {
    const partner = partnerOf(this.state.transactions.get(refund.outTradeNo));
    return partner ? { sp_mchid: this.settings.keystore.mchid, sub_mchid: partner.subMchid } : { mchid: this.settings.keystore.mchid };
  }

  refundView(refund: SandboxRefund): Json {
    return {
      refund_id: refund.refundId,
      out_refund_no: refund.outRefundNo,
      transaction_id: refund.transactionId,
      out_trade_no: refund.outTradeNo,
      channel: 'ORIGINAL',
      user_received_account: '支付用户零钱',
      ...(refund.successTime ? { success_time: beijingTime(refund.successTime) } : {}),
      create_time: beijingTime(refund.createdAt),
      status: refund.status,
      funds_account: 'AVAILABLE',
      amount: {
        total: refund.total,
        refund: refund.refund,
        from: [],
        payer_total: refund.total,
        payer_refund: refund.refund,
        settlement_refund: refund.refund,
        settlement_total: refund.total,
        discount_refund: 0,
        currency: refund.currency,
      },
      promotion_detail: [],
    };
  }

  /** Control reset: forced refund outcomes, pending refund timers, the balance switch. */
  reset(): void {
    this.nextRefundOutcomes.length = 0;
    for (const timer of this.refundTimers) clearTimeout(timer);
    this.refundTimers.clear();
    this.insufficientBalance = false;
  }

  onModuleDestroy(): void {
    this.reset();
  }
}
