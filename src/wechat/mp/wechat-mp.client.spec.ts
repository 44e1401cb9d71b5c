import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { DOC_MERCHANT_PRIVATE_KEY } from '../../../test/fixtures/wechatpay-doc-vectors';
import { wechatTestingModule } from '../../../test/helpers/wechat-module';
import { WechatPaySigner } from '../pay/signer';
import { WechatMpApiError } from './errors';
import { jssdkSignature } from './jssdk-signature';
import { WechatMpClient } from './wechat-mp.client';

describe('JS-SDK signature (official vector I.6)', () => {
  const params = {
    jsapiTicket: 'sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg',
    nonceStr: 'Wm3WZYTPz0wzccnW',
    timestamp: 1414587457,
    url: 'http://mp.weixin.qq.com?params=value',
  };

  it('gives the published signature', () => {
    expect(jssdkSignature(params)).toBe('0f9de62fce790f9a083d5c99e95740ceb90c27ed');
  });

  it('ignores the #fragment', () => {
    expect(jssdkSignature({ ...params, url: `${params.url}#/cart?x=1` })).toBe('0f9de62fce790f9a083d5c99e95740ceb90c27ed');
  });
});

describe('paySign (official vector I.3)', () => {
  it('gives the published JSAPI paySign', () => {
    const signer = new WechatPaySigner('1900007291', 'X', DOC_MERCHANT_PRIVATE_KEY);
    const message = 'wx2421b1c4370ec43b\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\nprepay_id=wx201410272009395522657a690389285100\n';
    expect(signer.sign(message)).toBe(
      'mI35pfNEQV6777ke/1T+LJLQDNTm7yeoUJH+j/adPGhmCCi0PbgkvYQTRcXH0uibcLVtvFLdGLpmoYO9FV6lBBsTAjuhh5YOvQi0e2g3e0yytitiNET9FEuqM0pjnKfRW4K6LIZDdbWJv9KhZUx3DrJa5TL7OJ7VdADVivxVySIlPVKjGwuCXzuXSJes0UcILgWQUMyha5/3nYofuHtS7r+KYyMuxD+oJ9VM1Qdxk4UIG59CP5Y3wtYIFybyF3bdu1caHTRRX+DLyMXyYA/IrTmiW01c4RPjpHBX5Dk1sZyY1zVsWNsvMHr2e1NTWtBxKJ+qk5N61J7caYoepHFaxw==',
    );
  });
});

describe('WechatMpClient', () => {
  let server: Server;
  let base: string;
  const seen: Array<{ method: string; url: string; body: string }> = [];
  let answer: (url: string) => unknown = () => ({});

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, body });
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(answer(req.url!)));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mp`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  beforeEach(() => (seen.length = 0));

  async function client(env: Record<string, string> = {}) {
    const { moduleRef } = await wechatTestingModule({
      env: { WECHAT_API_BASE: base, WECHAT_OPEN_BASE: 'https://open.example.com', ...env },
      credentials: {
        appid: 'wx1234567890abcdef',
        appsecret: 'S'.repeat(32),
        mchid: '1900000109',
        merchantPrivateKeyPem: DOC_MERCHANT_PRIVATE_KEY,
        merchantCertSerial: 'AB',
        apiv3Key: 'k'.repeat(32),
      },
    });
    return { mp: moduleRef.get(WechatMpClient), moduleRef };
  }

  it('builds the authorize URL in the documented parameter order, with connect_redirect=1 before #wechat_redirect (else WeChat may redirect twice and the second code use fails with 40163)', async () => {
    const { mp, moduleRef } = await client();
    expect(mp.oauthAuthorizeUrl('https://shop.example.com/auth/wechat/callback', 'snsapi_base', 'abc123')).toBe(
      'https://open.example.com/connect/oauth2/authorize?appid=wx1234567890abcdef&redirect_uri=https%3A%2F%2Fshop.example.com%2Fauth%2Fwechat%2Fcallback&response_type=code&scope=snsapi_base&state=abc123&connect_redirect=1#wechat_redirect',
    );
    await moduleRef.close();
  });

  it('exchanges a code, refreshes, reads user info, and gets the ticket', async () => {
    const { mp, moduleRef } = await client();
    answer = (url) =>
      url.startsWith('/mp/sns/userinfo')
        ? { openid: 'o1', nickname: '张三', headimgurl: 'https://x/0' }
        : url.startsWith('/mp/cgi-bin/ticket')
          ? { errcode: 0, errmsg: 'ok', ticket: 'T', expires_in: 7200 }
          : { access_token: 'AT', expires_in: 7200, refresh_token: 'RT', openid: 'o1', scope: 'snsapi_userinfo' };
    await expect(mp.exchangeCode('CODE')).resolves.toMatchObject({ access_token: 'AT', openid: 'o1' });
    expect(seen[0].url).toBe(`/mp/sns/oauth2/access_token?appid=wx1234567890abcdef&secret=${'S'.repeat(32)}&code=CODE&grant_type=authorization_code`);
    await mp.refreshUserToken('RT');
    expect(seen[1].url).toBe('/mp/sns/oauth2/refresh_token?appid=wx1234567890abcdef&grant_type=refresh_token&refresh_token=RT');
    await expect(mp.getUserInfo('AT', 'o1')).resolves.toMatchObject({ nickname: '张三' });
    expect(seen[2].url).toBe('/mp/sns/userinfo?access_token=AT&openid=o1&lang=zh_CN');
    await expect(mp.getJsapiTicket('AT')).resolves.toEqual({ errcode: 0, errmsg: 'ok', ticket: 'T', expires_in: 7200 });
    expect(seen[3].url).toBe('/mp/cgi-bin/ticket/getticket?access_token=AT&type=jsapi');
    await moduleRef.close();
  });

  it('uses stable_token by default and cgi-bin/token when switched off', async () => {
    answer = () => ({ access_token: 'AT', expires_in: 7200 });
    const stable = await client();
    await stable.mp.getAccessToken({ forceRefresh: true });
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/mp/cgi-bin/stable_token' });
    expect(JSON.parse(seen[0].body)).toEqual({ grant_type: 'client_credential', appid: 'wx1234567890abcdef', secret: 'S'.repeat(32), force_refresh: true });
    await stable.moduleRef.close();
    const classic = await client({ WECHAT_USE_STABLE_TOKEN: 'false' });
    await classic.mp.getAccessToken();
    expect(seen[1]).toMatchObject({ method: 'GET', url: `/mp/cgi-bin/token?grant_type=client_credential&appid=wx1234567890abcdef&secret=${'S'.repeat(32)}` });
    await classic.moduleRef.close();
  });

  it('turns errcode into WechatMpApiError', async () => {
    const { mp, moduleRef } = await client();
    answer = () => ({ errcode: 40163, errmsg: 'code been used, hints: [ req_id: zp1Bma0037uth6 ]' });
    const error = (await mp.exchangeCode('USED').catch((e: unknown) => e)) as WechatMpApiError;
    expect(error).toBeInstanceOf(WechatMpApiError);
    expect(error.errcode).toBe(40163);
    answer = () => ({ errcode: 42001, errmsg: 'access_token expired' });
    const expired = (await mp.getJsapiTicket('OLD').catch((e: unknown) => e)) as WechatMpApiError;
    expect(expired.isTokenInvalid).toBe(true);
    await moduleRef.close();
  });
});
