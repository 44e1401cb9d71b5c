import { HttpStatus, Inject, Injectable, Logger } from '@nestjs/common';
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Clock } from '../common/clock';
import { AppError } from '../common/errors/app-error';
import { WechatPayApiError } from '../wechat/pay/errors';
import { FundFlowAccount, MerchantRef, PAYMENT_GATEWAY, PaymentGateway, TradeBillKind } from '../wechat/pay/payment-gateway';
import { PartnerModeOffError } from '../payment/sub-merchants.service';
import { parseBillDate } from './bill-date';

/** WeChat answered that the bill does not exist (yet). */
export class BillNotAvailableError extends AppError {
  constructor(code: string, message: string) {
    super(HttpStatus.NOT_FOUND, 'BILL_NOT_AVAILABLE', `WeChat has no bill for that day${code === 'NO_STATEMENT_EXIST' ? ' (no trades that day)' : ' yet'}: ${code} ${message}`, { wechatCode: code, wechatMessage: message });
  }
}

export interface DownloadedBill {
  /** The verified, decompressed CSV. Read it once; it is deleted when closed. */
  stream: Readable;
  filename: string;
}

/**
 * Bill download through the payment port (APIv3: apply, download at once — the download_url is
 * short-lived —, verify the SHA-1 of the plain file, gunzip; APIv2: downloadbill). The file is spooled to a temporary file while it is checked, so a caller never
 * receives a bill whose hash did not match.
 */
@Injectable()
export class BillingService {
  private readonly logger = new Logger(BillingService.name);

  constructor(
    @Inject(PAYMENT_GATEWAY) private readonly gateway: PaymentGateway,
    private readonly clock: Clock,
  ) {}

  /** `merchant`: a provider's bill of one sub-merchant (checked by the caller); without it, the provider's bill. */
  async tradeBill(dateText: unknown, type: unknown, merchant?: MerchantRef): Promise<DownloadedBill> {
    const { date } = parseBillDate(dateText, this.clock.nowMs());
    const billType = (type ?? 'ALL') as TradeBillKind;
    if (!['ALL', 'SUCCESS', 'REFUND'].includes(billType)) throw new AppError(HttpStatus.BAD_REQUEST, 'INVALID_BILL_TYPE', 'type must be ALL, SUCCESS or REFUND');
    const bill = await this.explain(() => this.gateway.tradeBill(date, billType, merchant));
    return { stream: await this.spool(bill), filename: `tradebill-${date}-${billType}${merchant ? `-${merchant.subMchid}` : ''}.csv` };
  }

  async fundFlowBill(dateText: unknown, account: unknown): Promise<DownloadedBill> {
    const { date } = parseBillDate(dateText, this.clock.nowMs());
    const accountType = (account ?? 'BASIC') as FundFlowAccount;
    if (!['BASIC', 'OPERATION', 'FEES'].includes(accountType)) throw new AppError(HttpStatus.BAD_REQUEST, 'INVALID_ACCOUNT', 'account must be BASIC, OPERATION or FEES');
    const bill = await this.explain(() => this.gateway.fundFlowBill(date, accountType));
    return { stream: await this.spool(bill), filename: `fundflowbill-${date}-${accountType}.csv` };
  }

  /**
   * A provider's fund-flow bill of one sub-merchant (every part decrypted and hash-checked by the
   * adapter, then spooled: a tampered part is a 502, never a partial file). `merchant` is checked by
   * the caller; a direct deployment has no such bill (PartnerModeOffError, 404); the APIv2 adapter answers 404 NOT_ON_APIV2.
   */
  async subMerchantFundFlowBill(dateText: unknown, account: unknown, merchant: MerchantRef): Promise<DownloadedBill> {
    const { date } = parseBillDate(dateText, this.clock.nowMs());
    const accountType = (account ?? 'BASIC') as FundFlowAccount;
    if (!['BASIC', 'OPERATION', 'FEES'].includes(accountType)) throw new AppError(HttpStatus.BAD_REQUEST, 'INVALID_ACCOUNT', 'account must be BASIC, OPERATION or FEES');
    const download = this.gateway.subMerchantFundFlowBill?.bind(this.gateway);
    if (!download) throw new PartnerModeOffError('GET /admin/bills/sub-merchant-fundflow');
    const bill = await this.explain(() => download(date, accountType, merchant));
    return { stream: await this.spool(bill), filename: `sub-merchant-fundflowbill-${date}-${accountType}-${merchant.subMchid}.csv` };
  }

  /**
   * For reconciliation: the ALL trade bill (of `merchant`, a provider's sub-merchant) as a stream whose end fails if the hash does not match, or
   * null when WeChat has no statement for that day (NO_STATEMENT_EXIST: no trades that day — not a
   * failure; STATEMENT_CREATING, a bill not ready yet, still is one).
   */
  async tradeBillStream(date: string, merchant?: MerchantRef): Promise<Readable | null> {
    try {
      return await this.explain(() => this.gateway.tradeBill(date, 'ALL', merchant));
    } catch (error) {
      if (error instanceof BillNotAvailableError && error.details?.wechatCode === 'NO_STATEMENT_EXIST') return null;
      throw error;
    }
  }

  private async explain(download: () => Promise<Readable>): Promise<Readable> {
    try {
      return await download();
    } catch (error) {
      if (error instanceof WechatPayApiError && ['NO_STATEMENT_EXIST', 'STATEMENT_CREATING'].includes(error.wechatCode)) {
        throw new BillNotAvailableError(error.wechatCode, error.wechatMessage);
      }
      if (error instanceof WechatPayApiError && error.httpStatus === 400 && error.wechatCode === 'INVALID_REQUEST') {
        throw new AppError(HttpStatus.BAD_REQUEST, 'BILL_DATE_REJECTED', `WeChat refused the date: ${error.wechatMessage}`, { wechatCode: error.wechatCode });
      }
      throw error;
    }
  }

  private async spool(bill: Readable): Promise<Readable> {
    const dir = mkdtempSync(join(tmpdir(), 'whp-bill-'));
    const file = join(dir, 'bill.csv');
    try {
      await pipeline(bill, createWriteStream(file));
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
    const stream = createReadStream(file);
    stream.on('close', () => rmSync(dir, { recursive: true, force: true }));
    return stream;
  }
}
