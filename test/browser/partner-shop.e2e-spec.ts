/**
 * The demo shop in service-provider mode (issue 15), in Chromium as a WeChat phone: a sub-merchant's
 * storefront link (/?subMchid=…) logs in through that sub-merchant's own official account, signs
 * wx.config with it and pays its order (sub_appid + sub_openid); a shopper logged in through the
 * provider's account who buys that sub-merchant's product is sent to log in through its account.
 * Screenshots in test-output/browser/partner-shop-*.png.
 *
 * Needs Chromium (CHROMIUM_PATH, default /usr/bin/chromium); skipped without it unless REQUIRE_BROWSER=1.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { WechatPayHttp } from '../../src/wechat/pay/wechat-pay.http';
import { Shop } from '../helpers/shop';
import { CHROMIUM, SHOTS, WECHAT_PHONE, browserSuite } from '../helpers/browser';

browserSuite("demo shop through a sub-merchant's own official account (service-provider mode) in Chromium", () => {
  jest.setTimeout(120_000);
  const A = '1900000201';
  const B = '1900000202';
  const B_APPID = 'wxb0b0b0b0b0b0b0b3';
  const B_SECRET = 'B0b0AppSecret0Of0Sub0Merchant003';
  let shop: Shop;
  let browser: Browser;
  let productOfB: number;
  const problems: string[] = [];

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    shop = await Shop.start({ env: { WECHATPAY_SUB_MCHID: A } });
    await shop.sandbox.bindSubOfficialAccount(B, B_APPID, B_SECRET);
    await shop.admin().post('/admin/sub-merchants').send({ subMchid: B, name: '二号店', subAppid: B_APPID, subAppSecret: B_SECRET }).expect(201);
    productOfB = (await shop.admin().post('/admin/products').send({ name: 'B 店帆布袋', price: 1280, subMchid: B }).expect(201)).body.id as number;
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  });
  afterAll(async () => {
    await browser?.close();
    await shop?.close();
  });

  async function phone(): Promise<Page> {
    const context = await browser.newContext({ ...WECHAT_PHONE, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' });
    const page = await context.newPage();
    page.on('console', (msg) => {
      if (msg.type() === 'error' && !/the server responded with a status of (4\d\d)/.test(msg.text())) problems.push(`console.error: ${msg.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
    page.setDefaultTimeout(15_000);
    return page;
  }

  async function consent(page: Page, openid: string, appid: string): Promise<void> {
    await page.waitForURL(/\/sandbox\/connect\/oauth2\/authorize/);
    expect(new URL(page.url()).searchParams.get('appid')).toBe(appid);
    await page.fill('#create-user input[name=openid]', openid);
    await page.click('#create-user button[type=submit]');
  }

  async function buyAndPay(page: Page): Promise<string> {
    await page.waitForSelector(`[data-inc="${productOfB}"]`);
    await page.click(`[data-inc="${productOfB}"]`);
    await page.click('#checkout');
    const cashier = page.frameLocator('#wx-sandbox-cashier iframe');
    await cashier.locator('#pay').waitFor();
    await cashier.locator('#pay').click();
    await page.waitForSelector('#result[data-status="PAID"]');
    return /#\/result\/(.+)$/.exec(page.url())![1];
  }

  it("B's storefront (/?subMchid=B) logs in through B's account and pays B's order as its sub_openid", async () => {
    const page = await phone();
    await page.goto(`${shop.baseUrl}/?subMchid=${B}`);
    await consent(page, 'o_browser_b_shopper', B_APPID);
    const no = await buyAndPay(page);
    await page.screenshot({ path: join(SHOTS, 'partner-shop-paid.png'), fullPage: true });
    const merchant = await shop.sandbox.merchant();
    const atWechat = await shop.t.app
      .get(WechatPayHttp)
      .request<Record<string, unknown>>({ method: 'GET', path: `/v3/pay/partner/transactions/out-trade-no/${no}`, query: { sp_mchid: merchant.mchid, sub_mchid: B } });
    expect(atWechat.body).toMatchObject({ sub_appid: B_APPID, sub_mchid: B, payer: { sub_openid: 'o_browser_b_shopper' }, trade_state: 'SUCCESS' });
    expect(problems).toEqual([]);
  });

  it("a shopper logged in through the provider's account who buys B's product is sent to log in through B's, then pays", async () => {
    const page = await phone();
    await page.goto(`${shop.baseUrl}/`);
    await consent(page, 'o_browser_provider_shopper', (await shop.sandbox.merchant()).appid);
    await page.waitForSelector(`[data-inc="${productOfB}"]`);
    await page.click(`[data-inc="${productOfB}"]`);
    await page.click('#checkout');
    // The pay answer (WECHAT_ACCOUNT_MISMATCH) sends the phone through B's account and back as B's storefront.
    await consent(page, 'o_browser_provider_shopper', B_APPID);
    await page.waitForURL((url) => url.searchParams.get('subMchid') === B);
    const no = await buyAndPay(page);
    expect((await shop.admin().get(`/admin/orders/${no}`).expect(200)).body).toMatchObject({ status: 'PAID', subMchid: B });
    expect(problems).toEqual([]);
  });
});
