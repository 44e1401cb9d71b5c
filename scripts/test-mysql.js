#!/usr/bin/env node
// Runs the end-to-end suite against MySQL/MariaDB (DATABASE_URL; each test creates its own fresh
// database named after it) and the Redis-backed suites (REDIS_URL).
//
// Arguments are passed to jest ahead of `--selectProjects e2e` (which takes every word after it as a
// project name), so paths and patterns filter as they do for plain jest:
//   npm run test:mysql -- test/refund                 (a path or pattern)
//   npm run test:mysql -- test/refund/refunds.e2e-spec.ts -t 'ABNORMAL'
//   npm run test:mysql -- --listTests test/billing
const { spawnSync } = require('node:child_process');

const env = {
  ...process.env,
  TEST_DB: 'mysql',
  DATABASE_URL: process.env.DATABASE_URL || 'mysql://root@127.0.0.1:3306/whp_test',
  REDIS_URL: process.env.REDIS_URL || 'redis://127.0.0.1:6379',
};
const args = [...process.argv.slice(2), '--selectProjects', 'e2e'];
const result = spawnSync(process.execPath, [require.resolve('jest/bin/jest'), ...args], { stdio: 'inherit', env });
process.exit(result.status ?? 1);
