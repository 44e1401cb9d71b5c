import { emptyTotals, summaryLines, summaryNumber } from './trade-bill';

describe('trade bill summary row', () => {
  it('is written like the protocol\'s sample (wechatpay-php bill.ALL.csv)', () => {
    // 45 rows, 应结 0.47, 退款 0.14, 充值券退款 0, 手续费 8 × 0.01000, 订单 0.47, 申请退款 0.14
    const totals = { ...emptyTotals(), count: 45, settlementTotal: 47, refundTotal: 14, feeMilliFen: 8000, orderTotal: 47, requestedRefundTotal: 14 };
    expect(summaryLines(totals)).toBe(
      '总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n`45.0,`0.47,`0.14,`0.0,`0.08,`0.47,`0.14\r\n',
    );
  });

  it('prints the shortest exact decimal with at least one fractional digit', () => {
    expect(summaryNumber(0, 0)).toBe('0.0');
    expect(summaryNumber(1230, 2)).toBe('12.3');
    expect(summaryNumber(1234, 2)).toBe('12.34');
    expect(summaryNumber(100, 2)).toBe('1.0');
    expect(summaryNumber(-5, 2)).toBe('-0.05');
    expect(summaryNumber(1234567, 5)).toBe('12.34567');
    expect(summaryNumber(123456789012, 2)).toBe('1234567890.12');
  });
});
