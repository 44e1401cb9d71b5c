import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Keys derived from SESSION_SECRET with HKDF, one per purpose, so that a token signature can never
 * be replayed as a state signature, and the encryption key is never used to sign.
 */
export class AuthCrypto {
  private readonly sessionKey: Buffer;
  private readonly stateKey: Buffer;
  private readonly encryptionKey: Buffer;

  constructor(secret: string) {
    const derive = (info: string) => Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), 'wechat-h5-pay', info, 32));
    this.sessionKey = derive('session-token');
    this.stateKey = derive('oauth-state');
    this.encryptionKey = derive('oauth-token-encryption');
  }

  /** `<id>.<base64url hmac>` */
  signSession(id: string): string {
    return `${id}.${this.mac(this.sessionKey, id).toString('base64url')}`;
  }

  /** The session id when the token's signature is ours, else undefined. */
  verifySession(token: string): string | undefined {
    const dot = token.lastIndexOf('.');
    if (dot <= 0) return undefined;
    const id = token.slice(0, dot);
    return this.equal(token.slice(dot + 1), this.mac(this.sessionKey, id).toString('base64url')) ? id : undefined;
  }

  /**
   * OAuth `state`: [0-9a-f] only (WeChat allows [a-zA-Z0-9], <= 128 bytes): nonce + truncated HMAC over
   * the nonce and the browser binding (the login cookie's value), so that a state only completes in the
   * browser that started the login (login CSRF: an attacker's callback URL fails in the victim's browser).
   */
  signState(nonce: string, binding: string): string {
    return nonce + this.mac(this.stateKey, `${nonce}.${binding}`).toString('hex').slice(0, 32);
  }

  /** The nonce when the state is ours and was issued to this binding, else undefined. */
  verifyState(state: string, binding: string): string | undefined {
    if (!/^[0-9a-f]{64}$/.test(state) || !isLoginBinding(binding)) return undefined;
    const nonce = state.slice(0, 32);
    return this.equal(state.slice(32), this.mac(this.stateKey, `${nonce}.${binding}`).toString('hex').slice(0, 32)) ? nonce : undefined;
  }

  /** AES-256-GCM for OAuth tokens at rest: `v1.<iv>.<ciphertext+tag>` (base64url). */
  encrypt(plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.encryptionKey, iv);
    const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `v1.${iv.toString('base64url')}.${data.toString('base64url')}`;
  }

  /** The plaintext of `encrypt`; TokenDecryptionError when the value is not ours, altered, or from another SESSION_SECRET. */
  decrypt(value: string): string {
    const parts = value.split('.');
    const [version, iv, data] = parts;
    if (parts.length !== 3 || version !== 'v1' || !iv || !data) throw new TokenDecryptionError('unknown token encryption format');
    const nonce = Buffer.from(iv, 'base64url');
    const raw = Buffer.from(data, 'base64url');
    if (nonce.length !== 12 || raw.length < 16) throw new TokenDecryptionError('truncated encrypted token');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.encryptionKey, nonce);
      decipher.setAuthTag(raw.subarray(raw.length - 16));
      return Buffer.concat([decipher.update(raw.subarray(0, raw.length - 16)), decipher.final()]).toString('utf8');
    } catch {
      throw new TokenDecryptionError('encrypted token failed authentication (altered, or encrypted under another SESSION_SECRET)');
    }
  }

  private mac(key: Buffer, data: string): Buffer {
    return createHmac('sha256', key).update(data, 'utf8').digest();
  }

  private equal(a: string, b: string): boolean {
    const x = Buffer.from(a);
    const y = Buffer.from(b);
    return x.length === y.length && timingSafeEqual(x, y);
  }
}

/** A stored OAuth token that cannot be decrypted with this SESSION_SECRET. */
export class TokenDecryptionError extends Error {
  override readonly name = 'TokenDecryptionError';
}

/** A login cookie value: 32 lowercase hex characters (randomId(16)). */
export function isLoginBinding(value: unknown): value is string {
  return typeof value === 'string' && /^[0-9a-f]{32}$/.test(value);
}

export function randomId(bytes = 16): string {
  return randomBytes(bytes).toString('hex');
}
