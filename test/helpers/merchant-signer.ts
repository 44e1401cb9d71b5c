import { createPrivateKey, createPublicKey, KeyObject, randomBytes, sign, verify } from 'node:crypto';

/**
 * A deliberately separate, minimal APIv3 merchant client for the sandbox's own tests (the sandbox must
 * be checked by something other than src/wechat, or one shared bug would pass both).
 */
export class TestMerchant {
  private readonly key: KeyObject;
  private readonly wechatpayKey: KeyObject;

  constructor(
    readonly baseUrl: string,
    readonly keystore: {
      mchid: string;
      appid: string;
      merchant: { privateKeyPem: string; certSerial: string };
      publicKey: { publicKeyPem: string; id: string };
      platform: { certificatePem: string; serial: string };
      apiv3Key: string;
    },
  ) {
    this.key = createPrivateKey(keystore.merchant.privateKeyPem);
    this.wechatpayKey = createPublicKey(keystore.publicKey.publicKeyPem);
  }

  authorization(method: string, target: string, body: string, timestamp = Math.floor(Date.now() / 1000)): string {
    const nonce = randomBytes(16).toString('hex');
    const message = `${method}\n${target}\n${timestamp}\n${nonce}\n${body}\n`;
    const signature = sign('sha256', Buffer.from(message), this.key).toString('base64');
    return `WECHATPAY2-SHA256-RSA2048 mchid="${this.keystore.mchid}",nonce_str="${nonce}",signature="${signature}",timestamp="${timestamp}",serial_no="${this.keystore.merchant.certSerial}"`;
  }

  /** Sends a signed request; `path` is below /sandbox (e.g. /v3/pay/transactions/jsapi). */
  async request(
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    options: { authorization?: string; rawBody?: string; headers?: Record<string, string> } = {},
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- WeChat answers of every shape
  ): Promise<{ status: number; headers: Headers; text: string; json: any; raw: Buffer }> {
    const target = `/sandbox${path}`;
    const text = options.rawBody ?? (body === undefined ? '' : JSON.stringify(body));
    const res = await fetch(`${this.baseUrl}${target}`, {
      method,
      headers: {
        Authorization: options.authorization ?? this.authorization(method, target, text),
        Accept: 'application/json',
        'User-Agent': 'wechat-h5-pay-tests',
        ...(text ? { 'Content-Type': 'application/json' } : {}),
        ...options.headers,
      },
      body: text || undefined,
    });
    const raw = Buffer.from(await res.arrayBuffer());
    const str = raw.toString('utf8');
    let json: unknown;
    try {
      json = str ? JSON.parse(str) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text: str, json, raw };
  }

  /** Checks a response's Wechatpay-* headers with the WeChat Pay public key (public-key mode). */
  responseVerifies(res: { headers: Headers; raw: Buffer }, key: KeyObject = this.wechatpayKey): boolean {
    const ts = res.headers.get('wechatpay-timestamp');
    const nonce = res.headers.get('wechatpay-nonce');
    const sig = res.headers.get('wechatpay-signature');
    if (!ts || !nonce || !sig) return false;
    const message = Buffer.concat([Buffer.from(`${ts}\n${nonce}\n`), res.raw, Buffer.from('\n')]);
    return verify('sha256', message, key, Buffer.from(sig, 'base64'));
  }

  prepayBody(outTradeNo: string, openid: string, notifyUrl: string, total = 100, extra: Record<string, unknown> = {}) {
    return {
      appid: this.keystore.appid,
      mchid: this.keystore.mchid,
      description: '沙箱测试商品',
      out_trade_no: outTradeNo,
      notify_url: notifyUrl,
      amount: { total, currency: 'CNY' },
      payer: { openid },
      ...extra,
    };
  }
}
