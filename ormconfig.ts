// DataSource for the TypeORM migration CLI (`npm run migration:run|revert|show`). It reads the same
// environment as the app and builds its options with the same function, so both always agree.
import 'reflect-metadata';
import { existsSync } from 'node:fs';
import { DataSource } from 'typeorm';
import { loadConfig } from './src/config/load-config';
import { buildDataSourceOptions } from './src/database/data-source-options';

if (existsSync('.env')) process.loadEnvFile('.env');

export default new DataSource(buildDataSourceOptions(loadConfig(process.env)));
