import { Readable } from 'node:stream';
import { TradeBillRow, tradeBillLine, writeTradeBill } from '../sandbox/bills/trade-bill';
import { BillParseError, TradeBillRecord, TradeBillSummary, parseAmount, parseTradeBill, parseTradeBillBatches } from './trade-bill-parser';

const HEADER =
  '交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注';
// The two rows of the real file quoted in ../shared/wechatpay-protocol.md D.7.
const PAYMENT =
  '`2019-02-19 01:51:59,`wxab8acd895ab1638a,`1921000401,`0,`,`4200000263201902167700136502,`autotest_20190219015157_13391,`wxab8acd865bb1637e,`NATIVE,`SUCCESS,`OTHERS,`CNY,`0.03,`0.01,`0,`0,`0.00,`0.00,`,`,`autotest,`,`0.01000,`39.00%,`0.03,`0.00,`';
const REFUND =
  '`2019-02-19 05:01:46,`wxab8acd895ab1638a,`1921000401,`0,`harryma007,`4200000263201902167700134212,`autotest_20190216081946_82335,`oHkLxtx0vUqe-18p_AXTZ1innxkCY,`JSAPI,`REFUND,`OTHERS,`CNY,`0.00,`0.00,`50000709672019011908420787722,`REF4200000263201902167700963919,`0.01,`0.00,`ORIGINAL,`SUCCESS,`<商品名称>,`,`0.00000,`39.00%,`0.00,`0.01,`';
const SUMMARY = '总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n`45.0,`0.47,`0.14,`0.0,`0.08,`0.47,`0.14';

async function parse(text: string | Buffer, chunkSize = 7): Promise<Array<TradeBillRecord | TradeBillSummary>> {
  const data = typeof text === 'string' ? Buffer.from(text) : text;
  // Deliberately tiny chunks: lines and multi-byte characters split across chunks.
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunkSize) chunks.push(data.subarray(i, i + chunkSize));
  const out = [];
  for await (const record of parseTradeBill(Readable.from(chunks))) out.push(record);
  return out;
}

async function parseError(text: string): Promise<BillParseError> {
  try {
    await parse(text);
  } catch (error) {
    expect(error).toBeInstanceOf(BillParseError);
    return error as BillParseError;
  }
  throw new Error('expected a BillParseError');
}

describe('trade bill parser', () => {
  const file = `\uFEFF${HEADER}\r\n${PAYMENT}\r\n${REFUND}\r\n${SUMMARY}\r\n`;

  it('reads the real format: BOM, CRLF, backticks, empty fields, summary', async () => {
    const records = await parse(file);
    expect(records).toHaveLength(3);
    expect(records[0]).toMatchObject({
      kind: 'row',
      line: 2,
      tradeTime: '2019-02-19 01:51:59',
      transactionId: '4200000263201902167700136502',
      outTradeNo: 'autotest_20190219015157_13391',
      tradeState: 'SUCCESS',
      settlementTotal: 3,
      orderAmount: 3,
      refundAmount: 0,
      outRefundNo: '',
      feeMilliFen: 1000,
      rate: '39.00%',
      attach: '',
    });
    expect(records[1]).toMatchObject({ tradeState: 'REFUND', outRefundNo: 'REF4200000263201902167700963919', refundAmount: 1, requestedRefund: 1, refundStatus: 'SUCCESS', body: '<商品名称>' });
    expect(records[2]).toEqual({
      kind: 'summary',
      line: 5,
      count: 45,
      settlementTotal: 47,
      refundTotal: 14,
      couponRefundTotal: 0,
      feeMilliFen: 8000,
      orderTotal: 47,
      requestedRefundTotal: 14,
    });
  });

  it('reads LF line ends and a file without BOM', async () => {
    const records = await parse(`${HEADER}\n${PAYMENT}\n${SUMMARY.replace('\r\n', '\n')}\n`);
    expect(records.map((r) => r.kind)).toEqual(['row', 'summary']);
  });

  it('accepts a complete file without its final line end, and reports a summary row cut short with its line number', async () => {
    const noFinalLineEnd = await parse(`${HEADER}\r\n${PAYMENT}\r\n${REFUND}\r\n${SUMMARY.replace(/\r\n$/, '')}`);
    expect(noFinalLineEnd.map((r) => r.kind)).toEqual(['row', 'row', 'summary']);
    const [header, row] = SUMMARY.split('\r\n');
    const cut = await parseError(`${HEADER}\r\n${PAYMENT}\r\n${REFUND}\r\n${header}\r\n${row.split(',').slice(0, 6).join(',')}`);
    expect(cut.line).toBe(5);
    expect(cut.message).toMatch(/bill line 5: summary row has 6 fields, expected 7/);
    // cut inside the summary header: no summary at all
    expect((await parseError(`${HEADER}\r\n${PAYMENT}\r\n总交易单数,应结订单`)).message).toMatch(/bill line 4: the bill ends without its summary rows/);
    // a damaged summary row that does have its line end
    const [summaryHeader, values] = SUMMARY.split('\r\n');
    expect((await parseError(`${HEADER}\r\n${PAYMENT}\r\n${summaryHeader}\r\n${values.replace('`0.14,', '`,')}\r\n`)).message).toMatch(/bill line 4: summary 退款总金额 is empty/);
    expect((await parseError(`${HEADER}\r\n${PAYMENT}\r\n${summaryHeader}\r\n${values.split(',').slice(0, 5).join(',')}\r\n`)).message).toMatch(/bill line 4: summary row has 5 fields, expected 7/);
    expect((await parseError(`${HEADER}\r\n${PAYMENT}\r\n${summaryHeader}\r\n${values.replace('`45.0', '`45.5')}\r\n`)).message).toMatch(/bill line 4: 总交易单数 has more than 0 decimals/);
  });

  it('checks every amount of every row up front, including the fee, the requested refund and the coupons', async () => {
    const cases: Array<[string, string, RegExp]> = [
      ['fee', PAYMENT.replace('`0.01000,', '`0.01x00,'), /line 2: 手续费 is not an amount/],
      ['fee precision', PAYMENT.replace('`0.01000,', '`0.010001,'), /line 2: 手续费 has more than 5 decimals/],
      ['requested refund', REFUND.replace('`0.00,`0.01,`', '`0.00,`0,01,`'), /line 2: 申请退款金额 is not an amount/],
      ['coupon', PAYMENT.replace('`0.03,`0.01,', '`0.03,`abc,'), /line 2: 代金券金额 is not an amount/],
      ['coupon refund', REFUND.replace('`0.01,`0.00,`ORIGINAL', '`0.01,`-,`ORIGINAL'), /line 2: 充值券退款金额 is not an amount/],
      ['refund amount', REFUND.replace('`0.01,`0.00,`ORIGINAL', '`1.0.1,`0.00,`ORIGINAL'), /line 2: 退款金额 is not an amount/],
    ];
    for (const [name, row, message] of cases) {
      const error = await parseError(`${HEADER}\r\n${row}\r\n${SUMMARY}\r\n`);
      expect([name, error.message]).toEqual([name, expect.stringMatching(message)]);
    }
    const [payment, refund] = (await parse(file)) as TradeBillRecord[];
    expect(payment).toMatchObject({ feeMilliFen: 1000, couponAmount: 1, requestedRefund: 0, couponRefundAmount: 0 });
    expect(refund).toMatchObject({ requestedRefund: 1, refundAmount: 1, feeMilliFen: 0 });
  });

  it('reads a header of any width (no field limit) and reports rows wider than it', async () => {
    const extra = Array.from({ length: 60 }, (_, i) => `扩展字段${i}`);
    const wideHeader = `${HEADER},${extra.join(',')}`;
    const wide = (row: string, n = extra.length) => `${row},${Array.from({ length: n }, (_, i) => `\`x${i}`).join(',')}`;
    const records = await parse(`${wideHeader}\r\n${wide(PAYMENT)}\r\n${wide(REFUND)}\r\n${SUMMARY}\r\n`, 4096);
    expect(records.map((r) => r.kind)).toEqual(['row', 'row', 'summary']);
    expect(records[1]).toMatchObject({ outRefundNo: 'REF4200000263201902167700963919', refundAmount: 1, requestedRefund: 1, refundStatus: 'SUCCESS' });
    const tooWide = await parseError(`${wideHeader}\r\n${wide(PAYMENT, 200)}\r\n${SUMMARY}\r\n`);
    expect(tooWide.message).toMatch(/bill line 2: expected 87 fields, found 227/);
  });

  it('keeps commas that are inside a field', async () => {
    const row = PAYMENT.replace('`autotest,', '`马克杯, 红色, 大号,');
    const [record] = await parse(`${HEADER}\r\n${row}\r\n${SUMMARY}\r\n`);
    expect((record as TradeBillRecord).body).toBe('马克杯, 红色, 大号');
  });

  it('reads what the sandbox writes, byte for byte round trip of every amount', async () => {
    const rows: TradeBillRow[] = Array.from({ length: 500 }, (_, i) => ({
      time: '2026-11-24 10:00:00',
      appid: 'wx1234567890abcdef',
      mchid: '1900000109',
      transactionId: `4200${i}`,
      outTradeNo: `W${i}`,
      openid: 'o1',
      tradeType: 'JSAPI',
      tradeState: i % 5 === 0 ? 'REFUND' : 'SUCCESS',
      bankType: 'OTHERS',
      total: 100 + i,
      refundId: `50${i}`,
      outRefundNo: `R${i}`,
      refund: 7 + i,
      body: '商品，带逗号,的名字',
      feeMilliFen: 600 + i,
    }));
    const chunks: Buffer[] = [];
    const sink = new (require('node:stream').PassThrough)();
    sink.on('data', (c: Buffer) => chunks.push(c));
    const totals = await writeTradeBill(rows, sink);
    const records = await parse(Buffer.concat(chunks), 4096);
    const parsed = records.filter((r): r is TradeBillRecord => r.kind === 'row');
    expect(parsed).toHaveLength(500);
    expect(parsed[1]).toMatchObject({ outTradeNo: 'W1', orderAmount: 101, body: '商品，带逗号 的名字' });
    expect(parsed[5]).toMatchObject({ tradeState: 'REFUND', refundAmount: 12, outRefundNo: 'R5' });
    const summary = records.at(-1) as TradeBillSummary;
    expect(summary).toMatchObject({ count: totals.count, orderTotal: totals.orderTotal, refundTotal: totals.refundTotal });
    expect(tradeBillLine(rows[0]).endsWith('\r\n')).toBe(true);
  });

  it('reports a truncated file (no summary) with the line number', async () => {
    const error = await parseError(`${HEADER}\r\n${PAYMENT}\r\n${REFUND}\r\n`);
    expect(error.line).toBe(4);
    expect(error.message).toMatch(/bill line 4: the bill ends without its summary rows \(truncated download\?\)/);
  });

  it('reports a row cut in the middle with its line number', async () => {
    const error = await parseError(`${HEADER}\r\n${PAYMENT}\r\n${REFUND.slice(0, 80)}`);
    expect(error.line).toBe(3);
    expect(error.message).toMatch(/expected 27 fields, found \d+/);
  });

  it('rejects a file that is not a trade bill, a bad amount, and content after the summary', async () => {
    expect((await parseError('<html>error</html>\r\n')).message).toMatch(/line 1: not a trade bill header/);
    expect((await parseError('')).message).toMatch(/empty/);
    const badAmount = PAYMENT.replace('`0.03,`0.01', '`0.0x3,`0.01');
    expect((await parseError(`${HEADER}\r\n${badAmount}\r\n${SUMMARY}\r\n`)).message).toMatch(/line 2: 应结订单金额 is not an amount/);
    expect((await parseError(`${HEADER}\r\n${PAYMENT}\r\n${SUMMARY}\r\n${PAYMENT}\r\n`)).message).toMatch(/line 5: unexpected content after the summary/);
    expect((await parseError(`${HEADER}\r\nno backtick here\r\n`)).message).toMatch(/line 2: a data row must start with a backtick/);
  });

  it('reads a 60 000-row bill fed in 64 KiB pieces, every row and the summary (speed: bench/bill.ts, not a timed test)', async () => {
    const rows: TradeBillRow[] = Array.from({ length: 60_000 }, (_, i) => ({
      time: '2026-11-24 10:00:00',
      appid: 'wx1234567890abcdef',
      mchid: '1900000109',
      transactionId: `42000002632019021677${String(i).padStart(8, '0')}`,
      outTradeNo: `W2611241010001${String(i).padStart(10, '0')}`,
      openid: 'oHkLxtx0vUqe-18p_AXTZ1innxkCY',
      tradeType: 'JSAPI',
      tradeState: i % 10 === 0 ? 'REFUND' : 'SUCCESS',
      bankType: 'OTHERS',
      total: 100 + i,
      refundId: `50${i}`,
      outRefundNo: `R${i}`,
      refund: 7,
      body: '商品名称',
      feeMilliFen: 600 + i,
    }));
    const chunks: Buffer[] = [];
    const sink = new (require('node:stream').PassThrough)();
    sink.on('data', (c: Buffer) => chunks.push(c));
    await writeTradeBill(rows, sink);
    const data = Buffer.concat(chunks);
    const pieces: Buffer[] = [];
    for (let i = 0; i < data.length; i += 65_536) pieces.push(data.subarray(i, i + 65_536));
    let n = 0;
    for await (const batch of parseTradeBillBatches(Readable.from(pieces))) n += batch.length;
    expect(n).toBe(60_001);
  });

  it('parses amounts exactly', () => {
    expect(parseAmount('12.34', 1, 'x')).toBe(1234);
    expect(parseAmount('0.1', 1, 'x')).toBe(10);
    expect(parseAmount('-0.01', 1, 'x')).toBe(-1);
    expect(parseAmount('0.01000', 1, 'x', 5)).toBe(1000);
    expect(parseAmount('123456789.99', 1, 'x')).toBe(12345678999);
    expect(() => parseAmount('1.234', 1, 'x')).toThrow(BillParseError);
  });
});
