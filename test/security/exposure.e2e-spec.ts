import request from 'supertest';
import { listenHost } from '../../src/app.factory';
import { loadConfig } from '../../src/config/load-config';
import { liveEnv, removeLiveEnvKeys } from '../helpers/live-env';
import { startTestApp } from '../helpers/test-app';

/** Issue 11 item 10: what a running copy exposes (API docs, bound address). */
afterAll(removeLiveEnvKeys);

describe('API docs exposure (API_DOCS)', () => {
  it('live mode does not hand the whole admin API map to anyone at /docs and /docs-json', async () => {
    const t = await startTestApp({ env: liveEnv() });
    try {
      await request(t.baseUrl).get('/docs').expect(404);
      await request(t.baseUrl).get('/docs-json').expect(404);
    } finally {
      await t.close();
    }
  });

  it('live mode serves the docs only when API_DOCS=true is set explicitly', async () => {
    const t = await startTestApp({ env: liveEnv({ API_DOCS: 'true' }) });
    try {
      const res = await request(t.baseUrl).get('/docs-json').expect(200);
      expect(res.body.info.title).toBe('wechat-h5-pay');
    } finally {
      await t.close();
    }
  });

  it('sandbox mode serves /docs and /docs-json by default, and API_DOCS=false turns them off', async () => {
    const on = await startTestApp();
    try {
      await request(on.baseUrl).get('/docs').redirects(1).expect(200);
      expect((await request(on.baseUrl).get('/docs-json').expect(200)).body.paths).toBeDefined();
    } finally {
      await on.close();
    }
    const off = await startTestApp({ env: { API_DOCS: 'false' } });
    try {
      await request(off.baseUrl).get('/docs-json').expect(404);
    } finally {
      await off.close();
    }
  });

  it('a bad API_DOCS value is a start-up error naming the variable', () => {
    expect(() => loadConfig({ NODE_ENV: 'test', API_DOCS: 'maybe' })).toThrow(/API_DOCS/);
  });
});

describe('bound address (HOST)', () => {
  it('the sandbox (open control API, consent-as-anyone, public admin token) is not reachable from the LAN: binds 127.0.0.1 by default', () => {
    expect(listenHost(loadConfig({ NODE_ENV: 'test' }))).toBe('127.0.0.1');
  });

  it('HOST changes the sandbox bind address; live mode binds all interfaces unless HOST is set', () => {
    expect(listenHost(loadConfig({ NODE_ENV: 'test', HOST: '0.0.0.0' }))).toBe('0.0.0.0');
    expect(listenHost(loadConfig({ NODE_ENV: 'test', ...liveEnv() }))).toBeUndefined();
    expect(listenHost(loadConfig({ NODE_ENV: 'test', ...liveEnv({ HOST: '10.0.0.5' }) }))).toBe('10.0.0.5');
  });
});
