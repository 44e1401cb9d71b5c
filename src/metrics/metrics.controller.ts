import { Controller, Get, Header, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiProduces, ApiTags, ApiUnauthorizedResponse } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { bearerToken, matchesAnyToken } from '../admin/admin-token';
import { UnauthorizedError } from '../common/errors/app-error';
import { AppConfig } from '../config/app-config';
import { Metrics } from './metrics.service';

/**
 * GET /metrics in Prometheus' text format. Mounted only when it may be read: with METRICS_TOKEN set
 * (then the scraper sends it as a bearer token, compared in constant time), or in sandbox mode. In live
 * mode without a token the route does not exist (404), so numbers are never published by accident.
 */
@ApiTags('metrics')
@Controller('metrics')
export class MetricsController {
  constructor(
    private readonly metrics: Metrics,
    private readonly config: AppConfig,
  ) {}

  @Get()
  @ApiBearerAuth()
  @ApiProduces('text/plain')
  @ApiOperation({ summary: 'Prometheus metrics (whp_*): needs "Authorization: Bearer <METRICS_TOKEN>" when METRICS_TOKEN is set' })
  @ApiUnauthorizedResponse({ description: 'METRICS_TOKEN is set and the request does not carry it' })
  @Header('Cache-Control', 'no-store')
  async scrape(@Req() req: Request, @Res() res: Response): Promise<void> {
    const expected = this.config.metrics.token;
    if (expected) {
      const token = bearerToken(req.headers.authorization);
      if (!token) throw new UnauthorizedError('METRICS_TOKEN_MISSING', 'GET /metrics needs "Authorization: Bearer <METRICS_TOKEN>"');
      if (!matchesAnyToken(token, [expected])) throw new UnauthorizedError('METRICS_TOKEN_INVALID', 'The bearer token is not METRICS_TOKEN');
    }
    const text = await this.metrics.text();
    res.status(200).setHeader('Content-Type', this.metrics.contentType());
    res.end(text);
  }
}
