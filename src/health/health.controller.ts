import { Controller, Get, Res, ServiceUnavailableException } from '@nestjs/common';
import type { Response } from 'express';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import {
  HealthCheck,
  HealthCheckService,
  HealthIndicatorFunction,
  HealthIndicatorService,
  TypeOrmHealthIndicator,
} from '@nestjs/terminus';
import { SharedStore } from '../common/store/shared-store';

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly db: TypeOrmHealthIndicator,
    private readonly indicators: HealthIndicatorService,
    private readonly store: SharedStore,
  ) {}

  @Get()
  @HealthCheck()
  @ApiOperation({ summary: 'Database (and Redis when configured) reachability; 503 when one is down' })
  async check(@Res({ passthrough: true }) res: Response) {
    const checks: HealthIndicatorFunction[] = [() => this.db.pingCheck('database', { timeout: 3000 })];
    if (this.store.kind === 'redis') checks.push(() => this.redis());
    try {
      return await this.health.check(checks);
    } catch (error) {
      if (!(error instanceof ServiceUnavailableException)) throw error;
      // Keep terminus' report (what is down and why) instead of a bare 503.
      const report = error.getResponse() as { error?: Record<string, unknown> };
      res.status(503);
      return {
        statusCode: 503,
        message: `unavailable: ${Object.keys(report.error ?? {}).join(', ')} down`,
        ...report,
      };
    }
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
