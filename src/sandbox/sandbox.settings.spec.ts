import { ConfigValidationError, loadConfig } from '../config/load-config';
import { hostAllowed, pageUnderPayDirectory } from './sandbox.settings';

describe('JSAPI payment directories', () => {
  it('lets a bare domain cover every page on it', () => {
    expect(pageUnderPayDirectory('https://a.com/', ['https://a.com/'])).toBe(true);
    expect(pageUnderPayDirectory('https://a.com/x/y/pay.html?x=1#frag', ['https://a.com'])).toBe(true);
  });

  it('requires a deeper directory to match exactly', () => {
    const dirs = ['https://a.com/x/y/'];
    expect(pageUnderPayDirectory('https://a.com/x/y/index.html', dirs)).toBe(true);
    expect(pageUnderPayDirectory('https://a.com/x/y/', dirs)).toBe(true);
    expect(pageUnderPayDirectory('https://a.com/x/index.html', dirs)).toBe(false);
    expect(pageUnderPayDirectory('https://a.com/x/y/pay/index.html', dirs)).toBe(false);
    expect(pageUnderPayDirectory('https://a.com/x/yy/index.html', dirs)).toBe(false);
  });

  it('compares scheme and host, not the port', () => {
    expect(pageUnderPayDirectory('http://a.com/p', ['https://a.com/'])).toBe(false);
    expect(pageUnderPayDirectory('https://b.com/p', ['https://a.com/'])).toBe(false);
    expect(pageUnderPayDirectory('http://127.0.0.1:4321/shop', ['http://127.0.0.1:3000/'])).toBe(true);
    expect(pageUnderPayDirectory('not a url', ['https://a.com/'])).toBe(false);
  });

  it('checks hosts for JS-safe and OAuth domains', () => {
    expect(hostAllowed('https://shop.example.com/a?b', ['shop.example.com'])).toBe(true);
    expect(hostAllowed('https://evil.com/shop.example.com', ['shop.example.com'])).toBe(false);
  });
});

describe('SANDBOX_OVER_REFUND_ERROR', () => {
  it('defaults to INVALID_REQUEST (WeChat current error table) and accepts NOT_ENOUGH', () => {
    expect(loadConfig({ NODE_ENV: 'test' }).sandbox.overRefundError).toBe('INVALID_REQUEST');
    expect(loadConfig({ NODE_ENV: 'test', SANDBOX_OVER_REFUND_ERROR: 'INVALID_REQUEST' }).sandbox.overRefundError).toBe('INVALID_REQUEST');
  });

  it('refuses anything else, naming the variable', () => {
    expect(() => loadConfig({ NODE_ENV: 'test', SANDBOX_OVER_REFUND_ERROR: 'NOTENOUGH' })).toThrow(ConfigValidationError);
    expect(() => loadConfig({ NODE_ENV: 'test', SANDBOX_OVER_REFUND_ERROR: 'NOTENOUGH' })).toThrow(/SANDBOX_OVER_REFUND_ERROR.*must be NOT_ENOUGH or INVALID_REQUEST/);
  });
});

describe('SANDBOX_SIGN_MODE', () => {
  it('defaults to public_key, accepts certificate and migration, and publickey as a spelling of public_key', () => {
    expect(loadConfig({ NODE_ENV: 'test' }).sandbox.signMode).toBe('public_key');
    expect(loadConfig({ NODE_ENV: 'test', SANDBOX_SIGN_MODE: 'publickey' }).sandbox.signMode).toBe('public_key');
    expect(loadConfig({ NODE_ENV: 'test', SANDBOX_SIGN_MODE: 'certificate' }).sandbox.signMode).toBe('certificate');
    expect(loadConfig({ NODE_ENV: 'test', SANDBOX_SIGN_MODE: 'migration' }).sandbox.signMode).toBe('migration');
  });

  it('refuses anything else, naming the variable and the values it takes', () => {
    expect(() => loadConfig({ NODE_ENV: 'test', SANDBOX_SIGN_MODE: 'both' })).toThrow(ConfigValidationError);
    expect(() => loadConfig({ NODE_ENV: 'test', SANDBOX_SIGN_MODE: 'both' })).toThrow(/SANDBOX_SIGN_MODE.*must be public_key \(or publickey\), certificate or migration/);
  });
});
