import { HttpStatus, Injectable, Logger } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { In, Repository } from 'typeorm';
import { AuthCrypto } from '../auth/auth-crypto';
import { Clock } from '../common/clock';
import { AppError, BadRequestError, ConflictError, NotFoundError } from '../common/errors/app-error';
import { AppConfig } from '../config/app-config';
import { resolveSessionSecret } from '../config/session-secret';
import { isDuplicateKey } from '../database/lease.service';
import { CreateSubMerchantDto, SubMerchantDto, UpdateSubMerchantDto } from './dto/sub-merchant.dto';
import { SubMerchant } from './entities/sub-merchant.entity';
import type { MerchantRef } from '../wechat/pay/payment-gateway';

/** /admin/sub-merchants and subMchid on products exist in service-provider mode only. */
export class PartnerModeOffError extends AppError {
  constructor(what: string) {
    super(HttpStatus.NOT_FOUND, 'PARTNER_MODE_OFF', `${what}: this deployment is in direct mode (set WECHATPAY_SUB_MCHID for service-provider mode)`);
  }
}

export class MixedSubMerchantsError extends AppError {
  constructor(a: string, b: string) {
    super(HttpStatus.BAD_REQUEST, 'MIXED_SUB_MERCHANTS', `an order's items must all belong to one sub-merchant; these belong to ${a} and ${b}: order them separately`, {
      subMchids: [a, b],
    });
  }
}

export class SubMerchantUnavailableError extends AppError {
  constructor(subMchid: string, known: boolean) {
    super(
      HttpStatus.CONFLICT,
      'SUB_MERCHANT_DISABLED',
      known ? `sub-merchant ${subMchid} is disabled: its products cannot be ordered` : `sub-merchant ${subMchid} is not registered: its products cannot be ordered`,
      { subMchid },
    );
  }
}

export function subMerchantView(row: SubMerchant, defaultSubMchid: string | undefined): SubMerchantDto {
  return {
    subMchid: row.subMchid,
    name: row.name,
    subAppid: row.subAppid,
    hasSubAppSecret: row.subAppSecretEnc !== null,
    enabled: row.enabled === 1,
    isDefault: row.subMchid === defaultSubMchid,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

/**
 * Service-provider mode (issue 15): the sub-merchants as data. The default one (WECHATPAY_SUB_MCHID,
 * with WECHAT_SUB_APPID / WECHAT_SUB_APPSECRET) is seeded from config at start-up; more are added by
 * the operator. A sub-appid's secret is stored encrypted (AuthCrypto, like the OAuth tokens).
 */
@Injectable()
export class SubMerchantsService {
  private readonly logger = new Logger(SubMerchantsService.name);
  private cryptoInstance?: AuthCrypto;

  constructor(
    @InjectRepository(SubMerchant) private readonly rows: Repository<SubMerchant>,
    private readonly config: AppConfig,
    private readonly clock: Clock,
  ) {}

  /** The default sub-merchant's mchid; undefined in direct mode. */
  get defaultSubMchid(): string | undefined {
    return this.config.wechat.partner?.subMchid;
  }

  get partnerMode(): boolean {
    return this.config.wechat.partner !== undefined;
  }

  private get crypto(): AuthCrypto {
    this.cryptoInstance ??= new AuthCrypto(resolveSessionSecret(this.config));
    return this.cryptoInstance;
  }

  private requirePartner(what: string): void {
    if (!this.partnerMode) throw new PartnerModeOffError(what);
  }

  /** Start-up: the default sub-merchant from config, when it is not there yet. */
  async seedDefault(): Promise<void> {
    const partner = this.config.wechat.partner;
    if (!partner) return;
    const existing = await this.rows.findOneBy({ subMchid: partner.subMchid });
    if (existing) {
      // WECHAT_SUB_APPID set (or changed) after the first start: the default's account follows it, so
      // that its orders are paid under the account its shoppers log in through.
      if (partner.subApp && existing.subAppid !== partner.subApp.appid) {
        await this.rows.update({ subMchid: partner.subMchid }, { subAppid: partner.subApp.appid, subAppSecretEnc: this.crypto.encrypt(partner.subApp.appsecret), updatedAt: this.clock.now() });
        this.logger.log(`service-provider mode: default sub-merchant ${partner.subMchid}'s official account is now ${partner.subApp.appid} (WECHAT_SUB_APPID)`);
      }
      return;
    }
    const now = this.clock.now();
    try {
      await this.rows.insert({
        subMchid: partner.subMchid,
        name: `默认子商户 ${partner.subMchid}`,
        subAppid: partner.subApp?.appid ?? null,
        subAppSecretEnc: partner.subApp ? this.crypto.encrypt(partner.subApp.appsecret) : null,
        enabled: 1,
        createdAt: now,
        updatedAt: now,
      });
      this.logger.log(`service-provider mode: default sub-merchant ${partner.subMchid} registered`);
    } catch (error) {
      if (!isDuplicateKey(error)) throw error; // another instance seeded it first
    }
  }

  async list(): Promise<SubMerchantDto[]> {
    this.requirePartner('GET /admin/sub-merchants');
    return (await this.rows.find({ order: { id: 'ASC' } })).map((r) => subMerchantView(r, this.defaultSubMchid));
  }

  async create(dto: CreateSubMerchantDto): Promise<SubMerchantDto> {
    this.requirePartner('POST /admin/sub-merchants');
    if ((dto.subAppid === undefined) !== (dto.subAppSecret === undefined)) {
      throw new BadRequestError('VALIDATION_FAILED', 'subAppid and subAppSecret go together: give both (the sub-merchant has its own official account) or neither');
    }
    const now = this.clock.now();
    try {
      await this.rows.insert({
        subMchid: dto.subMchid,
        name: dto.name,
        subAppid: dto.subAppid ?? null,
        subAppSecretEnc: dto.subAppSecret ? this.crypto.encrypt(dto.subAppSecret) : null,
        enabled: dto.enabled === false ? 0 : 1,
        createdAt: now,
        updatedAt: now,
      });
    } catch (error) {
      if (isDuplicateKey(error)) throw new ConflictError('SUB_MERCHANT_EXISTS', `sub-merchant ${dto.subMchid} is already registered (PATCH /admin/sub-merchants/${dto.subMchid} to change it)`);
      throw error;
    }
    return subMerchantView(await this.rows.findOneByOrFail({ subMchid: dto.subMchid }), this.defaultSubMchid);
  }

  async update(subMchid: string, dto: UpdateSubMerchantDto): Promise<{ before: SubMerchantDto; after: SubMerchantDto }> {
    this.requirePartner('PATCH /admin/sub-merchants');
    const existing = await this.rows.findOneBy({ subMchid });
    if (!existing) throw new NotFoundError(`sub-merchant ${subMchid}`, 'SUB_MERCHANT_NOT_FOUND');
    const changes: Partial<SubMerchant> = { updatedAt: this.clock.now() };
    if (dto.name !== undefined) changes.name = dto.name;
    if (dto.enabled !== undefined) changes.enabled = dto.enabled ? 1 : 0;
    if (dto.subAppid === null) {
      if (dto.subAppSecret !== undefined) throw new BadRequestError('VALIDATION_FAILED', 'subAppSecret cannot be set while removing subAppid (null)');
      changes.subAppid = null;
      changes.subAppSecretEnc = null;
    } else if (dto.subAppid !== undefined && dto.subAppid !== existing.subAppid) {
      if (dto.subAppSecret === undefined) throw new BadRequestError('VALIDATION_FAILED', 'a new subAppid needs its subAppSecret in the same request');
      changes.subAppid = dto.subAppid;
      changes.subAppSecretEnc = this.crypto.encrypt(dto.subAppSecret);
    } else if (dto.subAppSecret !== undefined) {
      if (!existing.subAppid && dto.subAppid === undefined) throw new BadRequestError('VALIDATION_FAILED', 'subAppSecret without a subAppid: give subAppid too');
      changes.subAppSecretEnc = this.crypto.encrypt(dto.subAppSecret);
    }
    await this.rows.update({ subMchid }, changes);
    return {
      before: subMerchantView(existing, this.defaultSubMchid),
      after: subMerchantView(await this.rows.findOneByOrFail({ subMchid }), this.defaultSubMchid),
    };
  }

  /** Products: the sub-merchant a product is given (or the default); 400 when it is not registered. */
  async resolveForProduct(subMchid: string | undefined): Promise<string | null> {
    if (subMchid === undefined) return this.defaultSubMchid ?? null;
    this.requirePartner('subMchid on a product');
    if (!(await this.rows.existsBy({ subMchid }))) {
      throw new BadRequestError('UNKNOWN_SUB_MERCHANT', `sub-merchant ${subMchid} is not registered (POST /admin/sub-merchants first)`, { subMchid });
    }
    return subMchid;
  }

  /**
   * Checkout: the one sub-merchant an order's products belong to (products without one belong to the
   * default); 400 MIXED_SUB_MERCHANTS naming two of them, 409 when it is disabled or not registered.
   * Direct mode: null.
   */
  async forOrder(productSubMchids: Array<string | null>): Promise<string | null> {
    if (!this.partnerMode) return null;
    const wanted = [...new Set(productSubMchids.map((s) => s ?? this.defaultSubMchid!))];
    if (wanted.length > 1) throw new MixedSubMerchantsError(wanted[0], wanted[1]);
    const subMchid = wanted[0];
    const row = (await this.rows.findBy({ subMchid: In([subMchid]) }))[0];
    if (!row || row.enabled !== 1) throw new SubMerchantUnavailableError(subMchid, row !== undefined);
    return subMchid;
  }

  async isRegistered(subMchid: string): Promise<boolean> {
    return this.rows.existsBy({ subMchid });
  }

  /**
   * The daily reconciliation's sub-merchants: the default one (WECHATPAY_SUB_MCHID, always: the
   * deployment is configured for it) and every enabled registered one, in registration order. Direct
   * mode: none.
   */
  async reconciledSubMchids(): Promise<string[]> {
    if (!this.partnerMode) return [];
    const enabled = (await this.rows.find({ select: ['subMchid'], where: { enabled: 1 }, order: { id: 'ASC' } })).map((r) => r.subMchid);
    return [...new Set([this.defaultSubMchid!, ...enabled])];
  }

  /**
   * The order's sub-merchant for the payment port, with its own official account (sub_appid) when it
   * has one registered (jsapi is then paid under it). Direct mode (no subMchid): undefined, no query.
   */
  async merchantRef(order: { subMchid: string | null }): Promise<MerchantRef | undefined> {
    if (!order.subMchid) return undefined;
    const row = await this.rows.findOne({ select: { subMchid: true, subAppid: true }, where: { subMchid: order.subMchid } });
    return { subMchid: order.subMchid, ...(row?.subAppid ? { subAppid: row.subAppid } : {}) };
  }

  /** The decrypted AppSecret of a sub-merchant's own official account (for its OAuth login). */
  async subAppSecret(subMchid: string): Promise<{ appid: string; appsecret: string } | undefined> {
    const row = await this.rows.findOneBy({ subMchid });
    if (!row?.subAppid || !row.subAppSecretEnc) return undefined;
    return { appid: row.subAppid, appsecret: this.crypto.decrypt(row.subAppSecretEnc) };
  }
}
