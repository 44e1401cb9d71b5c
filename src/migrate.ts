// The container's first step (Dockerfile CMD) and `npm run migrate`: applies pending migrations, then
// exits. Configuration errors come first and alone (the list loadConfig builds, no stack trace), and
// the database's refusals in one sentence, as at the app's start-up — before any migration runs.
import 'reflect-metadata';
import { existsSync } from 'node:fs';
import { DataSource } from 'typeorm';
import { AppConfig } from './config/app-config';
import { ConfigValidationError, loadConfig } from './config/load-config';
import { describeStartupError } from './config/startup-errors';
import { buildDataSourceOptions } from './database/data-source-options';

async function main(): Promise<void> {
  if (existsSync('.env')) process.loadEnvFile('.env');
  let config: AppConfig;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigValidationError) {
      process.stderr.write(`wechat-h5-pay cannot start.\n${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const dataSource = new DataSource(buildDataSourceOptions(config));
  try {
    await dataSource.initialize();
    const applied = await dataSource.runMigrations({ transaction: 'each' });
    process.stdout.write(
      applied.length
        ? `migrations applied on ${config.database.type}: ${applied.map((m) => m.name).join(', ')}\n`
        : `database schema up to date (${config.database.type}): no migration to apply\n`,
    );
  } catch (error) {
    const reason = describeStartupError(error, config) ?? `a migration failed: ${(error as Error).message}`;
    process.stderr.write(`wechat-h5-pay cannot start: ${reason}\n`);
    process.exitCode = 1;
  } finally {
    if (dataSource.isInitialized) await dataSource.destroy();
  }
}

void main();
