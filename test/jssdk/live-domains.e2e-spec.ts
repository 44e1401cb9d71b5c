import request from 'supertest';
import { liveEnv, removeLiveEnvKeys } from '../helpers/live-env';
import { TestApp, startTestApp } from '../helpers/test-app';

/**
 * Live mode (no sandbox): JSSDK_ALLOWED_DOMAINS is the only source of allowed page hosts. Nothing
 * here reaches WeChat: the API bases point at a closed port, and public-key mode downloads no
 * certificates at start-up.
 */
afterAll(removeLiveEnvKeys);

/** pino level 40 is warn. */
const warning = (t: TestApp) => t.logs.filter((l) => typeof l.msg === 'string' && l.msg.includes('JSSDK_ALLOWED_DOMAINS is empty'));

describe('JSSDK_ALLOWED_DOMAINS in live mode', () => {
  it('warns once at start-up when it is empty, since every /jssdk/config would be 400', async () => {
    const t = await startTestApp({ captureLogs: true, env: liveEnv() });
    try {
      expect(warning(t)).toHaveLength(1);
      expect(warning(t)[0]).toMatchObject({ level: 40, msg: expect.stringContaining('every GET /jssdk/config will answer 400') });
      // the warning is true: even the shop's own public host is refused (no sandbox allowance in live mode)
      const res = await request(t.baseUrl).get('/jssdk/config').query({ url: 'https://shop.example.com/shop/' }).expect(400);
      expect(res.body.code).toBe('URL_NOT_ALLOWED');
    } finally {
      await t.close();
    }
  });

  it('stays quiet when domains are configured', async () => {
    const t = await startTestApp({ captureLogs: true, env: liveEnv({ JSSDK_ALLOWED_DOMAINS: 'shop.example.com' }) });
    try {
      await request(t.baseUrl).get('/jssdk/config').query({ url: 'https://elsewhere.example.com/' }).expect(400);
      expect(t.logs.length).toBeGreaterThan(0); // the capture works: the request above was logged
      expect(warning(t)).toHaveLength(0);
    } finally {
      await t.close();
    }
  });
});
