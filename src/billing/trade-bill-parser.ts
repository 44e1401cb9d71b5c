import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';

/*
 * WeChat Pay trade bill (交易账单) parser: streaming, pure (a Readable of plain CSV in, records out).
 * Format: UTF-8 (BOM optional), CRLF or LF, a header row, data rows in which every field starts with
 * a backtick, then a summary header row and one backticked summary row (WeChat ends it with CRLF too,
 * but a complete row without one is accepted: a file cut inside that row's last number cannot be told
 * from its digits, and is caught by the SHA-1 check of the whole file, which comes first). Fields are not
 * quoted, so a comma can appear inside a field: the real separator is ",`" (comma + the next field's
 * backtick). Every amount is checked on every row; any damage is a BillParseError with its line.
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
 * One data row. What reconciliation reads for every row (order and refund numbers, state) and every
 * amount are decoded at once — amounts are cheap to read and must be checked anyway, so that a damaged
 * bill fails with its line number rather than being half-used; the other text is decoded from the raw
 * line on first access — a million rows, most of whose text nobody reads, should not cost a million
 * of each string.
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
    /** 申请退款金额, fen */
    readonly requestedRefund: number,
    /** 手续费 in 1/1000 fen (the file has five decimals of yuan) */
    readonly feeMilliFen: number,
    /** 代金券金额, fen */
    readonly couponAmount: number,
    /** 充值券退款金额, fen */
    readonly couponRefundAmount: number,
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
  /** 特约商户号: a service provider's trade's sub-merchant; '' for a direct merchant's (WeChat prints 0). */
  get subMchid(): string {
    const value = this.field('subMchid');
    return value === '0' ? '' : value;
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
  get refundStatus(): string {
    return this.field('refundStatus');
  }
  get body(): string {
    return this.field('body');
  }
  get attach(): string {
    return this.field('attach');
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
  subMchid: '特约商户号',
  transactionId: '微信订单号',
  outTradeNo: '商户订单号',
  openid: '用户标识',
  tradeType: '交易类型',
  tradeState: '交易状态',
  currency: '货币种类',
  settlementTotal: '应结订单金额',
  coupon: '代金券金额',
  refundId: '微信退款单号',
  outRefundNo: '商户退款单号',
  refundAmount: '退款金额',
  couponRefund: '充值券退款金额',
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

const POW10 = [1, 10, 100, 1000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];

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
  const value = whole * POW10[decimals] + fraction;
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
  /** Field boundaries of the current row; sized from the header, grown should a row have more fields. */
  private starts = new Int32Array(32);
  private ends = new Int32Array(32);

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
      // A last line without its line end: parsed like any other. A summary row cut short shows as
      // missing fields; one cut inside its last number ("0.14" → "0.1") reads as a number, and only
      // the file's SHA-1 (checked before anything from the bill is applied) can tell.
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
        this.starts = new Int32Array(names.length + 1);
        this.ends = new Int32Array(names.length + 1);
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
        let starts = this.starts;
        let ends = this.ends;
        let count = 0;
        let from = 1;
        for (;;) {
          const sep = line.indexOf(',`', from);
          if (count >= starts.length) {
            // more fields than the header (a damaged row, reported below): grow rather than cut off
            const grownStarts = new Int32Array(starts.length * 2);
            const grownEnds = new Int32Array(ends.length * 2);
            grownStarts.set(starts);
            grownEnds.set(ends);
            this.starts = starts = grownStarts;
            this.ends = ends = grownEnds;
          }
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
        // Every amount column is read (and so checked) here, without slicing: a bad value anywhere fails now.
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
            i.requestedRefund >= 0 ? parseAmountIn(line, starts[i.requestedRefund], ends[i.requestedRefund], lineNo, COLUMNS.requestedRefund) : 0,
            i.fee >= 0 ? parseAmountIn(line, starts[i.fee], ends[i.fee], lineNo, COLUMNS.fee, 5) : 0,
            i.coupon >= 0 ? parseAmountIn(line, starts[i.coupon], ends[i.coupon], lineNo, COLUMNS.coupon) : 0,
            i.couponRefund >= 0 ? parseAmountIn(line, starts[i.couponRefund], ends[i.couponRefund], lineNo, COLUMNS.couponRefund) : 0,
          ),
        );
        return;
      }
      case 'summary-values': {
        const f = fieldsOf(line, lineNo);
        if (f.length < 7) throw new BillParseError(lineNo, `summary row has ${f.length} fields, expected 7 (truncated or damaged?)`);
        const value = (index: number, name: string, decimals: number) => {
          if (f[index] === '') throw new BillParseError(lineNo, `summary ${name} is empty (truncated or damaged?)`);
          return parseAmount(f[index], lineNo, name, decimals);
        };
        out.push({
          kind: 'summary',
          line: lineNo,
          // "45.0": a whole number printed as a decimal
          count: value(0, '总交易单数', 0),
          settlementTotal: value(1, '应结订单总金额', 2),
          refundTotal: value(2, '退款总金额', 2),
          couponRefundTotal: value(3, '充值券退款总金额', 2),
          feeMilliFen: value(4, '手续费总金额', 5),
          orderTotal: value(5, '订单总金额', 2),
          requestedRefundTotal: value(6, '申请退款总金额', 2),
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
