import { isIP } from 'node:net';
import { accessSync, constants, readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { AppConfig, DatabaseConfig, SANDBOX_ADMIN_TOKEN, WechatConfig, WechatMode } from './app-config';
import { parseDuration } from './duration';
import { AuthEnv } from './env/auth.env';
import { BillingEnv } from './env/billing.env';
import { CoreEnv } from './env/core.env';
import { PaymentEnv } from './env/payment.env';
import { SandboxEnv } from './env/sandbox.env';

/** SANDBOX_MERCHANT_TYPE=partner: the sandbox's first bound sub-merchant (src/sandbox/sandbox-partner.ts). */
const SANDBOX_DEFAULT_SUB_MCHID = '1900000201';
import { MetricsEnv } from './env/metrics.env';
import { EnvProblem, RawEnv, parseList, validateSection } from './env/validate-section';
import { toBool } from './env/validators';
import { WechatEnv } from './env/wechat.env';

export class ConfigValidationError extends Error {
  constructor(readonly problems: EnvProblem[]) {
    super(
      'Invalid environment variables:\n' +
        problems.map((p) => `  - ${p.variable}: ${p.reason}`).join('\n') +
        '\nSee .env.example for every variable and its meaning.',
    );
    this.name = 'ConfigValidationError';
  }
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

function parseMysql(url: string): DatabaseConfig {
  const u = new URL(url);
  return {
    type: 'mysql',
    url,
    host: u.hostname,
    port: u.port ? Number(u.port) : 3306,
    username: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: decodeURIComponent(u.pathname.replace(/^\//, '')),
  };
}

/** The demo shop's name (the default of WECHATPAY_H5_APP_NAME, shown on WeChat's H5 cashier). */
const SHOP_NAME = '微信支付演示商城';

/** WeChat Pay's own API hosts (primary and backup domains). */
const WECHATPAY_HOSTS = new Set(['api.mch.weixin.qq.com', 'api2.mch.weixin.qq.com', 'api.wechatpay.cn', 'api2.wechatpay.cn']);

function isWechatPayHost(url: string): boolean {
  try {
    return WECHATPAY_HOSTS.has(new URL(url).hostname);
  } catch {
    return false;
  }
}

/**
 * Where the Pay API fails over to. WeChat's backup domain is a fallback for WeChat's own primary only:
 * an app pointed at another server (the sandbox, a test double, a proxy) must not start sending its
 * signed requests to WeChat when that server is unreachable. WECHATPAY_API_BACKUP_BASE is used as
 * given — except that in sandbox mode, traffic meant for a local sandbox never goes to WeChat's hosts.
 */
function backupBase(mode: WechatMode, primary: string, configured: string | undefined): string | undefined {
  if (configured === undefined) return isWechatPayHost(primary) ? 'https://api2.wechatpay.cn' : undefined;
  if (mode === 'sandbox' && isWechatPayHost(configured) && !isWechatPayHost(primary)) return undefined;
  return trimSlash(configured);
}

function isCertificatePem(path: string): boolean {
  try {
    return readFileSync(path, 'utf8').includes('-----BEGIN CERTIFICATE-----');
  } catch {
    return false;
  }
}

function readable(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * WECHAT_MP_VERIFY_FILE: the file downloaded from 公众号后台 (设置与开发 → 公众号设置 → 功能设置 → 网页授权域名),
 * read once. Its name must stay MP_verify_<code>.txt: WeChat fetches exactly that name.
 */
function readMpVerifyFile(path: string, problems: EnvProblem[]): { name: string; content: string } | undefined {
  const name = basename(path);
  if (!/^MP_verify_[0-9A-Za-z]{1,64}\.txt$/.test(name)) {
    problems.push({ variable: 'WECHAT_MP_VERIFY_FILE', reason: `must be the path of the MP_verify_<code>.txt file downloaded from the official account's settings, keeping its name (got a file named ${JSON.stringify(name.slice(0, 80))})` });
    return undefined;
  }
  try {
    const content = readFileSync(path, 'utf8');
    if (content.length > 1024) {
      problems.push({ variable: 'WECHAT_MP_VERIFY_FILE', reason: `points to ${path}, which is larger than 1 KB: not the verification file (it holds a short code)` });
      return undefined;
    }
    return { name, content };
  } catch {
    problems.push({ variable: 'WECHAT_MP_VERIFY_FILE', reason: `points to ${path}, which does not exist or cannot be read` });
    return undefined;
  }
}

const TRUST_PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * TRUST_PROXY in Express's forms: unset / none / false (trust nobody), a hop count (1 = the nearest proxy),
 * or a comma-separated list of addresses, CIDRs and the names loopback, linklocal, uniquelocal.
 * Returns the Express value, or a string describing what is wrong.
 */
export function parseTrustProxy(raw: string | undefined): false | number | string[] | string {
  const value = raw?.trim() ?? '';
  if (value === '' || value === 'none' || value === 'false') return false;
  if (/^\d+$/.test(value)) {
    const hops = Number(value);
    return hops <= 32 ? (hops === 0 ? false : hops) : 'must be a hop count of at most 32';
  }
  const entries = value.split(',').map((e) => e.trim());
  for (const entry of entries) {
    if (TRUST_PROXY_NAMES.has(entry)) continue;
    const [address, bits, extra] = entry.split('/');
    const family = isIP(address ?? '');
    const maxBits = family === 4 ? 32 : 128;
    const bitsOk = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= maxBits);
    if (!family || !bitsOk || extra !== undefined) {
      return `must be none, a hop count (such as 1), or a comma-separated list of addresses/CIDRs and loopback, linklocal, uniquelocal — ${JSON.stringify(entry.slice(0, 60))} is none of these`;
    }
  }
  return entries;
}

/**
 * Validates the environment and builds the typed configuration. Every problem is collected so that
 * one start-up attempt names every bad variable; the values of secrets never appear in messages.
 */
export function loadConfig(env: RawEnv = process.env): AppConfig {
  const core = validateSection(CoreEnv, env);
  const wechat = validateSection(WechatEnv, env);
  const sandbox = validateSection(SandboxEnv, env);
  const auth = validateSection(AuthEnv, env);
  const payment = validateSection(PaymentEnv, env);
  const billing = validateSection(BillingEnv, env);
  const metrics = validateSection(MetricsEnv, env);
  const problems: EnvProblem[] = [
    ...core.problems,
    ...wechat.problems,
    ...sandbox.problems,
    ...auth.problems,
    ...payment.problems,
    ...billing.problems,
    ...metrics.problems,
  ];
  const c = core.values;
  const w = wechat.values;
  const s = sandbox.values;
  const a = auth.values;
  const p = payment.values;
  const b = billing.values;
  const m = metrics.values;

  const nodeEnv = (c.NODE_ENV ?? 'development') as AppConfig['nodeEnv'];
  const mode = (w.WECHAT_MODE ?? 'sandbox') as AppConfig['wechatMode'];
  const apiVersion = (w.WECHATPAY_API_VERSION ?? 'v3') as WechatConfig['apiVersion'];
  const port = c.PORT !== undefined ? Number(c.PORT) : 3000;
  const publicBaseUrl = trimSlash(c.PUBLIC_BASE_URL ?? `http://localhost:${port}`);
  const dataDir = resolve(c.DATA_DIR ?? './data');

  if (mode === 'sandbox' && nodeEnv === 'production') {
    problems.push({
      variable: 'WECHAT_MODE',
      reason:
        'is sandbox (the default) while NODE_ENV=production: the sandbox fakes payments and must never run in production. Set WECHAT_MODE=live with the merchant credentials.',
    });
  }

  const trustProxy = parseTrustProxy(c.TRUST_PROXY);
  if (typeof trustProxy === 'string') problems.push({ variable: 'TRUST_PROXY', reason: trustProxy });

  if (mode === 'live') {
    if (c.PUBLIC_BASE_URL !== undefined && !/^https:/i.test(c.PUBLIC_BASE_URL) && c.ALLOW_INSECURE_PUBLIC_URL !== 'true') {
      problems.push({
        variable: 'PUBLIC_BASE_URL',
        reason:
          'must be an https URL when WECHAT_MODE=live (the session cookie is only Secure over https and WeChat only calls https notify URLs); set ALLOW_INSECURE_PUBLIC_URL=true only for a local test',
      });
    }
    const v2 = apiVersion === 'v2';
    // Service-provider mode (WECHATPAY_SUB_MCHID): the same variables, all the provider's, on either API version.
    const sp = w.WECHATPAY_SUB_MCHID !== undefined;
    const whose = sp ? "the service provider's " : 'the ';
    type Required = [keyof WechatEnv | keyof CoreEnv, string | undefined, string];
    const required: Required[] = [
      ['WECHAT_APPID', w.WECHAT_APPID, sp ? "the service provider's official-account appid (appid / sp_appid)" : 'the official-account appid'],
      ['WECHAT_APPSECRET', w.WECHAT_APPSECRET, `${whose}official-account AppSecret`],
      ['WECHATPAY_MCHID', w.WECHATPAY_MCHID, sp ? "the service provider's merchant id (mch_id / sp_mchid)" : 'the merchant id'],
      ...(v2
        ? ([
            ['WECHATPAY_API_V2_KEY', w.WECHATPAY_API_V2_KEY, `${whose}32-character APIv2 key, with WECHATPAY_API_VERSION=v2`],
            ['WECHATPAY_CERT_PATH', w.WECHATPAY_CERT_PATH, `the path of ${whose}apiclient_cert.pem: APIv2 refunds use mutual TLS, with WECHATPAY_API_VERSION=v2`],
            ['WECHATPAY_PRIVATE_KEY_PATH', w.WECHATPAY_PRIVATE_KEY_PATH, 'the path of apiclient_key.pem, the key of WECHATPAY_CERT_PATH'],
          ] as Required[])
        : ([
            ['WECHATPAY_PRIVATE_KEY_PATH', w.WECHATPAY_PRIVATE_KEY_PATH, 'the path of apiclient_key.pem'],
            ['WECHATPAY_CERT_SERIAL', w.WECHATPAY_CERT_SERIAL, 'the merchant certificate serial number'],
            ['WECHATPAY_APIV3_KEY', w.WECHATPAY_APIV3_KEY, 'the 32-character APIv3 key'],
          ] as Required[])),
      ['PUBLIC_BASE_URL', c.PUBLIC_BASE_URL, 'the public https base URL that WeChat can reach'],
      ['SESSION_SECRET', c.SESSION_SECRET, 'a random secret of at least 32 characters'],
      ['ADMIN_TOKENS', c.ADMIN_TOKENS, 'at least one admin bearer token'],
    ];
    for (const [variable, value, what] of required) {
      if (value === undefined && !problems.some((p) => p.variable === variable)) {
        problems.push({ variable, reason: `is required when WECHAT_MODE=live (${what})` });
      }
    }
    for (const variable of ['WECHATPAY_PRIVATE_KEY_PATH', 'WECHATPAY_PUBLIC_KEY_PATH', 'WECHATPAY_CERT_PATH'] as const) {
      const path = w[variable];
      if (path !== undefined && !readable(path)) {
        problems.push({ variable, reason: `points to ${path}, which does not exist or cannot be read` });
      }
    }
    // The merchant certificate is only presented over TLS: an http secapi base would send refunds without it.
    if (w.WECHATPAY_SECAPI_BASE !== undefined && /^http:/i.test(w.WECHATPAY_SECAPI_BASE)) {
      problems.push({ variable: 'WECHATPAY_SECAPI_BASE', reason: 'must be an https URL when WECHAT_MODE=live (the calls sent there present the merchant certificate over mutual TLS)' });
    }
    if (w.WECHATPAY_CERT_PATH !== undefined && readable(w.WECHATPAY_CERT_PATH) && !isCertificatePem(w.WECHATPAY_CERT_PATH)) {
      problems.push({ variable: 'WECHATPAY_CERT_PATH', reason: `points to ${w.WECHATPAY_CERT_PATH}, which is not a PEM certificate (-----BEGIN CERTIFICATE-----): use apiclient_cert.pem from the merchant portal's API certificate download` });
    }
  }
  if ((w.WECHATPAY_PUBLIC_KEY_PATH === undefined) !== (w.WECHATPAY_PUBLIC_KEY_ID === undefined)) {
    const missing = w.WECHATPAY_PUBLIC_KEY_PATH === undefined ? 'WECHATPAY_PUBLIC_KEY_PATH' : 'WECHATPAY_PUBLIC_KEY_ID';
    problems.push({
      variable: missing,
      reason: 'is required together with the other one of WECHATPAY_PUBLIC_KEY_PATH / WECHATPAY_PUBLIC_KEY_ID (public-key verification mode)',
    });
  }

  if ((w.WECHAT_MINIPROGRAM_APPID === undefined) !== (w.WECHAT_MINIPROGRAM_APPSECRET === undefined)) {
    const missing = w.WECHAT_MINIPROGRAM_APPID === undefined ? 'WECHAT_MINIPROGRAM_APPID' : 'WECHAT_MINIPROGRAM_APPSECRET';
    if (!problems.some((p) => p.variable === missing)) {
      problems.push({
        variable: missing,
        reason: 'is required together with the other one of WECHAT_MINIPROGRAM_APPID / WECHAT_MINIPROGRAM_APPSECRET (mini-program login and pay); set both or neither',
      });
    }
  }

  if ((w.WECHAT_SUB_APPID === undefined) !== (w.WECHAT_SUB_APPSECRET === undefined)) {
    const missing = w.WECHAT_SUB_APPID === undefined ? 'WECHAT_SUB_APPID' : 'WECHAT_SUB_APPSECRET';
    if (!problems.some((p) => p.variable === missing)) {
      problems.push({
        variable: missing,
        reason: "is required together with the other one of WECHAT_SUB_APPID / WECHAT_SUB_APPSECRET (the sub-merchant's own official account); set both or neither",
      });
    }
  }
  if (w.WECHAT_SUB_APPID !== undefined && w.WECHATPAY_SUB_MCHID === undefined && !problems.some((p) => p.variable === 'WECHATPAY_SUB_MCHID')) {
    problems.push({
      variable: 'WECHATPAY_SUB_MCHID',
      reason: 'is required when WECHAT_SUB_APPID is set: a sub-merchant official account only exists in service-provider mode (WECHATPAY_SUB_MCHID = the default sub-merchant)',
    });
  }

  const mpVerifyFile = w.WECHAT_MP_VERIFY_FILE ? readMpVerifyFile(w.WECHAT_MP_VERIFY_FILE, problems) : undefined;

  if (problems.length > 0) throw new ConfigValidationError(problems);

  const sandboxBase = `${publicBaseUrl}/sandbox`;
  const defaultBase = (live: string) => (mode === 'sandbox' ? sandboxBase : live);

  const adminTokens = parseList(c.ADMIN_TOKENS);
  return {
    port,
    host: c.HOST ?? (mode === 'sandbox' ? '127.0.0.1' : undefined),
    apiDocs: toBool(c.API_DOCS, mode === 'sandbox'),
    nodeEnv,
    publicBaseUrl,
    trustProxy: trustProxy as AppConfig['trustProxy'],
    dataDir,
    logLevel: c.LOG_LEVEL ?? (nodeEnv === 'test' ? 'silent' : 'info'),
    database: c.DATABASE_URL
      ? parseMysql(c.DATABASE_URL)
      : { type: 'sqlite', path: resolve(dataDir, 'wechat-h5-pay.sqlite') },
    redisUrl: c.REDIS_URL,
    redisPrefix: c.REDIS_PREFIX ?? 'whp:',
    wechatMode: mode,
    wechat: {
      appid: w.WECHAT_APPID,
      appsecret: w.WECHAT_APPSECRET,
      mchid: w.WECHATPAY_MCHID,
      privateKeyPath: w.WECHATPAY_PRIVATE_KEY_PATH,
      certSerial: w.WECHATPAY_CERT_SERIAL?.toUpperCase(),
      apiv3Key: w.WECHATPAY_APIV3_KEY,
      publicKeyPath: w.WECHATPAY_PUBLIC_KEY_PATH,
      publicKeyId: w.WECHATPAY_PUBLIC_KEY_ID,
      apiVersion,
      apiV2Key: w.WECHATPAY_API_V2_KEY,
      v2SignType: (w.WECHATPAY_V2_SIGN_TYPE ?? 'HMAC-SHA256') as WechatConfig['v2SignType'],
      certPath: w.WECHATPAY_CERT_PATH,
      miniprogram:
        w.WECHAT_MINIPROGRAM_APPID && w.WECHAT_MINIPROGRAM_APPSECRET
          ? { appid: w.WECHAT_MINIPROGRAM_APPID, appsecret: w.WECHAT_MINIPROGRAM_APPSECRET }
          : undefined,
      partner: (w.WECHATPAY_SUB_MCHID ?? (mode === 'sandbox' && s.SANDBOX_MERCHANT_TYPE === 'partner' ? SANDBOX_DEFAULT_SUB_MCHID : undefined))
        ? {
            subMchid: (w.WECHATPAY_SUB_MCHID ?? SANDBOX_DEFAULT_SUB_MCHID),
            ...(w.WECHAT_SUB_APPID && w.WECHAT_SUB_APPSECRET ? { subApp: { appid: w.WECHAT_SUB_APPID, appsecret: w.WECHAT_SUB_APPSECRET } } : {}),
          }
        : undefined,
      payApiBase: trimSlash(w.WECHATPAY_API_BASE ?? defaultBase('https://api.mch.weixin.qq.com')),
      payApiBackupBase: backupBase(mode, w.WECHATPAY_API_BASE ?? defaultBase('https://api.mch.weixin.qq.com'), w.WECHATPAY_API_BACKUP_BASE),
      secapiBase: w.WECHATPAY_SECAPI_BASE === undefined ? undefined : trimSlash(w.WECHATPAY_SECAPI_BASE),
      mpApiBase: trimSlash(w.WECHAT_API_BASE ?? defaultBase('https://api.weixin.qq.com')),
      openBase: trimSlash(w.WECHAT_OPEN_BASE ?? defaultBase('https://open.weixin.qq.com')),
      useStableToken: toBool(w.WECHAT_USE_STABLE_TOKEN, true),
      mpVerifyFile,
      httpTimeoutMs: parseDuration(w.WECHAT_HTTP_TIMEOUT ?? '10s')!,
      clockSkewMaxMs: parseDuration(w.WECHATPAY_CLOCK_SKEW_MAX ?? '30s')!,
    },
    admin: {
      tokens: adminTokens.length > 0 ? adminTokens : mode === 'sandbox' ? [SANDBOX_ADMIN_TOKEN] : [],
      rateLimitPerMinute: c.ADMIN_RATE_LIMIT !== undefined ? Number(c.ADMIN_RATE_LIMIT) : 300,
    },
    session: { secret: c.SESSION_SECRET, ttlMs: parseDuration(a.SESSION_TTL ?? '7d')!, authorizeRatePerMinute: Number(a.AUTH_AUTHORIZE_RATE_LIMIT ?? 30) },
    http: {
      headersTimeoutMs: parseDuration(c.HTTP_HEADERS_TIMEOUT ?? '20s')!,
      requestTimeoutMs: parseDuration(c.HTTP_REQUEST_TIMEOUT ?? '60s')!,
      keepAliveTimeoutMs: parseDuration(c.HTTP_KEEP_ALIVE_TIMEOUT ?? '5s')!,
    },
    orders: {
      closeAfterMs: parseDuration(c.ORDER_CLOSE_AFTER ?? '5m')!,
      reconcileIntervalMs: parseDuration(p.PAYMENT_RECONCILE_INTERVAL ?? '10s')!,
      reconcileAfterMs: parseDuration(p.PAYMENT_RECONCILE_AFTER ?? '60s')!,
      closeIntervalMs: parseDuration(p.PAYMENT_CLOSE_INTERVAL ?? '10s')!,
      jobBatch: p.PAYMENT_JOB_BATCH !== undefined ? Number(p.PAYMENT_JOB_BATCH) : 100,
      wechatConcurrency: p.PAYMENT_WECHAT_CONCURRENCY !== undefined ? Number(p.PAYMENT_WECHAT_CONCURRENCY) : 8,
      queryOnReadAfterMs: parseDuration(p.PAYMENT_QUERY_ON_READ_AFTER ?? '5s')!,
      prepayRetries: Number(p.PAYMENT_PREPAY_RETRIES ?? 2),
      prepayRetryBackoffMs: parseDuration(p.PAYMENT_PREPAY_RETRY_BACKOFF ?? '200ms')!,
      paidAfterCloseAction: (p.PAID_AFTER_CLOSE_ACTION ?? 'refund') as 'refund' | 'reinstate' | 'hold',
      afterCloseRetryAfterMs: parseDuration(p.PAYMENT_AFTER_CLOSE_RETRY_AFTER ?? '20s')!,
      notifyBatchMax: p.NOTIFY_BATCH_MAX !== undefined ? Number(p.NOTIFY_BATCH_MAX) : 64,
      seedDemoProducts: toBool(p.SEED_DEMO_PRODUCTS, true),
      notifyFastPath: toBool(p.NOTIFY_FAST_PATH, true),
      notifyRejectRatePerMinute: Number(p.NOTIFY_REJECT_RATE_LIMIT ?? 30),
      notifyBodyTimeoutMs: parseDuration(p.NOTIFY_BODY_TIMEOUT ?? '10s')!,
      rejectedEventsRetentionMs: parseDuration(p.PAYMENT_EVENTS_REJECTED_RETENTION ?? '7d')!,
      h5: { appName: p.WECHATPAY_H5_APP_NAME ?? SHOP_NAME, appUrl: p.WECHATPAY_H5_APP_URL ?? publicBaseUrl },
      catalogCacheTtlMs: parseDuration(p.CATALOG_CACHE_TTL ?? '1s')!,
      limits: {
        maxOpenPerUser: Number(p.ORDER_MAX_OPEN_PER_USER ?? 5),
        maxReservedPerProduct: Number(p.ORDER_MAX_RESERVED_PER_PRODUCT ?? 20),
        createPerMinute: Number(p.ORDER_CREATE_RATE_LIMIT ?? 10),
        payPerMinute: Number(p.ORDER_PAY_RATE_LIMIT ?? 20),
        readPerMinute: Number(p.ORDER_READ_RATE_LIMIT ?? 120),
        queryOnReadPerMinute: Number(p.ORDER_QUERY_ON_READ_RATE_LIMIT ?? 10),
      },
    },
    shop: { demo: toBool(p.DEMO_SHOP, mode === 'sandbox') },
    billing: {
      refundQueryAfterMs: parseDuration(b.REFUND_QUERY_AFTER ?? '3m')!,
      refundQueryIntervalMs: parseDuration(b.REFUND_QUERY_INTERVAL ?? '1m')!,
      reconcileCron: b.RECONCILE_CRON ?? '0 10 * * *',
    },
    metrics: {
      token: m.METRICS_TOKEN || undefined,
      unpaidOverdueAfterMs: parseDuration(m.METRICS_UNPAID_OVERDUE_AFTER ?? '1m')!,
      refundProcessingAfterMs: parseDuration(m.METRICS_REFUND_PROCESSING_AFTER ?? '30m')!,
    },
    jssdk: {
      allowedDomains: parseList(c.JSSDK_ALLOWED_DOMAINS).map((d) => d.toLowerCase()),
      apiList: a.JSSDK_API_LIST ? parseList(a.JSSDK_API_LIST) : ['chooseWXPay'],
      refreshAheadMs: parseDuration(a.WECHAT_TOKEN_REFRESH_AHEAD ?? '5m')!,
    },
    sandbox: {
      port: s.SANDBOX_PORT !== undefined ? Number(s.SANDBOX_PORT) : 3100,
      secapiPort: s.SANDBOX_SECAPI_PORT !== undefined ? Number(s.SANDBOX_SECAPI_PORT) : 0,
      dataDir: resolve(dataDir, 'sandbox'),
      timeScale: s.SANDBOX_TIME_SCALE !== undefined ? Number(s.SANDBOX_TIME_SCALE) : 1,
      payDirectories: parseList(s.SANDBOX_PAY_DIRECTORIES),
      // 'publickey' is accepted as a spelling of public_key.
      signMode: (s.SANDBOX_SIGN_MODE === 'publickey' ? 'public_key' : (s.SANDBOX_SIGN_MODE ?? 'public_key')) as AppConfig['sandbox']['signMode'],
      jsDomains: parseList(s.SANDBOX_JS_DOMAINS).map((d) => d.toLowerCase()),
      h5Domains: parseList(s.SANDBOX_H5_DOMAINS).map((d) => d.toLowerCase()),
      oauthDomains: parseList(s.SANDBOX_OAUTH_DOMAINS ?? s.SANDBOX_JS_DOMAINS).map((d) => d.toLowerCase()),
      refundDelayMs: parseDuration(s.SANDBOX_REFUND_DELAY ?? '10s')!,
      billUrlTtlMs: parseDuration(s.SANDBOX_BILL_URL_TTL ?? '30s')!,
      notifyTimeoutMs: parseDuration(s.SANDBOX_NOTIFY_TIMEOUT ?? '5s')!,
      persistState: toBool(s.SANDBOX_PERSIST_STATE, nodeEnv !== 'test'),
      overRefundError: (s.SANDBOX_OVER_REFUND_ERROR ?? 'INVALID_REQUEST') as AppConfig['sandbox']['overRefundError'],
      instanceLock: toBool(s.SANDBOX_INSTANCE_LOCK, true),
      controlToken: s.SANDBOX_CONTROL_TOKEN || undefined,
      subMerchants: s.SANDBOX_SUB_MERCHANTS !== undefined ? Number(s.SANDBOX_SUB_MERCHANTS) : 2,
    },
  };
}
