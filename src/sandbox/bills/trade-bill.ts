import { Writable } from 'node:stream';
import { once } from 'node:events';

/*
 * WeChat Pay trade bill (交易账单) text, as the real files are written: UTF-8 with BOM, CRLF line ends,
 * a header row, data rows whose every field starts with a backtick, then a summary header and one
 * backticked summary row. Amounts in yuan with two decimals, fees with five.
 */

export const TRADE_BILL_ALL_HEADER = [
  '交易时间', '公众账号ID', '商户号', '特约商户号', '设备号', '微信订单号', '商户订单号', '用户标识', '交易类型', '交易状态',
  '付款银行', '货币种类', '应结订单金额', '代金券金额', '微信退款单号', '商户退款单号', '退款金额', '充值券退款金额', '退款类型', '退款状态',
  '商品名称', '商户数据包', '手续费', '费率', '订单金额', '申请退款金额', '费率备注',
];

export const TRADE_BILL_SUMMARY_HEADER = ['总交易单数', '应结订单总金额', '退款总金额', '充值券退款总金额', '手续费总金额', '订单总金额', '申请退款总金额'];

export interface TradeBillRow {
  /** 'YYYY-MM-DD HH:mm:ss', Beijing time */
  time: string;
  appid: string;
  mchid: string;
  /** 特约商户号: a service provider's trade's sub-merchant (printed as 0 for a direct trade). */
  subMchid?: string;
  transactionId: string;
  outTradeNo: string;
  openid: string;
  tradeType: string;
  /** SUCCESS for a payment row, REFUND for a refund row */
  tradeState: 'SUCCESS' | 'REFUND';
  bankType: string;
  /** fen */
  total: number;
  refundId?: string;
  outRefundNo?: string;
  /** fen */
  refund?: number;
  refundStatus?: string;
  body: string;
  attach?: string;
  /** fen, with 1/1000 precision: the fee is printed with 5 decimals of yuan */
  feeMilliFen?: number;
  rate?: string;
}

export interface TradeBillTotals {
  count: number;
  settlementTotal: number;
  refundTotal: number;
  feeMilliFen: number;
  orderTotal: number;
  requestedRefundTotal: number;
}

export function yuan(fen: number): string {
  const sign = fen < 0 ? '-' : '';
  const abs = Math.abs(fen);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

function feeYuan(milliFen: number): string {
  const sign = milliFen < 0 ? '-' : '';
  const abs = Math.abs(Math.round(milliFen));
  return `${sign}${Math.floor(abs / 100_000)}.${String(abs % 100_000).padStart(5, '0')}`;
}

/** Bill fields never contain commas or line breaks: WeChat does not quote, so neither can we. */
function clean(text: string | undefined): string {
  return (text ?? '').replace(/[,\r\n`]/g, ' ');
}

/** The default fee: 0.6 % of the order amount. */
export const DEFAULT_RATE = '0.60%';
export function defaultFeeMilliFen(totalFen: number): number {
  return Math.round(totalFen * 6);
}

export function tradeBillLine(row: TradeBillRow): string {
  const payment = row.tradeState === 'SUCCESS';
  const fields = [
    row.time,
    row.appid,
    row.mchid,
    row.subMchid ?? '0',
    '',
    row.transactionId,
    row.outTradeNo,
    row.openid,
    row.tradeType,
    row.tradeState,
    row.bankType,
    'CNY',
    payment ? yuan(row.total) : '0.00',
    '0.00',
    payment ? '0' : (row.refundId ?? ''),
    payment ? '0' : (row.outRefundNo ?? ''),
    payment ? '0.00' : yuan(row.refund ?? 0),
    '0.00',
    payment ? '' : 'ORIGINAL',
    payment ? '' : (row.refundStatus ?? 'SUCCESS'),
    clean(row.body),
    clean(row.attach),
    feeYuan(row.feeMilliFen ?? 0),
    row.rate ?? DEFAULT_RATE,
    payment ? yuan(row.total) : '0.00',
    payment ? '0.00' : yuan(row.refund ?? 0),
    '',
  ];
  return '`' + fields.join(',`') + '\r\n';
}

export function emptyTotals(): TradeBillTotals {
  return { count: 0, settlementTotal: 0, refundTotal: 0, feeMilliFen: 0, orderTotal: 0, requestedRefundTotal: 0 };
}

export function addToTotals(totals: TradeBillTotals, row: TradeBillRow): void {
  totals.count++;
  totals.feeMilliFen += row.feeMilliFen ?? 0;
  if (row.tradeState === 'SUCCESS') {
    totals.settlementTotal += row.total;
    totals.orderTotal += row.total;
  } else {
    totals.refundTotal += row.refund ?? 0;
    totals.requestedRefundTotal += row.refund ?? 0;
  }
}

/**
 * A summary-row number as WeChat writes it: the protocol's sample (wechatpay-php bill.ALL.csv) reads
 * `45.0,`0.47,`0.14,`0.0,`0.08,… — the shortest decimal with at least one fractional digit (a
 * double printed the Java way), so 45 → "45.0", 0 → "0.0", 12.30 → "12.3", a fee of 0.08000 → "0.08".
 * `units` are 10^-decimals of the printed unit; exact (no floating point). Scientific notation, which
 * Java would use from 10^7 on, is not reproduced: nothing in the protocol shows WeChat writing it.
 */
export function summaryNumber(units: number, decimals: number): string {
  const sign = units < 0 ? '-' : '';
  const abs = Math.abs(Math.round(units));
  const scale = 10 ** decimals;
  const fraction = String(abs % scale).padStart(decimals, '0').replace(/0+$/, '');
  return `${sign}${Math.floor(abs / scale)}.${fraction || '0'}`;
}

export function summaryLines(totals: TradeBillTotals): string {
  return (
    TRADE_BILL_SUMMARY_HEADER.join(',') +
    '\r\n`' +
    [
      summaryNumber(totals.count, 0),
      summaryNumber(totals.settlementTotal, 2),
      summaryNumber(totals.refundTotal, 2),
      summaryNumber(0, 2),
      summaryNumber(totals.feeMilliFen, 5),
      summaryNumber(totals.orderTotal, 2),
      summaryNumber(totals.requestedRefundTotal, 2),
    ].join(',`') +
    '\r\n'
  );
}

/**
 * Streams a complete ALL trade bill for `rows` into `out`, honouring backpressure, and returns the
 * totals it wrote in the summary. Pure apart from the stream: usable for a 1,000,000-row file.
 */
export async function writeTradeBill(rows: Iterable<TradeBillRow> | AsyncIterable<TradeBillRow>, out: Writable): Promise<TradeBillTotals> {
  const totals = emptyTotals();
  const write = async (text: string) => {
    if (!out.write(text)) await once(out, 'drain');
  };
  await write('\uFEFF' + TRADE_BILL_ALL_HEADER.join(',') + '\r\n');
  let buffer = '';
  for await (const row of rows as AsyncIterable<TradeBillRow>) {
    addToTotals(totals, row);
    buffer += tradeBillLine(row);
    if (buffer.length > 64 * 1024) {
      await write(buffer);
      buffer = '';
    }
  }
  await write(buffer + summaryLines(totals));
  return totals;
}

export const FUND_FLOW_HEADER = ['记账时间', '微信支付业务单号', '资金流水单号', '业务名称', '业务类型', '收支类型', '收支金额(元)', '账户结余(元)', '资金变更提交申请人', '备注', '业务凭证号'];
export const FUND_FLOW_SUMMARY_HEADER = ['资金流水总笔数', '收入笔数', '收入金额', '支出笔数', '支出金额'];

export interface FundFlowRow {
  time: string;
  businessId: string;
  flowId: string;
  name: string;
  type: string;
  direction: '收入' | '支出';
  amount: number;
  balance: number;
  applicant: string;
  remark: string;
  voucher: string;
}

/** Fund-flow bill (资金账单) in the same file conventions. */
export function renderFundFlowBill(rows: Iterable<FundFlowRow>): string {
  let text = '\uFEFF' + FUND_FLOW_HEADER.join(',') + '\r\n';
  let income = 0;
  let incomeCount = 0;
  let expense = 0;
  let expenseCount = 0;
  let count = 0;
  for (const row of rows) {
    count++;
    if (row.direction === '收入') {
      income += row.amount;
      incomeCount++;
    } else {
      expense += row.amount;
      expenseCount++;
    }
    text +=
      '`' +
      [row.time, row.businessId, row.flowId, row.name, row.type, row.direction, yuan(row.amount), yuan(row.balance), row.applicant, clean(row.remark), row.voucher].join(',`') +
      '\r\n';
  }
  return (
    text +
    FUND_FLOW_SUMMARY_HEADER.join(',') +
    '\r\n`' +
    [String(count), String(incomeCount), yuan(income), String(expenseCount), yuan(expense)].join(',`') +
    '\r\n'
  );
}
