import { AuthCrypto, TokenDecryptionError } from './auth-crypto';

const SECRET = 'unit-test-session-secret-of-32-characters-or-more';
const TOKEN = '86_dSx0nR3aFq-oAuTh-access-token-value_Zx9';

/** Flips one bit of the byte at `index` of a base64url field. */
function flip(field: string, index: number): string {
  const bytes = Buffer.from(field, 'base64url');
  bytes[index] ^= 0x01;
  return bytes.toString('base64url');
}

function decryptError(crypto: AuthCrypto, value: string): unknown {
  try {
    crypto.decrypt(value);
  } catch (error) {
    return error;
  }
  throw new Error('expected decrypt to fail');
}

describe('AuthCrypto token encryption', () => {
  const crypto = new AuthCrypto(SECRET);

  it('round-trips, as v1.<iv>.<ciphertext+tag> that does not contain the plaintext', () => {
    const sealed = crypto.encrypt(TOKEN);
    expect(sealed).toMatch(/^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
    expect(sealed).not.toContain(TOKEN);
    expect(sealed).not.toContain(Buffer.from(TOKEN).toString('base64url'));
    expect(crypto.decrypt(sealed)).toBe(TOKEN);
    // a fresh IV each time
    expect(crypto.encrypt(TOKEN)).not.toBe(sealed);
    expect(crypto.decrypt(crypto.encrypt(''))).toBe('');
    expect(crypto.decrypt(crypto.encrypt('昵称 ✓'))).toBe('昵称 ✓');
  });

  it('decrypts under a second instance built from the same SESSION_SECRET (a restart)', () => {
    expect(new AuthCrypto(SECRET).decrypt(crypto.encrypt(TOKEN))).toBe(TOKEN);
  });

  it.each([
    ['ciphertext', (v: string, iv: string, data: string) => `${v}.${iv}.${flip(data, 0)}`],
    ['tag', (v: string, iv: string, data: string) => `${v}.${iv}.${flip(data, Buffer.from(data, 'base64url').length - 1)}`],
    ['iv', (v: string, iv: string, data: string) => `${v}.${flip(iv, 0)}.${data}`],
  ])('refuses a tampered %s with TokenDecryptionError', (_part, tamper) => {
    const [v, iv, data] = crypto.encrypt(TOKEN).split('.');
    const error = decryptError(crypto, tamper(v, iv, data));
    expect(error).toBeInstanceOf(TokenDecryptionError);
    expect((error as Error).message).toContain('failed authentication');
  });

  it('refuses a value encrypted under another SESSION_SECRET with TokenDecryptionError', () => {
    const other = new AuthCrypto(`${SECRET}-rotated`);
    const error = decryptError(other, crypto.encrypt(TOKEN));
    expect(error).toBeInstanceOf(TokenDecryptionError);
    expect((error as Error).message).toContain('another SESSION_SECRET');
  });

  it.each([
    ['plaintext', TOKEN],
    ['an unknown version', `v2.${'A'.repeat(16)}.${'A'.repeat(40)}`],
    ['a missing part', 'v1.AAAAAAAAAAAAAAAA'],
    ['an extra part', `${'v1.AAAAAAAAAAAAAAAA'}.${'A'.repeat(40)}.x`],
    ['a short iv', `v1.AAAA.${'A'.repeat(40)}`],
    ['a truncated tag', 'v1.AAAAAAAAAAAAAAAA.AAAA'],
  ])('refuses %s with TokenDecryptionError', (_what, value) => {
    expect(decryptError(crypto, value)).toBeInstanceOf(TokenDecryptionError);
  });

  it('keeps its keys apart: a session signature is not a state signature, nor valid under another secret', () => {
    const session = crypto.signSession('abc');
    expect(crypto.verifySession(session)).toBe('abc');
    expect(new AuthCrypto(`${SECRET}-rotated`).verifySession(session)).toBeUndefined();
    const nonce = 'f'.repeat(32);
    const binding = 'b'.repeat(32);
    expect(crypto.verifyState(crypto.signState(nonce, binding), binding)).toBe(nonce);
    expect(crypto.verifyState(crypto.signState(nonce, binding), 'c'.repeat(32))).toBeUndefined();
    expect(crypto.verifyState(nonce + session.slice(session.lastIndexOf('.') + 1).slice(0, 32), binding)).toBeUndefined();
  });
});
