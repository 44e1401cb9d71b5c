// The sandbox's H5 cashier (behind h5_url) and its Native "scan" page (issue 13).
import { guestLogin, Login } from '../helpers/login';
import { Shop } from '../helpers/shop';

describe('sandbox H5 cashier and Native scan pages', () => {
  let shop: Shop;
  let guest: Login;
  let productId: number;

  beforeAll(async () => {
    shop = await Shop.start();
    guest = await guestLogin(shop.baseUrl);
    productId = (await shop.product('H5 页面', 1200)).id;
  });
  afterAll(() => shop?.close());
  afterEach(() => shop.sandbox.resetClock());

  const prepay = async (channel: 'h5' | 'native') => {
    const no = await shop.placeOrder(guest, [{ productId, quantity: 1 }]);
    const res = await shop.http().post(`/orders/${no}/pay`).set(guest.headers).send({ channel }).expect(200);
    return { no, ...(res.body as { h5Url?: string; codeUrl?: string }) };
  };
  const shopPage = () => `${shop.baseUrl}/?result=x`;

  it('opens from a page of the registered H5 payment domain, pays, then sends the browser to redirect_url', async () => {
    const { no, h5Url } = await prepay('h5');
    const page = await fetch(h5Url!, { headers: { Referer: shopPage() } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('¥12.00');
    expect(html).not.toMatch(/<script(?![^>]*src=)/); // no inline script (CSP default-src 'self')
    expect(html).not.toContain('style=');
    const prepayId = new URL(h5Url!).searchParams.get('prepay_id')!;
    const redirectUrl = decodeURIComponent(h5Url!.split('&redirect_url=')[1]);
    const submit = await fetch(`${shop.baseUrl}/sandbox/h5pay`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ prepay_id: prepayId, redirect_url: redirectUrl, openid: 'o_h5_page_payer', result: 'success' }).toString(),
    });
    expect(submit.status).toBe(303);
    expect(submit.headers.get('location')).toBe(`${shop.t.config.publicBaseUrl}/?result=${no}`);
    await shop.waitForStatus(no, 'PAID');
    expect((await shop.sandbox.transaction(no)).payer).toEqual({ openid: 'o_h5_page_payer' });
  });

  it('cancel also returns to redirect_url, and leaves the order unpaid', async () => {
    const { no, h5Url } = await prepay('h5');
    const prepayId = new URL(h5Url!).searchParams.get('prepay_id')!;
    const submit = await fetch(`${shop.baseUrl}/sandbox/h5pay`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ prepay_id: prepayId, redirect_url: `${shop.baseUrl}/?result=${no}`, result: 'cancel' }).toString(),
    });
    expect(submit.status).toBe(303);
    expect((await shop.sandbox.transaction(no)).trade_state).toBe('NOTPAY');
  });

  it('shows WeChat\'s 商家参数格式有误 page for a Referer outside SANDBOX_H5_DOMAINS, or none', async () => {
    const { h5Url } = await prepay('h5');
    for (const headers of [{ Referer: 'https://evil.example/shop' }, {}] as Array<Record<string, string>>) {
      const res = await fetch(h5Url!, { headers });
      expect(res.status).toBe(400);
      expect(await res.text()).toContain('商家参数格式有误');
    }
  });

  it('h5_url expires after 5 minutes', async () => {
    const { h5Url } = await prepay('h5');
    await shop.sandbox.shiftClock(5 * 60_000 + 1000);
    const res = await fetch(h5Url!, { headers: { Referer: shopPage() } });
    expect(res.status).toBe(409);
    expect(await res.text()).toContain('支付链接已失效');
  });

  it('GET /sandbox/scan?code_url=… shows the order; paying there pays it', async () => {
    const { no, codeUrl } = await prepay('native');
    const page = await fetch(`${shop.baseUrl}/sandbox/scan?code_url=${encodeURIComponent(codeUrl!)}`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('¥12.00');
    const paid = await fetch(`${shop.baseUrl}/sandbox/scan`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ code_url: codeUrl!, openid: 'o_scanner', result: 'success' }).toString(),
    });
    expect(paid.status).toBe(200);
    expect(await paid.text()).toContain('支付成功');
    await shop.waitForStatus(no, 'PAID');
    expect(await (await fetch(`${shop.baseUrl}/sandbox/scan?code_url=${encodeURIComponent('weixin://wxpay/bizpayurl?pr=nope')}`)).status).toBe(404);
  });

  it('the shop draws a code_url as a QR code (SVG), and nothing else', async () => {
    const { codeUrl } = await prepay('native');
    const svg = await fetch(`${shop.baseUrl}/shop/qr.svg?code_url=${encodeURIComponent(codeUrl!)}`);
    expect(svg.status).toBe(200);
    expect(svg.headers.get('content-type')).toContain('image/svg+xml');
    expect(await svg.text()).toMatch(/^<svg /);
    const other = await fetch(`${shop.baseUrl}/shop/qr.svg?code_url=${encodeURIComponent('https://evil.example/')}`);
    expect(other.status).toBe(400);
    expect(((await other.json()) as { message: string }).message).toContain('code_url must be a WeChat Pay code_url');
  });

  it('the Pay API checks an H5 prepay as WeChat does: scene_info and payer_client_ip required', async () => {
    const { WechatPayClient } = await import('../../src/wechat/pay/wechat-pay.client');
    const client = shop.t.app.get(WechatPayClient);
    const base = { description: 'x', out_trade_no: `H5CHECK${Date.now()}`, notify_url: `${shop.baseUrl}/notify/wechatpay/transaction`, amount: { total: 1, currency: 'CNY' } };
    await expect(client.prepayH5({ ...base } as never)).rejects.toMatchObject({ httpStatus: 400, wechatCode: 'PARAM_ERROR', message: expect.stringContaining('scene_info') });
    await expect(client.prepayH5({ ...base, scene_info: { h5_info: { type: 'Wap' } } } as never)).rejects.toMatchObject({ httpStatus: 400, message: expect.stringContaining('payer_client_ip') });
    await expect(client.prepayH5({ ...base, amount: { total: 0 }, scene_info: { payer_client_ip: '1.2.3.4', h5_info: { type: 'Wap' } } })).rejects.toMatchObject({ httpStatus: 400 });
    const ok = await client.prepayH5({ ...base, scene_info: { payer_client_ip: '1.2.3.4', h5_info: { type: 'Wap' } } });
    expect(ok.h5_url).toContain('/sandbox/h5pay?prepay_id=');
  });
});
