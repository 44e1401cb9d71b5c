import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import type { SandboxPartnerInfo } from './sandbox-partner';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface SandboxUser {
  openid: string;
  nickname: string;
  avatarUrl: string;
  unionid?: string;
  sex: number;
  createdAt: number;
  /** Official accounts other than the merchant's own this user has authorized (the sub-merchant's, by appid). */
  appids?: string[];
}

export interface OAuthCode {
  code: string;
  openid: string;
  scope: string;
  /** The official account the code was issued for (undefined: the merchant's own). */
  appid?: string;
  expiresAt: number;
  used: boolean;
}

/** A user of the sandbox's mini-program, by mini-program openid (its unionid links it to an official-account user). */
export interface SandboxMiniprogramUser {
  openid: string;
  unionid?: string;
  createdAt: number;
}

/** A wx.login code: single use, 5 minutes. */
export interface MiniprogramCode {
  code: string;
  openid: string;
  expiresAt: number;
  used: boolean;
}

export interface UserToken {
  accessToken: string;
  refreshToken: string;
  openid: string;
  scope: string;
  expiresAt: number;
  refreshExpiresAt: number;
}

export interface BasicToken {
  token: string;
  expiresAt: number;
  /** Set when a newer GET cgi-bin/token replaced it: it keeps working until then (5 minutes). */
  graceUntil?: number;
  invalidated?: boolean;
  /** The official account it belongs to (undefined: the merchant's own). */
  appid?: string;
}

/** The basic stable_token and jsapi_ticket of one official account. */
export interface AppTokens {
  stableToken?: BasicToken;
  ticket?: { ticket: string; expiresAt: number };
}

export interface PrepayRecord {
  prepayId: string;
  issuedAt: number;
}

export type SandboxTradeState = 'NOTPAY' | 'USERPAYING' | 'SUCCESS' | 'REFUND' | 'CLOSED' | 'PAYERROR';

export interface SandboxTransaction {
  appid: string;
  mchid: string;
  outTradeNo: string;
  description: string;
  /** Canonical JSON of the parameters that must match on a repeated prepay. */
  fingerprint: string;
  notifyUrl: string;
  attach?: string;
  total: number;
  currency: string;
  openid: string;
  timeExpire?: number;
  createdAt: number;
  prepays: PrepayRecord[];
  state: SandboxTradeState;
  transactionId?: string;
  successTime?: number;
  closedAt?: number;
  bankType?: string;
  /** Injected by the control API (no prepay happened). */
  injected?: boolean;
  /** scene_info.payer_client_ip of the prepay, if the merchant sent one (what WeChat was told). */
  payerClientIp?: string;
  /** JSAPI (also mini-program pay), MWEB (H5) or NATIVE; absent on state written before: JSAPI. */
  tradeType?: SandboxTradeType;
  /** Ordered through the APIv2 front: its notifications are v2 XML signed with this algorithm. */
  v2?: { signType: 'MD5' | 'HMAC-SHA256' };
  /** Ordered through the partner (服务商) front: its sub-merchant; queries and notifications answer in the partner shape. */
  partner?: SandboxPartnerInfo;
}

export type SandboxTradeType = 'JSAPI' | 'MWEB' | 'NATIVE';

export type SandboxRefundStatus = 'PROCESSING' | 'SUCCESS' | 'CLOSED' | 'ABNORMAL';

export interface SandboxRefund {
  refundId: string;
  outRefundNo: string;
  outTradeNo: string;
  transactionId: string;
  fingerprint: string;
  reason?: string;
  notifyUrl?: string;
  refund: number;
  total: number;
  currency: string;
  status: SandboxRefundStatus;
  createdAt: number;
  successTime?: number;
  /** What PROCESSING turns into once the delay has passed. */
  outcome: Exclude<SandboxRefundStatus, 'PROCESSING'>;
  completesAt: number;
  /** Asked for through the APIv2 front: its notification is v2 XML with req_info. */
  v2?: true;
}

export interface BillToken {
  token: string;
  kind: 'trade' | 'fundflow' | 'sub-merchant-fundflow';
  billDate: string;
  billType: string;
  gzip: boolean;
  expiresAt: number;
  /** SHA-1 of the plain file, as answered when applied for. */
  hash: string;
  /** The plain file, frozen when applied for (generated bills). */
  plain?: Buffer;
  /** An encrypted part (sub-merchant fund-flow bill): served exactly as it is (gzip, when asked for, is inside). */
  encrypted?: Buffer;
  /** A registered gzip file (control API), fixed when applied for. */
  externalPath?: string;
}

interface PersistedState {
  version: 1;
  users: SandboxUser[];
  transactions: SandboxTransaction[];
  refunds: SandboxRefund[];
}

/**
 * All of the simulated WeChat's data, in memory. Users, transactions and refunds are optionally
 * written (debounced, atomically) to DATA_DIR/sandbox/state.json so restarts of `npm start` keep
 * working; tokens, codes and tickets are short-lived and are not.
 */
@Injectable()
export class SandboxState implements OnModuleDestroy {
  private readonly logger = new Logger(SandboxState.name);
  users = new Map<string, SandboxUser>();
  codes = new Map<string, OAuthCode>();
  miniprogramUsers = new Map<string, SandboxMiniprogramUser>();
  miniprogramCodes = new Map<string, MiniprogramCode>();
  userTokens = new Map<string, UserToken>();
  refreshTokens = new Map<string, UserToken>();
  basicTokens = new Map<string, BasicToken>();
  stableToken?: BasicToken;
  ticket?: { ticket: string; expiresAt: number };
  /** stable_token and ticket of the other official accounts (the sub-merchant's), by appid; the merchant's own are above. */
  otherAppTokens = new Map<string, AppTokens>();
  transactions = new Map<string, SandboxTransaction>();
  transactionIds = new Map<string, string>();
  prepayIds = new Map<string, string>();
  refunds = new Map<string, SandboxRefund>();
  billTokens = new Map<string, BillToken>();
  private saveTimer?: NodeJS.Timeout;
  private file?: string;

  /** Starts persistence in `dir` (loading what is there). */
  enablePersistence(dir: string): void {
    mkdirSync(dir, { recursive: true });
    this.file = join(dir, 'state.json');
    if (!existsSync(this.file)) return;
    try {
      const data = JSON.parse(readFileSync(this.file, 'utf8')) as PersistedState;
      for (const user of data.users ?? []) this.users.set(user.openid, user);
      for (const tx of data.transactions ?? []) this.addTransaction(tx);
      for (const refund of data.refunds ?? []) this.refunds.set(refund.outRefundNo, refund);
      this.logger.log(`sandbox state loaded: ${this.users.size} users, ${this.transactions.size} transactions, ${this.refunds.size} refunds`);
    } catch (error) {
      this.logger.warn(`sandbox state in ${this.file} unreadable, starting empty: ${(error as Error).message}`);
    }
  }

  addTransaction(tx: SandboxTransaction): void {
    this.transactions.set(tx.outTradeNo, tx);
    for (const p of tx.prepays) this.prepayIds.set(p.prepayId, tx.outTradeNo);
    if (tx.transactionId) this.transactionIds.set(tx.transactionId, tx.outTradeNo);
  }

  /** Call after any change of users, transactions or refunds. */
  changed(): void {
    if (!this.file || this.saveTimer) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      this.save();
    }, 300);
    this.saveTimer.unref();
  }

  private save(): void {
    if (!this.file) return;
    const data: PersistedState = {
      version: 1,
      users: [...this.users.values()],
      transactions: [...this.transactions.values()],
      refunds: [...this.refunds.values()],
    };
    const tmp = `${this.file}.${process.pid}.tmp`;
    try {
      writeFileSync(tmp, JSON.stringify(data));
      renameSync(tmp, this.file);
    } catch (error) {
      this.logger.warn(`could not save sandbox state: ${(error as Error).message}`);
    }
  }

  reset(): void {
    for (const map of [
      this.users,
      this.codes,
      this.miniprogramUsers,
      this.miniprogramCodes,
      this.userTokens,
      this.refreshTokens,
      this.basicTokens,
      this.transactions,
      this.transactionIds,
      this.prepayIds,
      this.refunds,
      this.billTokens,
    ]) {
      map.clear();
    }
    this.stableToken = undefined;
    this.ticket = undefined;
    this.otherAppTokens.clear();
    this.changed();
  }

  onModuleDestroy(): void {
    if (this.saveTimer) {
      clearTimeout(this.saveTimer);
      this.saveTimer = undefined;
      this.save();
    }
  }
}
