import { siteHosts } from '../common/loopback';
import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { Clock } from '../common/clock';
import { BadRequestError } from '../common/errors/app-error';
import { AppConfig } from '../config/app-config';
import { jssdkSignature, urlForSignature } from '../wechat/mp/jssdk-signature';
import { WechatTokenService } from './wechat-token.service';
import { ModuleRef } from '@nestjs/core';
import { ShopperAccounts } from '../auth/shopper-accounts';

export interface WxConfig {
  appId: string;
  timestamp: number;
  nonceStr: string;
  signature: string;
  jsApiList: string[];
}

/** Signs wx.config for a page of this shop, with the cached jsapi_ticket. */
@Injectable()
export class JssdkService implements OnModuleInit {
  private readonly logger = new Logger(JssdkService.name);
  private readonly allowed: Set<string>;

  constructor(
    private readonly tokens: WechatTokenService,
    private readonly config: AppConfig,
    private readonly clock: Clock,
    private readonly moduleRef: ModuleRef,
  ) {
    this.allowed = new Set(config.jssdk.allowedDomains);
    // In sandbox mode the app's own pages are a JS-safe domain, as the sandbox registers them.
    // (Both loopback names when it is one: the shop opened on 127.0.0.1 instead of localhost.)
    if (config.wechatMode === 'sandbox') for (const host of siteHosts(config.publicBaseUrl)) this.allowed.add(host);
  }

  onModuleInit(): void {
    if (this.config.wechatMode === 'live' && this.allowed.size === 0) {
      this.logger.warn(
        'JSSDK_ALLOWED_DOMAINS is empty while WECHAT_MODE=live: every GET /jssdk/config will answer 400 URL_NOT_ALLOWED and no page can call wx.config. ' +
          "Set it to the official account's JS interface safe domains (JS接口安全域名), comma-separated, e.g. JSSDK_ALLOWED_DOMAINS=shop.example.com",
      );
    }
  }

  /** `subMchid` (service-provider mode): sign for that sub-merchant's own official account (ShopperAccounts). */
  async configFor(pageUrl: string, subMchid?: string): Promise<WxConfig> {
    let url: URL;
    try {
      url = new URL(pageUrl);
    } catch {
      throw new BadRequestError('INVALID_URL', 'url must be the absolute URL of the page calling wx.config');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new BadRequestError('INVALID_URL', 'url must be an http(s) URL');
    if (!this.allowed.has(url.hostname.toLowerCase())) {
      throw new BadRequestError('URL_NOT_ALLOWED', `${url.hostname} is not in JSSDK_ALLOWED_DOMAINS; wx.config would fail on it`);
    }
    const tokens = subMchid === undefined ? this.tokens : (await this.moduleRef.get(ShopperAccounts, { strict: false }).forSubMerchant(subMchid)).tokens;
    const ticket = await tokens.getJsapiTicket();
    // randomUUID draws from a cached entropy pool: far cheaper per call than randomBytes.
    const nonceStr = randomUUID().replace(/-/g, '').slice(0, 16);
    const timestamp = this.clock.nowSeconds();
    // Signed exactly as the page will present it: everything before '#', not re-encoded.
    const signedUrl = urlForSignature(pageUrl);
    return {
      // The official account whose ticket signed it (the sub-merchant's with WECHAT_SUB_APPID).
      appId: tokens.appid,
      timestamp,
      nonceStr,
      signature: jssdkSignature({ jsapiTicket: ticket, nonceStr, timestamp, url: signedUrl }),
      jsApiList: this.config.jssdk.apiList,
    };
  }
}
