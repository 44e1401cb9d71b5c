import { Injectable } from '@nestjs/common';
import { constants, createCipheriv, createHash, publicEncrypt, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { createGunzip, gzipSync } from 'node:zlib';
import { checkBound, notAProvider, partnerOf } from './sandbox-partner';
import { beijingDate, beijingDateTime } from './sandbox-crypto';
import { SandboxPayError, payError } from './sandbox-errors';
import { SandboxClock } from './sandbox-clock';
import { SandboxSettings } from './sandbox.settings';
import { BillToken, SandboxState, SandboxTransaction } from './sandbox.state';
import { readGzipBillFile } from './bills/bill-file';
import {
  DEFAULT_RATE,
  FundFlowRow,
  TRADE_BILL_ALL_HEADER,
  TradeBillRow,
  addToTotals,
  defaultFeeMilliFen,
  emptyTotals,
  renderFundFlowBill,
  summaryLines,
  tradeBillLine,
} from './bills/trade-bill';

/** Download tokens kept at once (each holds its frozen bill); the oldest go first. */
const MAX_BILL_TOKENS = 64;

type Json = Record<string, unknown>;

/**
 * WeChat Pay's bills: trade and fund-flow bills (APIv3 and APIv2 fronts), a provider's encrypted
 * sub-merchant fund-flow bill, their download tokens and files, and the control API's bill files,
 * tampering and part size.
 */
@Injectable()
export class SandboxBillsService {
  /** Gzip files registered as the ALL trade bill of a date (control API), by date (`<date>/<sub_mchid>`: one sub-merchant's bill). */
  private readonly externalBills = new Map<string, { path: string; hash: string }>();
  /** Control API: how many of the next bill files downloaded come with one byte changed (a tampered file). */
  private tamperNextBillFiles = 0;
  /** Control API: sub-merchant fund-flow bills are cut into parts of at most this many bytes (0: one part). */
  private subMerchantBillPartBytes = 0;

  constructor(
    private readonly state: SandboxState,
    private readonly settings: SandboxSettings,
    private readonly clock: SandboxClock,
  ) {}

  private validateBillDate(value: unknown): string {
    if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(value) || Number.isNaN(Date.parse(`${value}T00:00:00+08:00`))) {
      throw new SandboxPayError(400, 'PARAM_ERROR', 'bill_date 格式应为 yyyy-MM-DD', { field: 'bill_date', value, location: 'query' });
    }
    const today = beijingDate(this.clock.now());
    if (value > today) throw new SandboxPayError(400, 'INVALID_REQUEST', '账单日期不能晚于今天');
    const oldest = beijingDate(this.clock.now() - 92 * 24 * 3600_000);
    if (value < oldest) throw new SandboxPayError(400, 'INVALID_REQUEST', '只能下载三个月以内的账单');
    return value;
  }

  /**
   * Applies for a bill and returns what WeChat answers, with a short-lived download token. The file
   * is built now and frozen behind the token: what is downloaded is exactly what `hash_value` was
   * computed over, whatever happens (payments, refunds, re-registrations) before the download.
   */
  applyBill(kind: 'trade' | 'fundflow', query: Record<string, unknown>, sandboxBase: string): Json {
    const billDate = this.validateBillDate(query.bill_date);
    let billType = 'ALL';
    if (kind === 'trade') {
      billType = (query.bill_type as string | undefined) ?? 'ALL';
      if (!['ALL', 'SUCCESS', 'REFUND'].includes(billType)) {
        throw new SandboxPayError(400, 'PARAM_ERROR', 'bill_type 只能是 ALL、SUCCESS 或 REFUND', { field: 'bill_type', value: billType, location: 'query' });
      }
    } else {
      billType = (query.account_type as string | undefined) ?? 'BASIC';
      if (!['BASIC', 'OPERATION', 'FEES'].includes(billType)) {
        throw new SandboxPayError(400, 'PARAM_ERROR', 'account_type 只能是 BASIC、OPERATION 或 FEES', { field: 'account_type', value: billType, location: 'query' });
      }
    }
    const tarType = query.tar_type as string | undefined;
    if (tarType !== undefined && tarType !== 'GZIP') {
      throw new SandboxPayError(400, 'PARAM_ERROR', 'tar_type 只能是 GZIP', { field: 'tar_type', value: tarType, location: 'query' });
    }
    // A provider's trade bill of one sub-merchant (sub_mchid); without it, every sub-merchant's trades.
    const subMchid = kind === 'trade' && query.sub_mchid !== undefined ? String(query.sub_mchid) : undefined;
    if (subMchid !== undefined && !this.settings.subMchids.includes(subMchid)) {
      throw payError.invalid('特约商户号与服务商商户号不存在绑定关系');
    }
    const external = kind === 'trade' && billType === 'ALL' ? this.externalBills.get(subMchid === undefined ? billDate : `${billDate}/${subMchid}`) : undefined;
    let plain: Buffer | undefined;
    if (!external) {
      if (kind === 'trade') {
        const rows = this.tradeRows(billDate, billType, subMchid);
        if (rows.length > 0) plain = this.renderTrade(rows);
      } else {
        const rows = this.fundRows(billDate);
        if (rows.length > 0) plain = this.renderFund(rows);
      }
      if (!plain) throw new SandboxPayError(400, 'NO_STATEMENT_EXIST', '账单日期没有交易，不会生成账单文件');
    }
    this.pruneBillTokens();
    const token = randomBytes(24).toString('base64url');
    const gzip = tarType === 'GZIP';
    const hashValue = external ? external.hash : createHash('sha1').update(plain!).digest('hex');
    this.state.billTokens.set(token, {
      token,
      kind,
      billDate,
      billType,
      gzip,
      expiresAt: this.clock.now() + this.settings.billUrlTtlMs,
      hash: hashValue,
      ...(external ? { externalPath: external.path } : { plain }),
    });
    return {
      hash_type: 'SHA1',
      hash_value: hashValue,
      download_url: `${sandboxBase}/v3/billdownload/file?token=${token}${gzip ? '&tartype=gzip' : ''}`,
    };
  }

  /**
   * 申请单个子商户资金账单 (GET /v3/bill/sub-merchant-fundflowbill): the provider asks for one bound
   * sub-merchant's fund flow (its trades' and refunds' movements). The answer is a download list: each
   * part (bill_sequence from 1; the file is cut when the control API asks for small parts, as WeChat
   * cuts a file past ~16 GB) is gzipped when tar_type=GZIP, then encrypted with AEAD_AES_256_GCM under
   * its own random key (32 characters, used as their bytes) and nonce (16 characters, the IV; no
   * associated data; the 16-byte tag at the end). encrypt_key is that key RSA-OAEP-encrypted (SHA-1,
   * as WeChat's privacy encryption) with the merchant's API public key, so only its private key opens
   * it; hash_value is the SHA-1 of the part's plain (decrypted, uncompressed) text.
   */
  applySubMerchantFundFlowBill(query: Record<string, unknown>, sandboxBase: string): Json {
    // A provider's API: a direct merchant has no such product.
    if (this.settings.merchantKind === 'direct') throw notAProvider();
    const subMchid = query.sub_mchid;
    if (typeof subMchid !== 'string' || !subMchid) {
      throw new SandboxPayError(400, 'PARAM_ERROR', '输入源“/querystring/sub_mchid”映射到字段“子商户号”必填性规则校验失败，此字段为必填项', { field: 'sub_mchid', location: 'query' });
    }
    const billDate = this.validateBillDate(query.bill_date);
    const accountType = query.account_type;
    if (typeof accountType !== 'string' || !['BASIC', 'OPERATION', 'FEES'].includes(accountType)) {
      throw new SandboxPayError(400, 'PARAM_ERROR', 'account_type 必填，只能是 BASIC、OPERATION 或 FEES', { field: 'account_type', value: accountType, location: 'query' });
    }
    const algorithm = query.algorithm;
    if (algorithm !== 'AEAD_AES_256_GCM') {
      throw new SandboxPayError(400, 'PARAM_ERROR', algorithm === 'SM4_GCM' ? '沙箱只支持 AEAD_AES_256_GCM 加密算法' : 'algorithm 必填，只能是 AEAD_AES_256_GCM 或 SM4_GCM', {
        field: 'algorithm',
        value: algorithm,
        location: 'query',
      });
    }
    const tarType = query.tar_type as string | undefined;
    if (tarType !== undefined && tarType !== 'GZIP') {
      throw new SandboxPayError(400, 'PARAM_ERROR', 'tar_type 只能是 GZIP', { field: 'tar_type', value: tarType, location: 'query' });
    }
    checkBound(subMchid, this.settings.subMchids);
    const rows = this.fundRows(billDate, subMchid);
    if (!rows.length) throw new SandboxPayError(400, 'NO_STATEMENT_EXIST', '账单日期没有资金流水，不会生成账单文件');
    const plain = this.renderFund(rows);
    const size = this.subMerchantBillPartBytes > 0 ? this.subMerchantBillPartBytes : plain.length;
    const merchantKey = this.settings.keystore.merchant.publicKeyPem;
    this.pruneBillTokens();
    const list: Json[] = [];
    for (let offset = 0, sequence = 1; offset < plain.length; offset += size, sequence++) {
      const part = plain.subarray(offset, offset + size);
      const key = randomBytes(24).toString('base64'); // 32 characters
      const nonce = randomBytes(8).toString('hex'); // 16 characters
      const cipher = createCipheriv('aes-256-gcm', Buffer.from(key, 'utf8'), Buffer.from(nonce, 'utf8'));
      const body = tarType === 'GZIP' ? gzipSync(part) : part;
      const encrypted = Buffer.concat([cipher.update(body), cipher.final(), cipher.getAuthTag()]);
      const hash = createHash('sha1').update(part).digest('hex');
      const token = randomBytes(24).toString('base64url');
      this.state.billTokens.set(token, {
        token,
        kind: 'sub-merchant-fundflow',
        billDate,
        billType: accountType,
        gzip: tarType === 'GZIP',
        expiresAt: this.clock.now() + this.settings.billUrlTtlMs,
        hash,
        encrypted,
      });
      list.push({
        bill_sequence: sequence,
        download_url: `${sandboxBase}/v3/billdownload/file?token=${token}`,
        encrypt_key: publicEncrypt({ key: merchantKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, Buffer.from(key, 'utf8')).toString('base64'),
        hash_type: 'SHA1',
        hash_value: hash,
        nonce,
      });
    }
    return { download_bill_count: list.length, download_bill_list: list };
  }

  /** Control API: the next `count` bill files downloaded have one byte changed (0 turns it off). */
  tamperBillFiles(count: number): void {
    this.tamperNextBillFiles = count;
  }

  /** Control API: cut sub-merchant fund-flow bills into parts of at most `bytes` (0: one part). */
  setSubMerchantBillPartBytes(bytes: number): void {
    this.subMerchantBillPartBytes = bytes;
  }

  /** Drops expired download tokens (and their frozen files), then the oldest beyond the cap. */
  private pruneBillTokens(): void {
    const now = this.clock.now();
    for (const [token, entry] of this.state.billTokens) {
      if (now > entry.expiresAt) this.state.billTokens.delete(token);
    }
    for (const token of this.state.billTokens.keys()) {
      if (this.state.billTokens.size < MAX_BILL_TOKENS) break;
      this.state.billTokens.delete(token);
    }
  }

  /**
   * Control API (benchmarks, big-bill tests): serve a gzip file inside DATA_DIR as the ALL trade bill
   * of `date` (of `subMchid` only, when given). See readGzipBillFile for what is accepted and what
   * errors may say; its SHA-1 is computed over the uncompressed content, as WeChat's is.
   */
  async registerTradeBillFile(date: string, requested: string, subMchid?: string): Promise<{ path: string; hash: string; bytes: number }> {
    const file = await readGzipBillFile(this.settings.appDataDir, requested);
    this.externalBills.set(subMchid === undefined ? date : `${date}/${subMchid}`, { path: file.realPath, hash: file.hash });
    return { path: file.path, hash: file.hash, bytes: file.bytes };
  }

  /** The file behind a download token, exactly as frozen when applied for: plain CSV or gzip (not signed). */
  billFile(token: string | undefined): Buffer | Readable {
    const entry: BillToken | undefined = token ? this.state.billTokens.get(token) : undefined;
    if (!entry) throw new SandboxPayError(400, 'INVALID_REQUEST', '下载地址无效（token 不存在）');
    if (this.clock.now() > entry.expiresAt) {
      this.state.billTokens.delete(entry.token);
      throw new SandboxPayError(400, 'INVALID_REQUEST', '下载地址已过期，请重新申请账单');
    }
    if (entry.externalPath) return entry.gzip ? createReadStream(entry.externalPath) : createReadStream(entry.externalPath).pipe(createGunzip());
    const file = entry.encrypted ?? (entry.gzip ? gzipSync(entry.plain!) : entry.plain!);
    if (this.tamperNextBillFiles > 0 && file.length > 0) {
      this.tamperNextBillFiles--;
      const tampered = Buffer.from(file);
      tampered[Math.floor(tampered.length / 2)] ^= 0x01;
      return tampered;
    }
    return file;
  }

  private renderTrade(rows: TradeBillRow[]): Buffer {
    const totals = emptyTotals();
    let text = '\uFEFF' + TRADE_BILL_ALL_HEADER.join(',') + '\r\n';
    for (const row of rows) {
      addToTotals(totals, row);
      text += tradeBillLine(row);
    }
    return Buffer.from(text + summaryLines(totals), 'utf8');
  }

  private renderFund(rows: FundFlowRow[]): Buffer {
    return Buffer.from(renderFundFlowBill(rows), 'utf8');
  }

  /** `subMchid`: only that sub-merchant's trades (a provider's per-sub-merchant bill). */
  tradeRows(billDate: string, billType: string, subMchid?: string): TradeBillRow[] {
    const rows: Array<TradeBillRow & { at: number }> = [];
    const included = (tx: SandboxTransaction) => subMchid === undefined || partnerOf(tx)?.subMchid === subMchid;
    // What a payment's row and its refunds' rows say alike: the trade's own fields.
    const ofTrade = (tx: SandboxTransaction) => {
      const sub = partnerOf(tx)?.subMchid;
      return {
        appid: tx.appid,
        mchid: tx.mchid,
        ...(sub ? { subMchid: sub } : {}),
        openid: tx.openid,
        tradeType: tx.tradeType ?? 'JSAPI',
        bankType: tx.bankType ?? 'OTHERS',
        total: tx.total,
        body: tx.description,
        attach: tx.attach,
        rate: DEFAULT_RATE,
      };
    };
    if (billType === 'ALL' || billType === 'SUCCESS') {
      for (const tx of this.state.transactions.values()) {
        if (!tx.successTime || beijingDate(tx.successTime) !== billDate || !included(tx)) continue;
        rows.push({
          ...ofTrade(tx),
          at: tx.successTime,
          time: beijingDateTime(tx.successTime),
          transactionId: tx.transactionId!,
          outTradeNo: tx.outTradeNo,
          tradeState: 'SUCCESS',
          feeMilliFen: defaultFeeMilliFen(tx.total),
        });
      }
    }
    if (billType === 'ALL' || billType === 'REFUND') {
      for (const refund of this.state.refunds.values()) {
        if (refund.status !== 'SUCCESS' || !refund.successTime || beijingDate(refund.successTime) !== billDate) continue;
        const tx = this.state.transactions.get(refund.outTradeNo)!;
        if (!included(tx)) continue;
        rows.push({
          ...ofTrade(tx),
          at: refund.successTime,
          time: beijingDateTime(refund.successTime),
          transactionId: refund.transactionId,
          outTradeNo: refund.outTradeNo,
          tradeState: 'REFUND',
          refundId: refund.refundId,
          outRefundNo: refund.outRefundNo,
          refund: refund.refund,
          refundStatus: 'SUCCESS',
          feeMilliFen: -defaultFeeMilliFen(refund.refund),
        });
      }
    }
    return rows.sort((a, b) => a.at - b.at);
  }

  /** `subMchid`: only that sub-merchant's movements (its trades and their refunds). */
  private fundRows(billDate: string, subMchid?: string): FundFlowRow[] {
    const events: Array<{ at: number; row: Omit<FundFlowRow, 'balance'> }> = [];
    const included = (tx: SandboxTransaction | undefined) => subMchid === undefined || partnerOf(tx)?.subMchid === subMchid;
    for (const tx of this.state.transactions.values()) {
      if (!tx.successTime || beijingDate(tx.successTime) !== billDate || !included(tx)) continue;
      events.push({
        at: tx.successTime,
        row: { time: beijingDateTime(tx.successTime), businessId: tx.transactionId!, flowId: `FL${tx.transactionId}`, name: '交易', type: '交易', direction: '收入', amount: tx.total, applicant: '系统', remark: tx.description, voucher: tx.outTradeNo },
      });
    }
    for (const refund of this.state.refunds.values()) {
      if (refund.status !== 'SUCCESS' || !refund.successTime || beijingDate(refund.successTime) !== billDate) continue;
      if (!included(this.state.transactions.get(refund.outTradeNo))) continue;
      events.push({
        at: refund.successTime,
        row: { time: beijingDateTime(refund.successTime), businessId: refund.refundId, flowId: `FL${refund.refundId}`, name: '退款', type: '退款', direction: '支出', amount: refund.refund, applicant: this.settings.keystore.mchid, remark: refund.reason ?? '', voucher: refund.outRefundNo },
      });
    }
    let balance = 0;
    return events
      .sort((a, b) => a.at - b.at)
      .map(({ row }) => {
        balance += row.direction === '收入' ? row.amount : -row.amount;
        return { ...row, balance };
      });
  }

  /** Control reset: registered bill files, bill tampering and part size. */
  reset(): void {
    this.externalBills.clear();
    this.tamperNextBillFiles = 0;
    this.subMerchantBillPartBytes = 0;
  }
}
