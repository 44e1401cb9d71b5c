/**
 * The demo shop picks the way to pay by where it runs (issue 13), in Chromium against the whole app in
 * sandbox mode: a phone browser outside WeChat pays through the sandbox's H5 cashier and lands on the
 * result page; a desktop shows the QR code, which the test "scans" through the sandbox; an order started
 * in WeChat and paid on the desktop ends PAID once, with two attempts, the first CLOSED.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ADMIN_TOKEN, Shop } from '../helpers/shop';
import { startTestApp } from '../helpers/test-app';
import { CHROMIUM, SHOTS, browserSuite } from '../helpers/browser';


const PHONE_UA = 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36';
const WECHAT_UA = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN';
const PHONE = { viewport: { width: 375, height: 667 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, userAgent: PHONE_UA };
const WECHAT = { ...PHONE, userAgent: WECHAT_UA };
const DESKTOP = { viewport: { width: 1280, height: 860 } };

browserSuite('demo shop: the way to pay by user agent', () => {
  jest.setTimeout(120_000);
  let shop: Shop;
  let browser: Browser;
  const problems: string[] = [];

  async function open(options: object, label: string): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ ...options, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' });
    await context.addInitScript(() => {
      const d = (globalThis as unknown as { document: { addEventListener(type: string, fn: (e: Record<string, string>) => void): void } }).document;
      d.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`));
    });
    const page = await context.newPage();
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`[${label}] console.error: ${msg.text()} @ ${msg.location().url}`);
    });
    page.on('pageerror', (error) => problems.push(`[${label}] uncaught: ${error.message}`));
    page.setDefaultTimeout(15_000);
    return { context, page };
  }

  const products = async () => (await (await fetch(`${shop.baseUrl}/products`)).json()) as Array<{ id: number; name: string; price: number }>;
  const payments = async (no: string) => (await shop.admin().get(`/admin/orders/${no}`).expect(200)).body.payments as Array<{ outTradeNo: string; channel: string; status: string }>;
  const scan = (codeUrl: string) =>
    fetch(`${shop.baseUrl}/sandbox/control/pay`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...(shop.t.config.sandbox.controlToken ? { Authorization: `Bearer ${shop.t.config.sandbox.controlToken}` } : {}) },
      body: JSON.stringify({ codeUrl, openid: 'o_browser_scanner' }),
    });

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    const t = await startTestApp({ env: { ADMIN_TOKENS: ADMIN_TOKEN, ADMIN_RATE_LIMIT: '100000', SEED_DEMO_PRODUCTS: 'true' } });
    shop = new Shop(t);
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
  });
  afterAll(async () => {
    await browser?.close();
    await shop?.close();
  });
  afterEach(() => {
    expect(problems).toEqual([]);
    problems.length = 0;
  });

  it('a phone browser without MicroMessenger: guest, pays through the sandbox H5 cashier, lands on the result page: PAID', async () => {
    const { page } = await open(PHONE, 'h5');
    await page.goto(`${shop.baseUrl}/`);
    await page.waitForSelector('[data-product]');
    expect(await page.textContent('#nickname')).toBe('访客');
    const mug = (await products()).find((p) => p.name.includes('马克杯'))!;
    await page.click(`[data-inc="${mug.id}"]`);
    await page.click('#checkout');
    await page.waitForURL(/\/sandbox\/h5pay\?prepay_id=/);
    await page.screenshot({ path: join(SHOTS, 'channels-h5-cashier.png'), fullPage: true });
    await page.click('button[data-result="success"]');
    await page.waitForSelector('#result[data-status="PAID"]');
    const no = /#\/result\/(.+)$/.exec(page.url())![1];
    expect(await page.textContent('#result h2')).toBe('支付成功');
    expect(await payments(no)).toEqual([expect.objectContaining({ outTradeNo: no, channel: 'h5', status: 'PAID' })]);
  });

  it('a desktop shows the QR code beside a countdown; "scanned" through the sandbox, the page sees PAID', async () => {
    const { page } = await open(DESKTOP, 'native');
    await page.goto(`${shop.baseUrl}/`);
    await page.waitForSelector('[data-product]');
    const tee = (await products()).find((p) => p.name.includes('T 恤'))!;
    await page.click(`[data-inc="${tee.id}"]`);
    await page.click('#checkout');
    await page.waitForSelector('#qr-pay img#qr');
    await page.waitForFunction(() => {
      const img = (globalThis as unknown as { document: { querySelector(s: string): { naturalWidth: number } | null } }).document.querySelector('#qr');
      return !!img && img.naturalWidth > 0;
    });
    await page.waitForSelector('#qr-countdown:not(:empty)');
    expect(await page.textContent('#qr-countdown')).toMatch(/自动关闭/);
    await page.screenshot({ path: join(SHOTS, 'channels-native-qr.png'), fullPage: true });
    const codeUrl = (await page.getAttribute('#qr-pay', 'data-code-url'))!;
    expect(codeUrl).toMatch(/^weixin:\/\/wxpay\/bizpayurl\?pr=/);
    expect((await scan(codeUrl)).status).toBe(200);
    await page.waitForSelector('#result[data-status="PAID"]');
  });

  it('an order started in WeChat and paid on the desktop ("换一种方式支付" not needed: the desktop picks native) is PAID once, with two attempts, the first CLOSED', async () => {
    const wechat = await open(WECHAT, 'wechat');
    await wechat.page.goto(`${shop.baseUrl}/`);
    await wechat.page.waitForURL(/\/sandbox\/connect\/oauth2\/authorize/);
    await wechat.page.fill('#create-user input[name=openid]', 'o_browser_two_devices');
    await wechat.page.click('#create-user button[type=submit]');
    await wechat.page.waitForSelector('[data-product]');
    const badge = (await products()).find((p) => p.name.includes('徽章'))!;
    await wechat.page.click(`[data-inc="${badge.id}"]`);
    await wechat.page.click('#checkout');
    const cashier = wechat.page.frameLocator('#wx-sandbox-cashier iframe');
    await cashier.locator('#cancel').waitFor();
    await cashier.locator('#cancel').click();
    await wechat.page.waitForSelector('[data-order][data-status="NOTPAY"]');
    const no = (await wechat.page.getAttribute('[data-order][data-status="NOTPAY"]', 'data-order'))!;

    const desktop = await open(DESKTOP, 'desktop');
    await desktop.context.addCookies((await wechat.context.cookies()).filter((c) => c.name === 'whp_session'));
    await desktop.page.goto(`${shop.baseUrl}/#/orders`);
    await desktop.page.click(`[data-pay="${no}"]`);
    await desktop.page.waitForSelector('#qr-pay');
    expect(await desktop.page.getAttribute('#qr-pay', 'data-order')).toBe(no);
    // the switch offers the other ways this page can pay
    expect(await desktop.page.$$eval('#switch-channel [data-channel]', (els) => els.map((e) => (e as unknown as { getAttribute(n: string): string }).getAttribute('data-channel')))).toEqual(['h5']);
    expect((await scan((await desktop.page.getAttribute('#qr-pay', 'data-code-url'))!)).status).toBe(200);
    await desktop.page.waitForSelector('#result[data-status="PAID"]');
    expect(await shop.status(no)).toBe('PAID');
    expect(await payments(no)).toEqual([
      expect.objectContaining({ outTradeNo: no, channel: 'jsapi', status: 'CLOSED' }),
      expect.objectContaining({ outTradeNo: `${no}_2`, channel: 'native', status: 'PAID' }),
    ]);
  });
});
