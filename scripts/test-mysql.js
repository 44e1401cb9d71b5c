#!/usr/bin/env node
// Runs the end-to-end suite against MySQL/MariaDB (DATABASE_URL; each test creates its own fresh
// database named after it) and the Redis-backed suites (REDIS_URL).
const { spawnSync } = require('node:child_process');

const env = {
  ...process.env,
  TEST_DB: 'mysql',
  DATABASE_URL: process.env.DATABASE_URL || 'mysql://root@127.0.0.1:3306/whp_test',
  REDIS_URL: process.env.REDIS_URL || 'redis://127.0.0.1:6379',
};
const args = ['--selectProjects', 'e2e', ...process.argv.slice(2)];
const result = spawnSync(process.execPath, [require.resolve('jest/bin/jest'), ...args], { stdio: 'inherit', env });
process.exit(result.status ?? 1);
