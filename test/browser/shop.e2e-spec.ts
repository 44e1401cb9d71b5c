/**
 * The demo shop and the admin console in a real browser (Debian's Chromium driven by playwright-core),
 * against the whole app in sandbox mode: WeChat login on the sandbox's consent page, wx.config and
 * WeixinJSBridge from the sandbox's jweixin.js, the cashier sheet, notifications, auto-close, refunds
 * and reconciliation. Screenshots of every step go to test-output/browser/.
 *
 * Needs Chromium (CHROMIUM_PATH, default /usr/bin/chromium). Without it the suite is skipped with a
 * note — unless REQUIRE_BROWSER=1 (CI), where a missing browser fails.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { PaymentJobs } from '../../src/payment/payment.jobs';
import { ADMIN_TOKEN, Shop } from '../helpers/shop';
import { startTestApp } from '../helpers/test-app';
import { CHROMIUM, HAVE_BROWSER, SHOTS, WECHAT_PHONE, browserSuite } from '../helpers/browser';

if (!HAVE_BROWSER) console.warn(`browser tests skipped: no Chromium at ${CHROMIUM} (set CHROMIUM_PATH or install Debian's chromium)`);

const CLOSE_AFTER_S = 20;
const DESKTOP = { viewport: { width: 1280, height: 860 } };

browserSuite('demo shop and admin console in Chromium', () => {
  jest.setTimeout(180_000);
  let shop: Shop;
  let browser: Browser;
  const problems: string[] = [];
  let step = 0;

  async function shot(page: Page, name: string): Promise<void> {
    await page.screenshot({ path: join(SHOTS, `${String(++step).padStart(2, '0')}-${name}.png`), fullPage: true });
  }

  /** Every console error and uncaught exception, from the page and its frames, fails the suite at the end. */
  async function open(options: object, label: string): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ ...options, locale: 'zh-CN', timezoneId: 'Asia/Shanghai', acceptDownloads: true });
    // Every Content-Security-Policy violation, in the page and in its frames (the cashier), is a console
    // error too (Chromium also logs its own "Refused to …" line), so it fails the suite like any other.
    await context.addInitScript(() => {
      const d = (globalThis as unknown as { document: { addEventListener(type: string, fn: (e: Record<string, string>) => void): void } }).document;
      d.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline'} (${e.sourceFile}:${e.lineNumber})`));
    });
    const page = await context.newPage();
    // Every document (the shop, the console, the sandbox's consent page and cashier) is under a CSP.
    page.on('response', (response) => {
      // (redirects aside: serve-static answers /admin → /admin/ with its own `default-src 'none'`)
      if (response.request().resourceType() !== 'document' || (response.status() >= 300 && response.status() < 400)) return;
      if (!/default-src 'self'/.test(response.headers()['content-security-policy'] ?? '')) problems.push(`[${label}] no CSP on ${response.url()}`);
    });
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`[${label}] console.error: ${msg.text()} @ ${msg.location().url}`);
    });
    page.on('pageerror', (error) => problems.push(`[${label}] uncaught: ${error.message}`));
    page.on('dialog', (dialog) => void dialog.accept());
    page.setDefaultTimeout(15_000);
    return { context, page };
  }

  async function noHorizontalScroll(page: Page): Promise<void> {
    // (runs in the page: the browser's globals, typed here by hand since the project has no DOM lib)
    const { scrollWidth, innerWidth } = await page.evaluate(() => {
      const w = globalThis as unknown as { innerWidth: number; document: { documentElement: { scrollWidth: number } } };
      return { scrollWidth: w.document.documentElement.scrollWidth, innerWidth: w.innerWidth };
    });
    expect(scrollWidth).toBeLessThanOrEqual(innerWidth + 1);
  }

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    const t = await startTestApp({
      schedules: true,
      env: {
        ADMIN_TOKENS: ADMIN_TOKEN,
        ADMIN_RATE_LIMIT: '100000',
        SEED_DEMO_PRODUCTS: 'true',
        ORDER_CLOSE_AFTER: `${CLOSE_AFTER_S}s`,
        PAYMENT_CLOSE_INTERVAL: '1s',
      },
    });
    shop = new Shop(t);
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await shop?.close();
  });

  it('takes a shopper through login, payment, cancel-then-pay, a failed payment and auto-close; an operator through refund and reconciliation', async () => {
    const { page } = await open(WECHAT_PHONE, 'shopper');

    // --- Login: the shop sends a new visitor through WeChat OAuth; the sandbox plays the WeChat user.
    await page.goto(`${shop.baseUrl}/`);
    await page.waitForURL(/\/sandbox\/connect\/oauth2\/authorize/);
    await page.fill('#create-user input[name=openid]', 'o_browser_buyer');
    await page.fill('#create-user input[name=nickname]', '小程');
    await shot(page, 'wechat-consent');
    await page.click('#create-user button[type=submit]');
    await page.waitForSelector('#nickname');
    expect(await page.textContent('#nickname')).toBe('小程');
    await page.waitForSelector('[data-product]');
    await noHorizontalScroll(page);
    await shot(page, 'shop-products');

    const products = (await (await fetch(`${shop.baseUrl}/products`)).json()) as Array<{ id: number; name: string; price: number }>;
    const mug = products.find((p) => p.name.includes('马克杯'))!;
    const tee = products.find((p) => p.name.includes('T 恤'))!;
    const badge = products.find((p) => p.name.includes('徽章'))!;

    // --- Order A: two products, paid in the cashier.
    await page.click(`[data-inc="${mug.id}"]`);
    await page.click(`[data-inc="${tee.id}"]`);
    expect(await page.textContent('#cart-total')).toBe(`¥${((mug.price + tee.price) / 100).toFixed(2)}`);
    await shot(page, 'cart');
    await page.click('#checkout');
    const cashier = page.frameLocator('#wx-sandbox-cashier iframe');
    await cashier.locator('#pay').waitFor();
    expect(await cashier.locator('#amount').textContent()).toBe(`¥${((mug.price + tee.price) / 100).toFixed(2)}`);
    await shot(page, 'cashier');
    await cashier.locator('#pay').click();
    await page.waitForSelector('#result[data-status="PAID"]');
    const orderA = /#\/result\/(.+)$/.exec(page.url())![1];
    expect(await page.textContent('#result h2')).toBe('支付成功');
    await shot(page, 'paid');
    expect(await shop.status(orderA)).toBe('PAID');

    // --- Order B: cancelled in the cashier (clear message, order kept payable), then paid from "my orders".
    await page.click('a[href="#/"]');
    await page.click(`[data-inc="${badge.id}"]`);
    await page.click('#checkout');
    await cashier.locator('#cancel').waitFor();
    await cashier.locator('#cancel').click();
    await page.waitForSelector('#toast:not([hidden])');
    expect(await page.textContent('#toast')).toContain('已取消支付');
    await page.waitForSelector('[data-order][data-status="NOTPAY"] [data-pay]');
    const orderB = (await page.getAttribute('[data-order][data-status="NOTPAY"]', 'data-order'))!;
    await shot(page, 'cancelled-order-kept');
    await page.click(`[data-pay="${orderB}"]`);
    await cashier.locator('#pay').waitFor();
    await cashier.locator('#pay').click();
    await page.waitForSelector('#result[data-status="PAID"]');
    expect(page.url()).toContain(`#/result/${orderB}`);

    // --- Order C: the payment fails in the cashier; the order stays payable, then is left to expire.
    await page.click('a[href="#/"]');
    await page.click(`[data-inc="${mug.id}"]`);
    await page.click('#checkout');
    await cashier.locator('#fail').waitFor();
    await cashier.locator('#fail').click();
    await page.waitForSelector('#toast:not([hidden])');
    expect(await page.textContent('#toast')).toContain('支付失败');
    await page.waitForSelector('[data-order][data-status="NOTPAY"] .countdown');
    const orderC = (await page.getAttribute('[data-order][data-status="NOTPAY"]', 'data-order'))!;
    expect(await page.textContent(`[data-order="${orderC}"] .countdown`)).toMatch(/秒后自动关闭/);
    await shot(page, 'unpaid-with-countdown');

    // wx.config ran once on this page, whatever happened in between.
    expect(await page.evaluate(() => (globalThis as unknown as { __wxSandbox: { configCount: number } }).__wxSandbox.configCount)).toBe(1);

    // --- A payment whose notification WeChat never delivers (another shopper, over the API).
    const other = await shop.login('o_browser_dropped');
    const dropped = await shop.placeOrder(other, [{ productId: tee.id, quantity: 1 }]);
    const prepayId = await shop.prepay(other, dropped);
    await shop.sandbox.dropNotifications(true);
    try {
      expect((await shop.sandbox.pay(prepayId, { openid: 'o_browser_dropped' })).result).toBe('ok');
    } finally {
      await shop.sandbox.dropNotifications(false);
    }
    expect(await shop.status(dropped)).toBe('NOTPAY');

    // --- The operator: console login, order timeline, partial refund of A, bills and reconciliation.
    const admin = await open(DESKTOP, 'admin');
    const a = admin.page;
    await a.goto(`${shop.baseUrl}/admin`);
    await a.waitForSelector('#token');
    await shot(a, 'admin-login');
    await a.fill('#token', ADMIN_TOKEN);
    await a.click('#login-form button[type=submit]');
    await a.waitForSelector(`tr[data-order="${orderA}"]`);
    await a.waitForSelector('#health-recent li');
    expect(Number(await a.textContent('#health-bad'))).toBe(0);
    await shot(a, 'admin-orders');
    expect(await a.evaluate(() => (globalThis as unknown as { sessionStorage: { getItem(key: string): string | null } }).sessionStorage.getItem('whp.adminToken'))).toBe(ADMIN_TOKEN);

    await a.click(`tr[data-order="${orderA}"]`);
    await a.waitForSelector('#order[data-status="PAID"]');
    expect(await a.textContent('#timeline')).toContain('prepay');
    expect(Number(await a.getAttribute('#refundable', 'data-fen'))).toBe(mug.price + tee.price);
    await a.fill('#refund-amount', '20.00');
    await a.fill('#refund-reason', '部分商品缺货');
    await a.click('#refund-submit');
    await a.waitForSelector('#refunds tr[data-refund]');
    // The sandbox completes the refund and notifies; the console shows it once WeChat confirmed.
    const refundNo = (await a.getAttribute('#refunds tr[data-refund]', 'data-refund'))!;
    for (let i = 0; i < 50; i++) {
      const refund = await shop.admin().get(`/admin/refunds/${refundNo}`);
      if (refund.body.status === 'SUCCESS') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await a.reload();
    await a.waitForSelector('#refunds .badge.SUCCESS');
    expect(Number(await a.getAttribute('#refundable', 'data-fen'))).toBe(mug.price + tee.price - 2000);
    expect(await a.textContent('#refunded-total')).toBe('¥20.00');
    await shot(a, 'admin-order-refunded');

    await a.click('a[href="#/bills"]');
    await a.waitForSelector('#reconcile');
    const [bill] = await Promise.all([a.waitForEvent('download'), a.click('#download-trade')]);
    expect(bill.suggestedFilename()).toMatch(/\.csv$/);
    const billText = readFileSync((await bill.path())!, 'utf8');
    expect(billText).toContain(orderA);
    expect(billText).toContain(dropped); // WeChat has the payment we never heard of
    await a.click('#reconcile');
    await a.waitForSelector('#recon-chart');
    await a.waitForSelector(`#diff-table tr[data-diff="only_in_wechat"][data-order="${dropped}"]`);
    expect(await a.textContent('#recon-verdict')).toContain('补记为已支付');
    expect(Number(await a.getAttribute('#recon-chart rect[data-bar="onlyInWechat"]', 'width'))).toBeGreaterThan(0);
    await noHorizontalScroll(a);
    await shot(a, 'admin-reconciliation');
    expect(await shop.status(dropped)).toBe('PAID');

    // --- Back to the shopper: the refund shows, and the unpaid order C was closed automatically.
    await page.click('a[href="#/"]');
    await page.click('a[href="#/orders"]');
    await page.waitForSelector(`[data-order="${orderA}"]`);
    expect(await page.textContent(`[data-order="${orderA}"]`)).toContain('已退 ¥20.00');
    await page.waitForSelector(`[data-order="${orderC}"][data-status="CLOSED"]`, { timeout: (CLOSE_AFTER_S + 15) * 1000 });
    await noHorizontalScroll(page);
    await shot(page, 'auto-closed');
    expect(await shop.status(orderC)).toBe('CLOSED');

    // --- The other viewports: the shop on a desktop, the console on a phone.
    const wide = await open(DESKTOP, 'shop-desktop');
    await wide.context.addCookies((await page.context().cookies()).filter((c) => c.name === 'whp_session'));
    await wide.page.goto(`${shop.baseUrl}/#/orders`);
    await wide.page.waitForSelector(`[data-order="${orderA}"]`);
    await noHorizontalScroll(wide.page);
    await shot(wide.page, 'shop-desktop-orders');
    const narrow = await open(WECHAT_PHONE, 'admin-phone');
    await narrow.page.goto(`${shop.baseUrl}/admin/`);
    await narrow.page.fill('#token', ADMIN_TOKEN);
    await narrow.page.click('#login-form button[type=submit]');
    await narrow.page.waitForSelector(`tr[data-order="${orderA}"]`);
    await shot(narrow.page, 'admin-phone-orders');

    expect(problems).toEqual([]);
  });

  it('an HTML injection in the console or a sandbox page cannot run script: the inline handler is refused by the CSP and reported', async () => {
    const { page } = await open(DESKTOP, 'injection');
    const violations: string[] = [];
    page.on('console', (msg) => {
      if (msg.text().startsWith('CSP violation:')) violations.push(msg.text());
    });
    type W = { __injected?: number; document: { body: { insertAdjacentHTML(where: string, html: string): void } } };
    // The console's login page, and the sandbox's consent page (where the shop sends a new visitor).
    for (const url of [`${shop.baseUrl}/admin/`, `${shop.baseUrl}/auth/wechat/authorize?redirect=%2F`]) {
      violations.length = 0;
      await page.goto(url);
      await page.waitForSelector(url.includes('/admin/') ? '#token' : '#create-user');
      await page.evaluate(() => {
        // What a stored-XSS payload would do: inline event handlers.
        (globalThis as unknown as W).document.body.insertAdjacentHTML('beforeend', '<img src="data:," onload="window.__injected = 1" onerror="window.__injected = 2">');
      });
      await page.waitForTimeout(300);
      expect(await page.evaluate(() => (globalThis as unknown as W).__injected)).toBeUndefined();
      expect(violations.some((v) => v.includes('script-src-attr'))).toBe(true);
    }
    problems.length = 0; // these violations were the point
  });

  it('rejects a wrong admin token on the console with a clear message', async () => {
    const { page } = await open(DESKTOP, 'admin-wrong-token');
    problems.length = 0;
    await page.goto(`${shop.baseUrl}/admin/`);
    await page.fill('#token', 'not-the-admin-token-0000');
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#login-error:has-text("令牌无效")');
    expect(await page.isHidden('#app')).toBe(true);
    // The browser reports the refused request itself as a console error; nothing else may appear.
    expect(problems.filter((p) => !/401 \(Unauthorized\)/.test(p))).toEqual([]);
  });

  it('shows the notification panel amber, with the count and what to check, when payments are found only by query (notify_url unreachable)', async () => {
    problems.length = 0;
    const quiet = await Shop.start({ env: { PAYMENT_RECONCILE_AFTER: '0s' } });
    try {
      const product = await quiet.product('查单才发现', 100);
      const buyer = await quiet.login('o_browser_no_notify');
      await quiet.sandbox.dropNotifications(true);
      const no = await quiet.placeOrder(buyer, [{ productId: product.id, quantity: 1 }]);
      await quiet.sandbox.pay(await quiet.prepay(buyer, no));
      await quiet.t.app.get(PaymentJobs).reconcile();
      expect(await quiet.status(no)).toBe('PAID');

      const { page } = await open(DESKTOP, 'admin-notify-warning');
      await page.goto(`${quiet.baseUrl}/admin/`);
      await page.fill('#token', ADMIN_TOKEN);
      await page.click('#login-form button[type=submit]');
      await page.waitForSelector('.health-warning[data-code="NOTIFICATIONS_NOT_ARRIVING"]');
      expect(await page.getAttribute('#health-light', 'class')).toBe('light warn');
      expect(await page.textContent('.health-warning .health-by-query')).toBe('1');
      expect(await page.textContent('.health-warning')).toMatch(/notify_url[\s\S]*https[\s\S]*反向代理[\s\S]*防火墙/);
      await shot(page, 'admin-notify-warning');
      expect(problems).toEqual([]);
    } finally {
      await quiet.close();
    }
  });
});
