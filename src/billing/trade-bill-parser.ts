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

type ColumnIndex = Record<keyof typeof COLUMNS, number>;

/**
 * One data row. What reconciliation reads for every row (order and refund numbers, state, amounts) is
 * decoded at once; the rest is decoded from the raw line on first access — a million rows, most of
 * whose text nobody reads, should not cost a million of each string.
 */
export class TradeBillRecord {
  readonly kind = 'row' as const;

  constructor(
    readonly line: number,
    private readonly raw: string,
    private readonly index: ColumnIndex,
    readonly outTradeNo: string,
    readonly transactionId: string,
    /** SUCCESS (payment), REFUND (refund), REVOKED, … */
    readonly tradeState: string,
    /** 应结订单金额, fen */
    readonly settlementTotal: number,
    /** 订单金额, fen */
    readonly orderAmount: number,
    /** 退款金额, fen */
    readonly refundAmount: number,
    readonly outRefundNo: string,
  ) {}

  private field(key: keyof typeof COLUMNS): string {
    const wanted = this.index[key];
    if (wanted < 0) return '';
    let from = 1;
    for (let k = 0; k < wanted; k++) from = this.raw.indexOf(',`', from) + 2;
    const end = this.raw.indexOf(',`', from);
    return this.raw.slice(from, end === -1 ? this.raw.length : end);
  }

  get tradeTime(): string {
    return this.field('tradeTime');
  }
  get appid(): string {
    return this.field('appid');
  }
  get mchid(): string {
    return this.field('mchid');
  }
  get openid(): string {
    return this.field('openid');
  }
  get tradeType(): string {
    return this.field('tradeType');
  }
  get currency(): string {
    return this.field('currency');
  }
  get refundId(): string {
    const value = this.field('refundId');
    return value === '0' ? '' : value;
  }
  /** 申请退款金额, fen */
  get requestedRefund(): number {
    return parseAmount(this.field('requestedRefund'), this.line, COLUMNS.requestedRefund);
  }
  get refundStatus(): string {
    return this.field('refundStatus');
  }
  get body(): string {
    return this.field('body');
  }
  get attach(): string {
    return this.field('attach');
  }
  /** 手续费 in 1/1000 fen (the file has five decimals of yuan) */
  get feeMilliFen(): number {
    return parseAmount(this.field('fee'), this.line, COLUMNS.fee, 5);
  }
  get rate(): string {
    return this.field('rate');
  }
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
  return parseAmountIn(text, 0, text.length, line, field, decimals);
}

/** parseAmount over text[start, end), without slicing it out first (the parser's hot path). */
export function parseAmountIn(text: string, start: number, end: number, line: number, field: string, decimals = 2): number {
  if (start === end) return 0;
  let i = start;
  let negative = false;
  if (text.charCodeAt(i) === 45 /* - */) {
    negative = true;
    i++;
  }
  let whole = 0;
  let wholeDigits = 0;
  let fraction = 0;
  let fractionDigits = 0;
  let dot = false;
  for (; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === 46 /* . */ && !dot) {
      dot = true;
      continue;
    }
    if (c < 48 || c > 57) throw new BillParseError(line, `${field} is not an amount: ${JSON.stringify(text.slice(start, Math.min(end, start + 40)))}`);
    if (!dot) {
      whole = whole * 10 + (c - 48);
      wholeDigits++;
    } else if (fractionDigits < decimals) {
      fraction = fraction * 10 + (c - 48);
      fractionDigits++;
    } else if (c !== 48) {
      throw new BillParseError(line, `${field} has more than ${decimals} decimals: ${JSON.stringify(text.slice(start, Math.min(end, start + 40)))}`);
    }
  }
  if (wholeDigits === 0) throw new BillParseError(line, `${field} is not an amount: ${JSON.stringify(text.slice(start, Math.min(end, start + 40)))}`);
  for (; fractionDigits < decimals; fractionDigits++) fraction *= 10;
  const value = whole * 10 ** decimals + fraction;
  return negative ? -value : value;
}

function fieldsOf(line: string, lineNo: number): string[] {
  if (line.charCodeAt(0) !== 96 /* ` */) throw new BillParseError(lineNo, 'a data row must start with a backtick');
  return line.slice(1).split(',`');
}

export type BillRecord = TradeBillRecord | TradeBillSummary;

/**
 * The parser itself: synchronous, fed text as it arrives (`push`), returning the complete records of
 * each piece. The async wrappers below add streaming; keeping the per-line work free of promises is
 * what makes it fast (a million rows per bill).
 */
export class TradeBillParser {
  private index?: ColumnIndex;
  private width = 0;
  private state: 'header' | 'rows' | 'summary-values' | 'done' = 'header';
  private lineNo = 0;
  private rest = '';
  private first = true;
  private starts = new Int32Array(64);
  private ends = new Int32Array(64);

  push(text: string, out: BillRecord[] = []): BillRecord[] {
    let data = this.rest + text;
    if (this.first && data.length > 0) {
      if (data.charCodeAt(0) === 0xfeff) data = data.slice(1);
      this.first = false;
    }
    let start = 0;
    let nl: number;
    while ((nl = data.indexOf('\n', start)) !== -1) {
      const end = nl > start && data.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      this.line(data.slice(start, end), out);
      start = nl + 1;
    }
    this.rest = data.slice(start);
    return out;
  }

  end(out: BillRecord[] = []): BillRecord[] {
    if (this.rest.length > 0) {
      const last = this.rest.endsWith('\r') ? this.rest.slice(0, -1) : this.rest;
      this.rest = '';
      this.line(last, out);
    }
    if (this.state === 'header') throw new BillParseError(this.lineNo + 1, 'the bill is empty');
    if (this.state !== 'done') throw new BillParseError(this.lineNo + 1, 'the bill ends without its summary rows (truncated download?)');
    return out;
  }

  private line(line: string, out: BillRecord[]): void {
    const lineNo = ++this.lineNo;
    switch (this.state) {
      case 'done':
        if (line.trim() !== '') throw new BillParseError(lineNo, 'unexpected content after the summary');
        return;
      case 'header': {
        if (line.trim() === '') throw new BillParseError(lineNo, 'empty header line');
        const names = line.split(',').map((n) => n.trim());
        this.width = names.length;
        const map = {} as ColumnIndex;
        for (const [key, name] of Object.entries(COLUMNS) as Array<[keyof typeof COLUMNS, string]>) map[key] = names.indexOf(name);
        const missing = REQUIRED.filter((key) => map[key] < 0).map((key) => COLUMNS[key]);
        if (missing.length) throw new BillParseError(lineNo, `not a trade bill header: missing ${missing.join(', ')}`);
        this.index = map;
        this.state = 'rows';
        return;
      }
      case 'rows': {
        if (line.startsWith(SUMMARY_FIRST)) {
          this.state = 'summary-values';
          return;
        }
        if (line === '') throw new BillParseError(lineNo, 'empty line inside the data rows');
        if (line.charCodeAt(0) !== 96 /* ` */) throw new BillParseError(lineNo, 'a data row must start with a backtick');
        // Field boundaries by scanning for ",`" once, into a reused array; only the fields used are sliced.
        const starts = this.starts;
        const ends = this.ends;
        let count = 0;
        let from = 1;
        for (;;) {
          const sep = line.indexOf(',`', from);
          if (count >= starts.length) break;
          starts[count] = from;
          if (sep === -1) {
            ends[count++] = line.length;
            break;
          }
          ends[count++] = sep;
          from = sep + 2;
        }
        if (count !== this.width) throw new BillParseError(lineNo, `expected ${this.width} fields, found ${count} (truncated or damaged row?)`);
        const i = this.index!;
        const outRefundNo = i.outRefundNo >= 0 ? line.slice(starts[i.outRefundNo], ends[i.outRefundNo]) : '';
        out.push(
          new TradeBillRecord(
            lineNo,
            line,
            i,
            line.slice(starts[i.outTradeNo], ends[i.outTradeNo]),
            line.slice(starts[i.transactionId], ends[i.transactionId]),
            line.slice(starts[i.tradeState], ends[i.tradeState]),
            i.settlementTotal >= 0 ? parseAmountIn(line, starts[i.settlementTotal], ends[i.settlementTotal], lineNo, COLUMNS.settlementTotal) : 0,
            i.orderAmount >= 0 ? parseAmountIn(line, starts[i.orderAmount], ends[i.orderAmount], lineNo, COLUMNS.orderAmount) : 0,
            i.refundAmount >= 0 ? parseAmountIn(line, starts[i.refundAmount], ends[i.refundAmount], lineNo, COLUMNS.refundAmount) : 0,
            outRefundNo === '0' ? '' : outRefundNo,
          ),
        );
        return;
      }
      case 'summary-values': {
        const f = fieldsOf(line, lineNo);
        if (f.length < 7) throw new BillParseError(lineNo, `summary row has ${f.length} fields, expected 7`);
        const count = Number(f[0]);
        if (!Number.isFinite(count)) throw new BillParseError(lineNo, `summary count is not a number: ${f[0]}`);
        out.push({
          kind: 'summary',
          line: lineNo,
          count: Math.round(count),
          settlementTotal: parseAmount(f[1], lineNo, '应结订单总金额'),
          refundTotal: parseAmount(f[2], lineNo, '退款总金额'),
          couponRefundTotal: parseAmount(f[3], lineNo, '充值券退款总金额'),
          feeMilliFen: parseAmount(f[4], lineNo, '手续费总金额', 5),
          orderTotal: parseAmount(f[5], lineNo, '订单总金额'),
          requestedRefundTotal: parseAmount(f[6], lineNo, '申请退款总金额'),
        });
        this.state = 'done';
      }
    }
  }
}

/** Streams records in batches (one per chunk of input): the fast way to consume a large bill. */
export async function* parseTradeBillBatches(stream: Readable): AsyncGenerator<BillRecord[]> {
  const parser = new TradeBillParser();
  const decoder = new StringDecoder('utf8');
  for await (const chunk of stream) {
    const records = parser.push(typeof chunk === 'string' ? chunk : decoder.write(chunk as Buffer));
    if (records.length) yield records;
  }
  const last = parser.push(decoder.end());
  parser.end(last);
  if (last.length) yield last;
}

/**
 * Parses a trade bill. Yields every data row, then the summary (last). Throws BillParseError with the
 * line number for anything that is not a complete, well-formed bill — including a truncated file.
 */
export async function* parseTradeBill(stream: Readable): AsyncGenerator<BillRecord> {
  for await (const batch of parseTradeBillBatches(stream)) yield* batch;
}
