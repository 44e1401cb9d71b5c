/**
 * Issue 12 items 15 and 16 in a real browser (Chromium): declining WeChat's consent ends on a Chinese
 * page with a way back; the shop confirms before cancelling, tells cancelled from expired orders and
 * shows when each was placed, and speaks Chinese when the server refuses; the console has a products
 * page (create, edit price and stock), Chinese timeline and reconciliation labels, a refunds table
 * that fits at 1366 px and updates without a reload, and no dead link for an order that is not here.
 * Screenshots in test-output/browser/operator-ux-*.png.
 *
 * Needs Chromium (CHROMIUM_PATH, default /usr/bin/chromium); skipped without it unless REQUIRE_BROWSER=1.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ADMIN_TOKEN, GENEROUS_SHOPPER_LIMITS, Shop } from '../helpers/shop';
import { startTestApp } from '../helpers/test-app';
import { CHROMIUM, SHOTS, WECHAT_PHONE, browserSuite } from '../helpers/browser';


const LAPTOP = { viewport: { width: 1366, height: 768 } };
const CLOSE_AFTER_S = 8;

type W = { document: { documentElement: { scrollWidth: number } }; innerWidth: number };

browserSuite('operator and shopper details in Chromium (issue 12 items 15, 16)', () => {
  jest.setTimeout(180_000);
  let shop: Shop;
  let browser: Browser;
  const problems: string[] = [];

  const shot = (page: Page, name: string) => page.screenshot({ path: join(SHOTS, `operator-ux-${name}.png`), fullPage: true });

  async function open(options: object, label: string): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ ...options, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' });
    await context.addInitScript(() => {
      const d = (globalThis as unknown as { document: { addEventListener(type: string, fn: (e: Record<string, string>) => void): void } }).document;
      d.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`));
    });
    const page = await context.newPage();
    page.on('console', (msg) => {
      if (msg.type() === 'error' && !/the server responded with a status of (4\d\d)/.test(msg.text())) problems.push(`[${label}] console.error: ${msg.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`[${label}] uncaught: ${error.message}`));
    page.on('dialog', (dialog) => void dialog.accept());
    page.setDefaultTimeout(15_000);
    return { context, page };
  }

  async function consoleLogin(page: Page): Promise<void> {
    await page.goto(`${shop.baseUrl}/admin/`);
    await page.fill('#token', ADMIN_TOKEN);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#nav:not([hidden])');
  }

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    const t = await startTestApp({
      schedules: true,
      env: {
        ADMIN_TOKENS: ADMIN_TOKEN,
        ADMIN_RATE_LIMIT: '100000',
        SEED_DEMO_PRODUCTS: 'false',
        ORDER_CLOSE_AFTER: `${CLOSE_AFTER_S}s`,
        PAYMENT_CLOSE_INTERVAL: '1s',
        // SANDBOX_TIME_SCALE is 1000 in tests: about 6 s of PROCESSING, then WeChat's refund notification.
        SANDBOX_REFUND_DELAY: '6000s',
        ...GENEROUS_SHOPPER_LIMITS,
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

  afterEach(() => {
    expect(problems).toEqual([]);
    problems.length = 0;
  });

  it('a shopper who declines on the consent page gets a Chinese page with a way back to authorize', async () => {
    await shop.product('拒绝测试商品', 100);
    const { page } = await open(WECHAT_PHONE, 'decline');
    await page.goto(`${shop.baseUrl}/`);
    await page.waitForURL(/\/sandbox\/connect\/oauth2\/authorize/);
    await page.click('form:has(input[name=action][value=deny]) button[type=submit]');
    await page.waitForSelector('#declined');
    expect(await page.textContent('#declined')).toBe('你已拒绝微信授权');
    const body = (await page.textContent('body'))!;
    expect(body).not.toMatch(/MISSING_CODE|Bad Request|statusCode/);
    await shot(page, 'declined');
    // The way back: authorize again, and this time allow.
    await page.click('#authorize-again');
    await page.waitForURL(/\/sandbox\/connect\/oauth2\/authorize/);
    await page.fill('#create-user input[name=openid]', 'o_ux_decliner');
    await page.click('#create-user button[type=submit]');
    await page.waitForSelector('[data-product]');
  });

  it('a shopper who opens the shop as localhost instead of 127.0.0.1 logs in, stays logged in and pays there', async () => {
    // PUBLIC_BASE_URL is http://127.0.0.1:<port>; the same server under its other loopback name.
    const other = shop.baseUrl.replace('127.0.0.1', 'localhost');
    const product = await shop.product('换个主机名', 100);
    const { context, page } = await open(WECHAT_PHONE, 'other-host');
    await page.goto(`${other}/#/orders`);
    await page.waitForURL(/\/sandbox\/connect\/oauth2\/authorize/);
    await page.fill('#create-user input[name=openid]', 'o_ux_localhost');
    await page.fill('#create-user input[name=nickname]', '本机');
    await page.click('#create-user button[type=submit]');
    // Back on the host the shopper came from, logged in (not the "请重新登录" page).
    await page.waitForSelector('#nickname');
    expect(new URL(page.url()).origin).toBe(other);
    expect(page.url()).toContain('#/orders');
    expect((await context.cookies(other)).some((c) => c.name === 'whp_session')).toBe(true);
    await page.reload();
    await page.waitForSelector('#nickname');
    // And pays there: wx.config and the payment directory accept this name too.
    await page.click('a[href="#/"]');
    await page.click(`[data-inc="${product.id}"]`);
    await page.click('#checkout');
    const cashier = page.frameLocator('#wx-sandbox-cashier iframe');
    await cashier.locator('#pay').click();
    await page.waitForSelector('#result[data-status="PAID"]');
    await shot(page, 'shop-other-host-paid');
  });

  it('the shop confirms before cancelling, tells cancelled from expired, shows order times, and says in Chinese why an order was refused', async () => {
    const mug = await shop.product('确认取消马克杯', 3900, 5);
    const buyer = await shop.login('o_ux_shopper');
    const cancelMe = await shop.placeOrder(buyer, [{ productId: mug.id, quantity: 1 }]);
    const expireMe = await shop.placeOrder(buyer, [{ productId: mug.id, quantity: 1 }]);
    const { context, page } = await open(WECHAT_PHONE, 'shopper');
    await context.addCookies([{ name: 'whp_session', value: encodeURIComponent(buyer.token), url: shop.baseUrl }]);
    await page.goto(`${shop.baseUrl}/#/orders`);
    await page.waitForSelector(`[data-order="${cancelMe}"] .ordered-at`);
    expect(await page.textContent(`[data-order="${cancelMe}"] .ordered-at`)).toMatch(/^下单时间 \d{4}-\d{2}-\d{2} \d{2}:\d{2}$/);

    // Cancel asks first; "不取消" keeps the order.
    await page.click(`[data-cancel="${cancelMe}"]`);
    await page.waitForSelector(`[data-order="${cancelMe}"] [data-confirm-cancel]`);
    expect(await page.textContent(`[data-order="${cancelMe}"] .confirm-text`)).toContain('确定取消这个订单吗');
    await shot(page, 'shop-confirm-cancel');
    await page.click(`[data-order="${cancelMe}"] [data-keep]`);
    await page.waitForSelector(`[data-order="${cancelMe}"][data-status="NOTPAY"] [data-cancel]`);
    expect(await shop.status(cancelMe)).toBe('NOTPAY');
    await page.click(`[data-cancel="${cancelMe}"]`);
    await page.click(`[data-order="${cancelMe}"] [data-confirm-cancel]`);
    await page.waitForSelector(`[data-order="${cancelMe}"][data-status="CLOSED"][data-close-reason="cancelled"]`);
    expect(await page.textContent(`[data-order="${cancelMe}"] .badge`)).toBe('已取消');

    // The other one runs out of time: closed, and said to be expired, not cancelled.
    await page.waitForSelector(`[data-order="${expireMe}"][data-status="CLOSED"][data-close-reason="expired"]`, { timeout: (CLOSE_AFTER_S + 15) * 1000 });
    expect(await page.textContent(`[data-order="${expireMe}"] .badge`)).toBe('已超时关闭');
    expect(await page.textContent(`[data-order="${expireMe}"]`)).toContain('超时关闭于');
    await shot(page, 'shop-cancelled-and-expired');

    // The server refuses an order (sold out meanwhile): the shopper reads Chinese, not OUT_OF_STOCK.
    await page.click('a[href="#/"]');
    await page.waitForSelector(`[data-inc="${mug.id}"]`);
    await page.click(`[data-inc="${mug.id}"]`);
    await shop.admin().patch(`/admin/products/${mug.id}`).send({ stock: 0 }).expect(200);
    await page.click('#checkout');
    await page.waitForSelector('#toast:not([hidden])');
    const toast = (await page.textContent('#toast'))!;
    expect(toast).toContain('库存不足');
    expect(toast).not.toMatch(/[A-Za-z]{4,}/);
    await shot(page, 'shop-chinese-error');
  });

  it('the console: a products page to create and edit price and stock (audited), Chinese labels, a refunds table that fits at 1366 px and updates by itself, no dead link for an order not here', async () => {
    const { page } = await open(LAPTOP, 'console');
    await consoleLogin(page);

    // --- Products: create (with the form checking the price first), then edit price and stock.
    await page.click('a[href="#/products"]');
    await page.waitForSelector('#product-create');
    await page.fill('#new-name', '控制台新品');
    await page.fill('#new-price', '12.345');
    await page.click('#new-submit');
    expect(await page.textContent('#product-error')).toContain('价格须为大于 0 的金额');
    await page.fill('#new-price', '12.30');
    await page.fill('#new-stock', '7');
    await page.click('#new-submit');
    await page.waitForSelector('#products tr[data-product] >> text=控制台新品');
    const created = ((await shop.admin().get('/admin/products').expect(200)).body as Array<{ id: number; name: string; price: number; stock: number | null }>).find(
      (p) => p.name === '控制台新品',
    )!;
    expect(created).toMatchObject({ price: 1230, stock: 7 });
    await page.click(`[data-edit="${created.id}"]`);
    await page.fill('#edit-price', '15.00');
    await page.fill('#edit-stock', '');
    await shot(page, 'console-product-edit');
    await page.click('#edit-save');
    await page.waitForSelector(`tr[data-product="${created.id}"] td[data-price="1500"]`);
    expect(await page.textContent(`tr[data-product="${created.id}"] td[data-stock]`)).toBe('不限');
    await shot(page, 'console-products');
    const audit = await shop.admin().get(`/admin/audit?action=product.update&target=${created.id}`).expect(200);
    expect(audit.body.items[0].detail).toMatchObject({ before: { price: 1230, stock: 7 }, after: { price: 1500, stock: null } });

    // --- A paid order, refunded from its page at 1366 px; the refund completes without a reload.
    const buyer = await shop.login('o_ux_refund_buyer');
    const paid = await shop.paidOrder(buyer, [{ productId: created.id, quantity: 2 }]);
    await page.goto(`${shop.baseUrl}/admin/#/order/${paid}`);
    await page.waitForSelector('#order[data-status="PAID"]');
    expect(await page.textContent('#timeline')).toContain('创建订单');
    expect(await page.textContent('#timeline')).toContain('微信下单（prepay）');
    expect(await page.textContent('#timeline')).toMatch(/支付通知 · 确认已支付|查单 · 确认已支付/);
    await page.fill('#refund-amount', '10.00');
    await page.fill('#refund-reason', '部分退款（控制台测试）');
    await page.click('#refund-submit');
    await page.waitForSelector('#refunds tr[data-status="PROCESSING"]');
    const fits = () =>
      page.evaluate(() => {
        const d = (globalThis as unknown as { document: { getElementById(id: string): { scrollWidth: number; clientWidth: number } } }).document;
        return { table: d.getElementById('refunds-table').scrollWidth, wrap: d.getElementById('refunds-wrap').clientWidth };
      });
    const processing = await fits();
    expect(processing.table).toBeLessThanOrEqual(processing.wrap);
    await shot(page, 'console-refund-processing');
    const reloads: string[] = [];
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) reloads.push(frame.url());
    });
    await page.waitForSelector('#refunds tr[data-status="SUCCESS"]', { timeout: 20_000 });
    expect(reloads.filter((u) => !u.endsWith(`#/order/${paid}`))).toEqual([]);
    expect(await page.textContent('#refunded-total')).toBe('¥10.00');
    expect(await page.textContent('#timeline')).toContain('退款成功');
    const done = await fits();
    expect(done.table).toBeLessThanOrEqual(done.wrap);
    const { scrollWidth, innerWidth } = await page.evaluate(() => ({ scrollWidth: (globalThis as unknown as W).document.documentElement.scrollWidth, innerWidth: (globalThis as unknown as W).innerWidth }));
    expect(scrollWidth).toBeLessThanOrEqual(innerWidth + 1);
    await shot(page, 'console-refund-done-1366');

    // --- An order the console cannot find: a Chinese message, not the server's English.
    await page.goto(`${shop.baseUrl}/admin/#/order/NO_SUCH_ORDER_1`);
    await page.waitForSelector('#order-error');
    expect(await page.textContent('#order-error')).toBe('找不到该订单。');

    // --- Reconciliation: WeChat has a payment for an order that does not exist here.
    const stranger = `STRANGER${Date.now().toString(36).toUpperCase()}`;
    await shop.sandbox.injectTransaction({ outTradeNo: stranger, total: 4200 });
    await page.goto(`${shop.baseUrl}/admin/#/bills`);
    await page.waitForSelector('#reconcile');
    await page.click('#reconcile');
    await page.waitForSelector(`#diff-table tr[data-diff="only_in_wechat"][data-order="${stranger}"]`);
    const row = `#diff-table tr[data-order="${stranger}"]`;
    expect(await page.locator(`${row} a`).count()).toBe(0);
    expect(await page.textContent(row)).toContain('本系统无此订单');
    expect(await page.textContent('#recon-result h2')).toMatch(/已完成|对账失败/);
    await page.waitForSelector('#recon-list tr[data-date]');
    expect(await page.textContent('#recon-list')).not.toMatch(/\bdone\b|\bfailed\b/);
    await shot(page, 'console-reconciliation-not-here');
  });
});
