import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { useMysql } from './mysql';

/** Debian's Chromium, driven by playwright-core (CHROMIUM_PATH to point elsewhere). */
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const HAVE_BROWSER = existsSync(CHROMIUM);
if (!HAVE_BROWSER && process.env.REQUIRE_BROWSER === '1') {
  throw new Error(`REQUIRE_BROWSER=1 but no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
}

/**
 * describe for a browser suite: skipped without Chromium (unless REQUIRE_BROWSER=1) and on the MariaDB
 * run (the browser suites check the pages; the database paths under them are covered by the other
 * suites on both databases).
 */
export const browserSuite = HAVE_BROWSER && !useMysql() ? describe : describe.skip;

/** Where the browser suites leave their screenshots. */
export const SHOTS = join(__dirname, '..', '..', 'test-output', 'browser');

/** A phone's WeChat browser (the shop pays by JSAPI there: its user agent names MicroMessenger). */
export const WECHAT_PHONE = {
  viewport: { width: 375, height: 667 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
  userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN',
};
