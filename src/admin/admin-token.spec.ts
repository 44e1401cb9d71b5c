import { bearerToken, matchesAnyToken, tokenFingerprint } from './admin-token';

describe('admin tokens', () => {
  it('matches only configured tokens, whatever their length', () => {
    const tokens = ['first-token-0123456789', 'second-token-abcdefghij'];
    expect(matchesAnyToken('second-token-abcdefghij', tokens)).toBe(true);
    expect(matchesAnyToken('second-token-abcdefghi', tokens)).toBe(false);
    expect(matchesAnyToken('', tokens)).toBe(false);
    expect(matchesAnyToken('first-token-0123456789', [])).toBe(false);
  });

  it('parses only the Bearer scheme', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('bearer  abc ')).toBe('abc');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });

  it('fingerprints without revealing the token', () => {
    expect(tokenFingerprint('first-token-0123456789')).toMatch(/^[0-9a-f]{12}$/);
    expect(tokenFingerprint('a')).not.toEqual(tokenFingerprint('b'));
  });
});
