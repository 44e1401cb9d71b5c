// Warm-cache GET /jssdk/config throughput beside a trivial Nest endpoint in the same app and run.
//   npx ts-node --transpile-only bench/jssdk.ts [seconds]
import { Controller, Get, Module } from '@nestjs/common';
import { startTestApp } from '../test/helpers/test-app';
import { load, printTable } from './lib';

@Controller('bench')
class PingController {
  @Get('ping')
  ping() {
    return { ok: true };
  }
}

@Module({ controllers: [PingController] })
class PingModule {}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 10);
  const t = await startTestApp({ extraModules: [PingModule], env: { NODE_ENV: 'test', LOG_LEVEL: 'silent' } });
  try {
    const page = encodeURIComponent(`${t.baseUrl}/shop/index.html?from=bench`);
    const configUrl = `${t.baseUrl}/jssdk/config?url=${page}`;
    const warm = await fetch(configUrl);
    if (warm.status !== 200) throw new Error(`warm-up failed: ${warm.status} ${await warm.text()}`);
    const options = { connections: 32, durationSec: seconds };
    // baseline, candidate, baseline again: the machine is noisy, so average the two baselines
    const ping1 = await load('trivial Nest endpoint (GET /bench/ping)', { url: `${t.baseUrl}/bench/ping`, ...options });
    const jssdk = await load('GET /jssdk/config (warm cache)', { url: configUrl, ...options });
    const ping2 = await load('trivial Nest endpoint, again', { url: `${t.baseUrl}/bench/ping`, ...options });
    const baseline = { ...ping1, name: 'trivial Nest endpoint (mean of two runs)', requestsPerSec: (ping1.requestsPerSec + ping2.requestsPerSec) / 2 };
    printTable(`jssdk config, ${seconds}s each, 32 connections, Node ${process.version}`, [baseline, jssdk]);
    console.log(`\nratio /jssdk/config : trivial = ${(jssdk.requestsPerSec / baseline.requestsPerSec).toFixed(2)} (target >= 0.70)`);
  } finally {
    await t.close();
  }
}

void main();
