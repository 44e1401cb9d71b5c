import { createDecipheriv, createHash } from 'node:crypto';
import { WechatPayDecryptError } from '../pay/errors';

/** The AES-256-ECB key of v2 refund notifications: lowercase hex MD5 of the API key, as 32 ASCII bytes. */
function reqInfoKey(apiKey: string): Buffer {
  return Buffer.from(createHash('md5').update(apiKey, 'utf8').digest('hex').toLowerCase(), 'utf8');
}

/** Decrypts a refund notification's `req_info` (Base64 of AES-256-ECB, PKCS#7) to its `<root>` XML. */
export function decryptReqInfo(reqInfo: string, apiKey: string): string {
  try {
    const decipher = createDecipheriv('aes-256-ecb', reqInfoKey(apiKey), null);
    return Buffer.concat([decipher.update(Buffer.from(reqInfo, 'base64')), decipher.final()]).toString('utf8');
  } catch {
    throw new WechatPayDecryptError('req_info cannot be decrypted with the APIv2 key (wrong key or tampered data)');
  }
}
