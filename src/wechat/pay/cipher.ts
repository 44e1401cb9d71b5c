import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { AEAD_AES_256_GCM } from './constants';
import { WechatPayDecryptError } from './errors';
import type { EncryptedResource } from './types';

const TAG_LENGTH = 16;

/**
 * AEAD_AES_256_GCM with the APIv3 key used as its 32 UTF-8 bytes; ciphertext is
 * base64(ciphertext || 16-byte tag). decipher.final() is what checks the tag: skipping it (as one
 * popular SDK does) accepts forged data.
 */
export class AesGcmCipher {
  private readonly key: Buffer;

  private disabledReason?: string;

  constructor(apiv3Key: string) {
    this.key = Buffer.from(apiv3Key, 'utf8');
    if (this.key.length !== 32) throw new Error('the APIv3 key must be exactly 32 bytes');
  }

  /** A cipher without an APIv3 key (an APIv2-only merchant): every decryption fails with `reason`. */
  static disabled(reason: string): AesGcmCipher {
    const cipher = new AesGcmCipher(randomBytes(16).toString('hex'));
    cipher.disabledReason = reason;
    return cipher;
  }

  decrypt(ciphertextBase64: string, nonceStr: string, associatedData: string): Buffer {
    if (this.disabledReason) throw new WechatPayDecryptError(`no APIv3 decryption: ${this.disabledReason}`);
    const data = Buffer.from(ciphertextBase64, 'base64');
    if (data.length < TAG_LENGTH + 1) throw new WechatPayDecryptError('ciphertext is too short to hold a GCM tag');
    const iv = Buffer.from(nonceStr, 'utf8');
    if (iv.length === 0) throw new WechatPayDecryptError('missing nonce');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, iv);
      decipher.setAuthTag(data.subarray(data.length - TAG_LENGTH));
      decipher.setAAD(Buffer.from(associatedData ?? '', 'utf8'));
      const head = decipher.update(data.subarray(0, data.length - TAG_LENGTH));
      const tail = decipher.final();
      return tail.length ? Buffer.concat([head, tail]) : head;
    } catch (error) {
      if (error instanceof WechatPayDecryptError) throw error;
      throw new WechatPayDecryptError('AES-256-GCM authentication failed: wrong APIv3 key or tampered ciphertext');
    }
  }

  decryptResource(resource: EncryptedResource): Buffer {
    if (!resource || typeof resource !== 'object') throw new WechatPayDecryptError('missing encrypted resource');
    if (resource.algorithm !== AEAD_AES_256_GCM) {
      throw new WechatPayDecryptError(`unsupported resource algorithm ${String(resource.algorithm)}`);
    }
    if (typeof resource.ciphertext !== 'string' || typeof resource.nonce !== 'string') {
      throw new WechatPayDecryptError('resource lacks ciphertext or nonce');
    }
    return this.decrypt(resource.ciphertext, resource.nonce, resource.associated_data ?? '');
  }

  decryptJson<T>(resource: EncryptedResource): T {
    const plain = this.decryptResource(resource);
    try {
      return JSON.parse(plain.toString('utf8')) as T;
    } catch {
      throw new WechatPayDecryptError('decrypted resource is not JSON');
    }
  }

  /** The other direction, for tests and tools (WeChat encrypts; merchants only decrypt). */
  encrypt(plaintext: string | Buffer, associatedData = '', nonceStr = randomBytes(6).toString('hex')): EncryptedResource {
    const cipher = createCipheriv('aes-256-gcm', this.key, Buffer.from(nonceStr, 'utf8'));
    cipher.setAAD(Buffer.from(associatedData, 'utf8'));
    const data = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return { algorithm: AEAD_AES_256_GCM, ciphertext: data.toString('base64'), nonce: nonceStr, associated_data: associatedData };
  }
}
