import { KeyObject } from 'node:crypto';
import { authorizationHeader, nonce, requestMessage } from './formatter';
import { loadPrivateKey, rsaSign } from './rsa';

/** Signs merchant requests (Authorization header) and JSAPI invoke parameters with the merchant key. */
export class WechatPaySigner {
  private readonly key: KeyObject;

  constructor(
    readonly mchid: string,
    readonly serialNo: string,
    privateKey: KeyObject | string,
  ) {
    this.key = typeof privateKey === 'string' ? loadPrivateKey(privateKey) : privateKey;
  }

  sign(message: string | Buffer): string {
    return rsaSign(message, this.key);
  }

  /**
   * The Authorization header for one request. `body` must be exactly the bytes that will be sent
   * ('' for GET and bodiless requests).
   */
  authorization(method: string, canonicalUrl: string, body: string, timestamp: number, nonceStr: string = nonce()): string {
    const signature = this.sign(requestMessage(method, canonicalUrl, timestamp, nonceStr, body));
    return authorizationHeader({ mchid: this.mchid, nonceStr, signature, timestamp, serialNo: this.serialNo });
  }
}
