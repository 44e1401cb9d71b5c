/**
 * The console's bills page in service-provider mode (issue 15), in Chromium: a sub-merchant selector
 * (default sub-merchant first chosen), reconciliation of the chosen one, the recent runs with their
 * sub-merchant, and no selector in direct mode. Screenshot in test-output/browser/partner-console-*.png.
 *
 * Needs Chromium (CHROMIUM_PATH, default /usr/bin/chromium); skipped without it unless REQUIRE_BROWSER=1.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { ADMIN_TOKEN, Shop } from '../helpers/shop';
import { CHROMIUM, SHOTS, browserSuite } from '../helpers/browser';

browserSuite('console bills page per sub-merchant (service-provider mode) in Chromium', () => {
  jest.setTimeout(120_000);
  const A = '1900000201';
  const B = '1900000202';
  let shop: Shop;
  let browser: Browser;
  const problems: string[] = [];

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    shop = await Shop.start({ env: { WECHATPAY_SUB_MCHID: A } });
    await shop.admin().post('/admin/sub-merchants').send({ subMchid: B, name: '二号店' }).expect(201);
    const productOfB = (await shop.admin().post('/admin/products').send({ name: 'B 店商品', price: 880, subMchid: B }).expect(201)).body.id as number;
    await shop.paidOrder(await shop.login('o_partner_console'), [{ productId: productOfB, quantity: 1 }]);
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  });
  afterAll(async () => {
    await browser?.close();
    await shop?.close();
  });

  async function consolePage(): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1366, height: 768 }, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' });
    const page = await context.newPage();
    page.on('console', (msg) => {
      if (msg.type() === 'error' && !/the server responded with a status of (4\d\d)/.test(msg.text())) problems.push(`console.error: ${msg.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
    page.setDefaultTimeout(15_000);
    await page.goto(`${shop.baseUrl}/admin/`);
    await page.fill('#token', ADMIN_TOKEN);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#nav:not([hidden])');
    return page;
  }

  it('chooses a sub-merchant, reconciles it, and lists each run with its sub-merchant', async () => {
    const page = await consolePage();
    await page.goto(`${shop.baseUrl}/admin/#/bills`);
    await page.waitForSelector('#bill-sub');
    expect(await page.inputValue('#bill-sub')).toBe(A);
    expect(await page.isVisible('#download-sub-fund')).toBe(true);
    await page.selectOption('#bill-sub', B);
    await page.waitForFunction((b) => (globalThis as unknown as { location: { hash: string } }).location.hash.includes(`sub=${b}`), B);
    await page.waitForSelector('#bill-sub');
    expect(await page.inputValue('#bill-sub')).toBe(B);
    await page.click('#reconcile');
    await page.waitForSelector('#recon-verdict');
    expect(await page.textContent('#recon-result h2')).toContain(B);
    expect(await page.textContent('#recon-verdict')).toContain('没有差异');
    await page.waitForSelector(`#recon-list tr[data-sub="${B}"]`);
    expect(await page.textContent('#recon-list thead')).toContain('特约商户');
    await page.screenshot({ path: join(SHOTS, 'partner-console-bills.png'), fullPage: true });
    // The stored result of B is what the server holds for B.
    const stored = (await shop.admin().get(`/admin/reconciliations/${await page.inputValue('#bill-date')}?subMchid=${B}`).expect(200)).body;
    expect(stored).toMatchObject({ subMchid: B, summary: { differenceCount: 0, payments: { inBill: 1 } } });
    expect(problems).toEqual([]);
  });
});
