/**
 * Issue 12 item 18: WeChat accepts a 网页授权域名 only after fetching MP_verify_<code>.txt from its root.
 * WECHAT_MP_VERIFY_FILE names that file; the app serves it there, byte for byte.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigValidationError, loadConfig } from '../../src/config/load-config';
import { TestApp, startTestApp, tempDir } from '../helpers/test-app';

describe('WECHAT_MP_VERIFY_FILE (网页授权域名 verification file)', () => {
  let t: TestApp;
  const dir = tempDir();
  const file = join(dir, 'MP_verify_Ab12Cd34Ef56Gh78.txt');
  writeFileSync(file, 'Ab12Cd34Ef56Gh78');

  beforeAll(async () => {
    t = await startTestApp({ env: { WECHAT_MP_VERIFY_FILE: file } });
  });
  afterAll(() => t?.close());

  it('is served at /MP_verify_<code>.txt with its exact content, as text', async () => {
    const res = await fetch(`${t.baseUrl}/MP_verify_Ab12Cd34Ef56Gh78.txt`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await res.text()).toBe('Ab12Cd34Ef56Gh78');
    expect((await fetch(`${t.baseUrl}/MP_verify_Ab12Cd34Ef56Gh78.txt`, { method: 'HEAD' })).status).toBe(200);
  });

  it('serves nothing under another name', async () => {
    expect((await fetch(`${t.baseUrl}/MP_verify_Other000000.txt`)).status).toBe(404);
  });

  it('refuses to start with a renamed file or a missing one, saying why', () => {
    const renamed = join(dir, 'verify.txt');
    writeFileSync(renamed, 'x');
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig({ NODE_ENV: 'test', DATA_DIR: dir, ...env });
      } catch (error) {
        return (error as ConfigValidationError).problems;
      }
      return [];
    };
    expect(problems({ WECHAT_MP_VERIFY_FILE: renamed })).toEqual([
      { variable: 'WECHAT_MP_VERIFY_FILE', reason: expect.stringMatching(/must be the path of the MP_verify_<code>\.txt file .* keeping its name \(got a file named "verify\.txt"\)/) },
    ]);
    expect(problems({ WECHAT_MP_VERIFY_FILE: join(dir, 'MP_verify_Missing1234.txt') })).toEqual([
      { variable: 'WECHAT_MP_VERIFY_FILE', reason: expect.stringMatching(/MP_verify_Missing1234\.txt, which does not exist or cannot be read/) },
    ]);
  });
});
