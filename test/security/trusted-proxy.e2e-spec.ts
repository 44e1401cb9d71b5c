import { Shop } from '../helpers/shop';

/**
 * Issue 11 item 5: X-Forwarded-For is believed only from TRUST_PROXY. The test client connects from
 * 127.0.0.1, which the old hard-wired 'loopback, private ranges' trusted: there a client rotating the
 * header got a fresh admin allowance per request and chose the payer_client_ip sent to WeChat.
 */
const SPOOFED = '203.0.113.77';

async function unknownTokenStatuses(shop: Shop, count: number, rotate: boolean): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < count; i++) {
    const req = shop.http().get('/admin/orders').set('Authorization', `Bearer guessed-token-${i}-0123456789abcdef`);
    if (rotate) req.set('X-Forwarded-For', `198.51.100.${i + 1}`);
    statuses.push((await req).status);
  }
  return statuses;
}

async function payerClientIpOfPrepay(shop: Shop, forwardedFor: string): Promise<unknown> {
  const product = await shop.product(`Proxy tea ${Math.random()}`, 100);
  const login = await shop.login(`o_proxy_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`);
  const no = await shop.placeOrder(login, [{ productId: product.id, quantity: 1 }]);
  await shop.http().post(`/orders/${no}/pay`).set(login.headers).set('X-Forwarded-For', forwardedFor).expect(200);
  return (await shop.sandbox.transaction(no)).payer_client_ip;
}

describe('TRUST_PROXY unset: X-Forwarded-For from a direct client is ignored', () => {
  let shop: Shop;
  beforeAll(async () => {
    shop = await Shop.start({ env: { ADMIN_RATE_LIMIT: '3' } });
  });
  afterAll(() => shop?.close());

  it('a brute force rotating X-Forwarded-For per guessed admin token is still counted against its real IP: 429 after ADMIN_RATE_LIMIT', async () => {
    const statuses = await unknownTokenStatuses(shop, 6, true);
    expect(statuses).toEqual([401, 401, 401, 429, 429, 429]);
  });

  it('a shopper spoofing X-Forwarded-For does not choose the payer_client_ip sent to WeChat: the socket address is sent', async () => {
    expect(await payerClientIpOfPrepay(shop, SPOOFED)).toBe('127.0.0.1');
  });
});

describe('TRUST_PROXY=loopback (nginx on the same host): the proxy\'s X-Forwarded-For is believed', () => {
  let shop: Shop;
  beforeAll(async () => {
    shop = await Shop.start({ env: { ADMIN_RATE_LIMIT: '3', TRUST_PROXY: 'loopback' } });
  });
  afterAll(() => shop?.close());

  it('clients behind the trusted proxy are rate-limited per forwarded address, not all together', async () => {
    expect(await unknownTokenStatuses(shop, 6, true)).toEqual([401, 401, 401, 401, 401, 401]);
    // The same forwarded client four times is limited.
    const same: number[] = [];
    for (let i = 0; i < 4; i++) {
      same.push((await shop.http().get('/admin/orders').set('Authorization', `Bearer other-guess-${i}-0123456789`).set('X-Forwarded-For', '198.51.100.200')).status);
    }
    expect(same).toEqual([401, 401, 401, 429]);
  });

  it('the forwarded client address becomes payer_client_ip', async () => {
    expect(await payerClientIpOfPrepay(shop, SPOOFED)).toBe(SPOOFED);
  });
});
