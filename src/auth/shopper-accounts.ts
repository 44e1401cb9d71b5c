import { HttpStatus, Injectable, Optional } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { createHash } from 'node:crypto';
import { Repository } from 'typeorm';
import { Clock } from '../common/clock';
import { AppError, NotFoundError } from '../common/errors/app-error';
import { SharedStore } from '../common/store/shared-store';
import { AppConfig } from '../config/app-config';
import { resolveSessionSecret } from '../config/session-secret';
import { WechatTokenService } from '../jssdk/wechat-token.service';
import { Metrics } from '../metrics/metrics.service';
import { SubMerchant } from '../payment/entities/sub-merchant.entity';
import { PartnerModeOffError, SubMerchantUnavailableError } from '../payment/sub-merchants.service';
import { WechatMpClient } from '../wechat/mp/wechat-mp.client';
import { WechatCredentials } from '../wechat/wechat-credentials';
import { mpClientFor } from '../wechat/wechat.module';
import { AuthCrypto } from './auth-crypto';

/** An official account shoppers log in through: its OAuth/user-info client and its access_token/jsapi_ticket. */
export interface ShopperAccount {
  appid: string;
  mp: WechatMpClient;
  tokens: WechatTokenService;
}

/** How long a sub-merchant's row is trusted before it is read again (a PATCH shows within this). */
const ROW_TTL_MS = 30_000;

/**
 * The official accounts shoppers log in through and whose jsapi_ticket signs wx.config: the default
 * one (WechatModule's: the merchant's, or in service-provider mode WECHAT_SUB_APPID's / sp_appid), the
 * provider's own (sp_appid), and in service-provider mode each sub-merchant's own official account
 * registered as data (sub_merchants.sub_appid + its encrypted AppSecret). A sub-merchant without one
 * is served by the provider's. An openid is per account, so a shopper logging in through a
 * sub-merchant's account is another identity (users / user_identities under that appid).
 */
@Injectable()
export class ShopperAccounts {
  readonly default: ShopperAccount;
  private readonly byAppidCache = new Map<string, { secretHash: string; account: ShopperAccount }>();
  private readonly rowCache = new Map<string, { row: SubMerchant | null; readAt: number }>();
  private cryptoInstance?: AuthCrypto;

  constructor(
    @InjectRepository(SubMerchant) private readonly rows: Repository<SubMerchant>,
    mp: WechatMpClient,
    tokens: WechatTokenService,
    private readonly credentials: WechatCredentials,
    private readonly config: AppConfig,
    private readonly store: SharedStore,
    private readonly clock: Clock,
    @Optional() private readonly metrics?: Metrics,
  ) {
    this.default = { appid: mp.appid, mp, tokens };
  }

  private get crypto(): AuthCrypto {
    this.cryptoInstance ??= new AuthCrypto(resolveSessionSecret(this.config));
    return this.cryptoInstance;
  }

  /** The account for `appid` and `appsecret`, built once (again when the secret changes). */
  private account(appid: string, appsecret: string): ShopperAccount {
    if (appid === this.default.appid) return this.default;
    const secretHash = createHash('sha256').update(appsecret).digest('hex');
    const cached = this.byAppidCache.get(appid);
    if (cached?.secretHash === secretHash) return cached.account;
    const mp = mpClientFor({ appid, appsecret }, this.config, this.metrics);
    const account = { appid, mp, tokens: new WechatTokenService(mp, this.store, this.config, this.clock, this.metrics) };
    this.byAppidCache.set(appid, { secretHash, account });
    return account;
  }

  /** The provider's own official account (sp_appid; the merchant's in direct mode). */
  private provider(): ShopperAccount {
    return this.account(this.credentials.appid, this.credentials.appsecret);
  }

  private async row(subMchid: string): Promise<SubMerchant | null> {
    const cached = this.rowCache.get(subMchid);
    if (cached && this.clock.nowMs() - cached.readAt < ROW_TTL_MS) return cached.row;
    const row = await this.rows.findOneBy({ subMchid });
    this.rowCache.set(subMchid, { row, readAt: this.clock.nowMs() });
    return row;
  }

  /**
   * The account a shopper of `subMchid` logs in through (`?subMchid=` on /auth/wechat/authorize and
   * /jssdk/config): its own official account, else the provider's. Without `subMchid`: the default.
   * Direct mode: 404 PARTNER_MODE_OFF; an unknown sub-merchant 404, a disabled one 409.
   */
  async forSubMerchant(subMchid: string | undefined): Promise<ShopperAccount> {
    if (subMchid === undefined) return this.default;
    if (!this.config.wechat.partner) throw new PartnerModeOffError('subMchid');
    const row = await this.row(subMchid);
    if (!row) throw new NotFoundError(`sub-merchant ${subMchid}`, 'SUB_MERCHANT_NOT_FOUND');
    if (row.enabled !== 1) throw new SubMerchantUnavailableError(subMchid, true);
    if (!row.subAppid || !row.subAppSecretEnc) return this.provider();
    return this.account(row.subAppid, this.crypto.decrypt(row.subAppSecretEnc));
  }

  /** The account a login was started with (its OAuth state names the appid), or a user's for a profile refresh. */
  async byAppid(appid: string | null | undefined): Promise<ShopperAccount> {
    if (!appid || appid === this.default.appid) return this.default;
    if (appid === this.credentials.appid) return this.provider();
    const row = await this.rows.findOne({ where: { subAppid: appid }, order: { id: 'ASC' } });
    if (!row?.subAppSecretEnc) {
      throw new AppError(HttpStatus.UNAUTHORIZED, 'LOGIN_ACCOUNT_GONE', `the official account ${appid} this login was made through is no longer registered: log in again`);
    }
    return this.account(appid, this.crypto.decrypt(row.subAppSecretEnc));
  }
}
