import { Controller, Get, Optional, Res, ServiceUnavailableException } from '@nestjs/common';
import type { Response } from 'express';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import {
  HealthCheck,
  HealthCheckResult,
  HealthCheckService,
  HealthIndicatorFunction,
  HealthIndicatorService,
  TypeOrmHealthIndicator,
} from '@nestjs/terminus';
import { SharedStore } from '../common/store/shared-store';
import { ClockSkew } from '../wechat/clock-skew';

/** What a failed check answers: the global error shape, with terminus' report under `details`. */
const UNAVAILABLE_SCHEMA = {
  type: 'object',
  properties: {
    statusCode: { type: 'number', example: 503 },
    error: { type: 'string', example: 'Service Unavailable' },
    message: { type: 'string', example: 'database is down' },
    details: {
      type: 'object',
      description: "terminus' report: `info` lists the dependencies that are up, `error` those that are down and why",
      example: { info: {}, error: { database: { status: 'down', message: 'timeout of 3000ms exceeded' } } },
    },
    requestId: { type: 'string' },
  },
};

/** `database is down`, `database and redis are down`. */
export function describeDown(report: Pick<HealthCheckResult, 'status' | 'error'>): string {
  const down = Object.keys(report.error ?? {});
  if (down.length === 0) return report.status === 'shutting_down' ? 'the application is shutting down' : 'a dependency is down';
  const names = down.length === 1 ? down[0] : `${down.slice(0, -1).join(', ')} and ${down[down.length - 1]}`;
  return `${names} ${down.length === 1 ? 'is' : 'are'} down`;
}

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly db: TypeOrmHealthIndicator,
    private readonly indicators: HealthIndicatorService,
    private readonly store: SharedStore,
    @InjectDataSource() private readonly dataSource: DataSource,
    @Optional() private readonly clockSkew?: ClockSkew,
  ) {}

  /** Once every migration was seen applied it stays so for this process (its code cannot change). */
  private migrationsDone = false;

  @Get()
  // Above @HealthCheck() so that it replaces terminus' own 503 description.
  @ApiServiceUnavailableResponse({ description: 'A dependency is down', schema: UNAVAILABLE_SCHEMA })
  @HealthCheck()
  @ApiOperation({
    summary:
      'Database (and Redis when configured) reachability; 503 when one is down. status "degraded" (200) when WeChat\'s clock, ' +
      'as measured from its answers, is further from ours than WECHATPAY_CLOCK_SKEW_MAX (details.wechatClock)',
  })
  async check(@Res({ passthrough: true }) res: Response) {
    return this.run(this.dependencyChecks(), res);
  }

  @Get('live')
  @ApiOperation({ summary: 'Liveness: the process is up and answering (no dependency is checked); for a restart probe' })
  @ApiOkResponse({ schema: { type: 'object', properties: { status: { type: 'string', example: 'ok' }, uptimeSeconds: { type: 'number' } } } })
  live() {
    return { status: 'ok', uptimeSeconds: Math.floor(process.uptime()) };
  }

  @Get('ready')
  @ApiServiceUnavailableResponse({ description: 'The database or Redis is down, or migrations have not all run', schema: UNAVAILABLE_SCHEMA })
  @HealthCheck()
  @ApiOperation({ summary: 'Readiness: database (and Redis when configured) reachable and every migration applied; 503 otherwise' })
  async ready(@Res({ passthrough: true }) res: Response) {
    return this.run([...this.dependencyChecks(), () => this.migrations()], res);
  }

  private dependencyChecks(): HealthIndicatorFunction[] {
    const checks: HealthIndicatorFunction[] = [() => this.db.pingCheck('database', { timeout: 3000 })];
    if (this.store.kind === 'redis') checks.push(() => this.redis());
    return checks;
  }

  private async migrations() {
    const indicator = this.indicators.check('migrations');
    if (this.migrationsDone) return indicator.up();
    try {
      const pending = await Promise.race([
        this.dataSource.showMigrations(),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout after 3000ms')), 3000).unref()),
      ]);
      if (pending) return indicator.down({ message: 'migrations are pending (the app runs them at start-up; npm run migration:run)' });
      this.migrationsDone = true;
      return indicator.up();
    } catch (error) {
      return indicator.down({ message: (error as Error).message });
    }
  }

  private async run(checks: HealthIndicatorFunction[], res: Response) {
    try {
      return this.withClock(await this.health.check(checks));
    } catch (error) {
      if (!(error instanceof ServiceUnavailableException)) throw error;
      // The 503 goes through the global filter like every other error (`error` is the status text),
      // keeping terminus' report (what is down and why) under `details`.
      const report = error.getResponse() as HealthCheckResult;
      res.setHeader('Cache-Control', 'no-cache, no-store, must-revalidate');
      throw new ServiceUnavailableException({
        message: describeDown(report),
        details: { info: report.info ?? {}, error: report.error ?? {} },
      });
    }
  }

  /**
   * WeChat's clock as measured (ClockSkew): reported under wechatClock; past WECHATPAY_CLOCK_SKEW_MAX
   * the status is "degraded": the instance still serves, but signatures fail at 5 minutes and the
   * operator has to fix the server's time.
   */
  private withClock(report: HealthCheckResult): HealthCheckResult | (Omit<HealthCheckResult, 'status'> & { status: 'degraded' }) {
    const estimate = this.clockSkew?.current();
    if (!this.clockSkew || !estimate) return report;
    const degraded = this.clockSkew.degraded;
    const wechatClock = {
      status: degraded ? 'degraded' : 'up',
      offsetMs: estimate.offsetMs,
      maxMs: this.clockSkew.maxMs,
      measuredAt: estimate.measuredAt.toISOString(),
      source: estimate.source,
      ...(degraded ? { message: `WeChat's clock is ${Math.round(estimate.offsetMs / 1000)} s off this server's (more than WECHATPAY_CLOCK_SKEW_MAX): fix the server's time (NTP)` } : {}),
    };
    const details = { ...report.details, wechatClock } as HealthCheckResult['details'];
    const info = degraded ? report.info : ({ ...report.info, wechatClock } as HealthCheckResult['info']);
    return { ...report, status: degraded ? 'degraded' : report.status, info, details };
  }

  private async redis() {
    const indicator = this.indicators.check('redis');
    try {
      await Promise.race([
        this.store.ping(),
        new Promise((_, reject) => setTimeout(() => reject(new Error('timeout after 3000ms')), 3000).unref()),
      ]);
      return indicator.up();
    } catch (error) {
      return indicator.down({ message: (error as Error).message });
    }
  }
}
