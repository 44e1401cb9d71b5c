import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';

/*
 * WeChat Pay trade bill (交易账单) parser: streaming, pure (a Readable of plain CSV in, records out).
 * Format: UTF-8 (BOM optional), CRLF or LF, a header row, data rows in which every field starts with
 * a backtick, then a summary header row and one backticked summary row. Fields are not quoted, so a
 * comma can appear inside a field: the real separator is ",`" (comma + the next field's backtick).
 */

export class BillParseError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`bill line ${line}: ${message}`);
    this.name = 'BillParseError';
  }
}

export interface TradeBillRecord {
  kind: 'row';
  line: number;
  tradeTime: string;
  appid: string;
  mchid: string;
  transactionId: string;
  outTradeNo: string;
  openid: string;
  tradeType: string;
  /** SUCCESS (payment), REFUND (refund), REVOKED, … */
  tradeState: string;
  currency: string;
  /** 应结订单金额, fen */
  settlementTotal: number;
  /** 订单金额, fen */
  orderAmount: number;
  refundId: string;
  outRefundNo: string;
  /** 退款金额, fen */
  refundAmount: number;
  /** 申请退款金额, fen */
  requestedRefund: number;
  refundStatus: string;
  body: string;
  attach: string;
  /** 手续费 in 1/1000 fen (the file has five decimals of yuan) */
  feeMilliFen: number;
  rate: string;
}

export interface TradeBillSummary {
  kind: 'summary';
  line: number;
  count: number;
  settlementTotal: number;
  refundTotal: number;
  couponRefundTotal: number;
  feeMilliFen: number;
  orderTotal: number;
  requestedRefundTotal: number;
}

const COLUMNS = {
  tradeTime: '交易时间',
  appid: '公众账号ID',
  mchid: '商户号',
  transactionId: '微信订单号',
  outTradeNo: '商户订单号',
  openid: '用户标识',
  tradeType: '交易类型',
  tradeState: '交易状态',
  currency: '货币种类',
  settlementTotal: '应结订单金额',
  refundId: '微信退款单号',
  outRefundNo: '商户退款单号',
  refundAmount: '退款金额',
  refundStatus: '退款状态',
  body: '商品名称',
  attach: '商户数据包',
  fee: '手续费',
  rate: '费率',
  orderAmount: '订单金额',
  requestedRefund: '申请退款金额',
} as const;

const REQUIRED: Array<keyof typeof COLUMNS> = ['tradeTime', 'outTradeNo', 'tradeState', 'transactionId'];
const SUMMARY_FIRST = '总交易单数';

/** "12.34" (yuan) → 1234 (fen), exactly (no floating point); `decimals` fractional digits at most. */
export function parseAmount(text: string, line: number, field: string, decimals = 2): number {
  if (text === '') return 0;
  const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
  if (!match || (match[3] && match[3].length > decimals && !/^0*$/.test(match[3].slice(decimals)))) {
    throw new BillParseError(line, `${field} is not an amount: ${JSON.stringify(text.slice(0, 40))}`);
  }
  const frac = (match[3] ?? '').slice(0, decimals).padEnd(decimals, '0');
  const value = Number(match[2]) * 10 ** decimals + Number(frac || 0);
  return match[1] ? -value : value;
}

/** Splits a stream of text into lines (\n or \r\n), with 1-based numbers; the BOM is dropped. */
export async function* billLines(stream: Readable): AsyncGenerator<[number, string]> {
  const decoder = new StringDecoder('utf8');
  let rest = '';
  let number = 0;
  let first = true;
  for await (const chunk of stream) {
    let text = rest + (typeof chunk === 'string' ? chunk : decoder.write(chunk as Buffer));
    if (first && text.length > 0) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      first = false;
    }
    let start = 0;
    let nl: number;
    while ((nl = text.indexOf('\n', start)) !== -1) {
      const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      yield [++number, text.slice(start, end)];
      start = nl + 1;
    }
    rest = text.slice(start);
  }
  rest += decoder.end();
  if (rest.length > 0) yield [++number, rest.endsWith('\r') ? rest.slice(0, -1) : rest];
}

function fieldsOf(line: string, lineNo: number): string[] {
  if (line.charCodeAt(0) !== 96 /* ` */) throw new BillParseError(lineNo, 'a data row must start with a backtick');
  return line.slice(1).split(',`');
}

/**
 * Parses a trade bill. Yields every data row, then the summary (last). Throws BillParseError with the
 * line number for anything that is not a complete, well-formed bill — including a truncated file.
 */
export async function* parseTradeBill(stream: Readable): AsyncGenerator<TradeBillRecord | TradeBillSummary> {
  let index: Record<keyof typeof COLUMNS, number> | undefined;
  let width = 0;
  let state: 'header' | 'rows' | 'summary-values' | 'done' = 'header';
  let lastLine = 0;
  for await (const [lineNo, line] of billLines(stream)) {
    lastLine = lineNo;
    if (state === 'done') {
      if (line.trim() === '') continue;
      throw new BillParseError(lineNo, 'unexpected content after the summary');
    }
    if (state === 'header') {
      if (line.trim() === '') throw new BillParseError(lineNo, 'empty header line');
      const names = line.split(',').map((n) => n.trim());
      width = names.length;
      const map = {} as Record<keyof typeof COLUMNS, number>;
      for (const [key, name] of Object.entries(COLUMNS) as Array<[keyof typeof COLUMNS, string]>) map[key] = names.indexOf(name);
      const missing = REQUIRED.filter((key) => map[key] < 0).map((key) => COLUMNS[key]);
      if (missing.length) throw new BillParseError(lineNo, `not a trade bill header: missing ${missing.join(', ')}`);
      index = map;
      state = 'rows';
      continue;
    }
    if (state === 'rows') {
      if (line.startsWith(SUMMARY_FIRST)) {
        state = 'summary-values';
        continue;
      }
      if (line === '') throw new BillParseError(lineNo, 'empty line inside the data rows');
      const f = fieldsOf(line, lineNo);
      if (f.length !== width) {
        throw new BillParseError(lineNo, `expected ${width} fields, found ${f.length}${lineNo > 1 ? ' (truncated or damaged row?)' : ''}`);
      }
      const i = index!;
      const get = (key: keyof typeof COLUMNS) => (i[key] >= 0 ? f[i[key]] : '');
      yield {
        kind: 'row',
        line: lineNo,
        tradeTime: get('tradeTime'),
        appid: get('appid'),
        mchid: get('mchid'),
        transactionId: get('transactionId'),
        outTradeNo: get('outTradeNo'),
        openid: get('openid'),
        tradeType: get('tradeType'),
        tradeState: get('tradeState'),
        currency: get('currency'),
        settlementTotal: parseAmount(get('settlementTotal'), lineNo, COLUMNS.settlementTotal),
        orderAmount: parseAmount(get('orderAmount'), lineNo, COLUMNS.orderAmount),
        refundId: get('refundId') === '0' ? '' : get('refundId'),
        outRefundNo: get('outRefundNo') === '0' ? '' : get('outRefundNo'),
        refundAmount: parseAmount(get('refundAmount'), lineNo, COLUMNS.refundAmount),
        requestedRefund: parseAmount(get('requestedRefund'), lineNo, COLUMNS.requestedRefund),
        refundStatus: get('refundStatus'),
        body: get('body'),
        attach: get('attach'),
        feeMilliFen: parseAmount(get('fee'), lineNo, COLUMNS.fee, 5),
        rate: get('rate'),
      };
      continue;
    }
    // summary values
    const f = fieldsOf(line, lineNo);
    if (f.length < 7) throw new BillParseError(lineNo, `summary row has ${f.length} fields, expected 7`);
    const count = Number(f[0]);
    if (!Number.isFinite(count)) throw new BillParseError(lineNo, `summary count is not a number: ${f[0]}`);
    yield {
      kind: 'summary',
      line: lineNo,
      count: Math.round(count),
      settlementTotal: parseAmount(f[1], lineNo, '应结订单总金额'),
      refundTotal: parseAmount(f[2], lineNo, '退款总金额'),
      couponRefundTotal: parseAmount(f[3], lineNo, '充值券退款总金额'),
      feeMilliFen: parseAmount(f[4], lineNo, '手续费总金额', 5),
      orderTotal: parseAmount(f[5], lineNo, '订单总金额'),
      requestedRefundTotal: parseAmount(f[6], lineNo, '申请退款总金额'),
    };
    state = 'done';
  }
  if (state === 'header') throw new BillParseError(lastLine + 1, 'the bill is empty');
  if (state !== 'done') {
    throw new BillParseError(lastLine + 1, `the bill ends without its summary rows (truncated download?)`);
  }
}
