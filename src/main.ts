import 'reflect-metadata';
import { existsSync } from 'node:fs';
import { Logger } from '@nestjs/common';
import { createApp, listenHost } from './app.factory';
import { ConfigValidationError, loadConfig } from './config/load-config';
import { describeStartupError } from './config/startup-errors';

async function bootstrap(): Promise<void> {
  if (existsSync('.env')) process.loadEnvFile('.env');
  let config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigValidationError) {
      process.stderr.write(`wechat-h5-pay cannot start.\n${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const host = listenHost(config);
  try {
    const app = await createApp(config, { abortOnError: false });
    app.enableShutdownHooks();
    if (host === undefined) await app.listen(config.port);
    else await app.listen(config.port, host);
  } catch (error) {
    const reason = describeStartupError(error, config);
    if (!reason) throw error;
    process.stderr.write(`wechat-h5-pay cannot start: ${reason}\n`);
    process.exit(1);
  }
  // Printed whatever LOG_LEVEL is (an operator always needs to know where the app is): plain text on stdout.
  process.stdout.write(
    `wechat-h5-pay listening on ${config.publicBaseUrl} (port ${config.port}, host ${host ?? 'all interfaces'}, mode ${config.wechatMode}, database ${config.database.type})\n`,
  );
  const logger = new Logger('Bootstrap');
  if (config.wechatMode === 'sandbox') {
    logger.log(`Sandbox WeChat at ${config.publicBaseUrl}/sandbox; shop at ${config.publicBaseUrl}/; API docs at ${config.apiDocs ? `${config.publicBaseUrl}/docs` : 'off (API_DOCS)'}`);
    logger.log(`Admin console at ${config.publicBaseUrl}/admin/ (ADMIN_TOKENS; sandbox mode's default token is in README.md)`);
  }
}

void bootstrap();
