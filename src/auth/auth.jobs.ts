import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown, Optional } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { scheduleInterval } from '../common/interval-job';
import { LeaseService } from '../database/lease.service';
import { AuthService } from './auth.service';

const PURGE_INTERVAL_MS = 3600_000;

/** Deletes OAuth states nobody came back for, hourly, on one instance at a time (not by chance per request). */
@Injectable()
export class AuthJobs implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(AuthJobs.name);
  private stop: () => void = () => undefined;

  constructor(
    private readonly auth: AuthService,
    private readonly leases: LeaseService,
    @Optional() private readonly scheduler?: SchedulerRegistry,
  ) {}

  onApplicationBootstrap(): void {
    this.stop = scheduleInterval(this.scheduler, 'auth.purge_states', PURGE_INTERVAL_MS, () => this.purgeStates(), this.logger);
  }

  onApplicationShutdown(): void {
    this.stop();
  }

  /** One purge under the lease; how many expired states were deleted (0 when another instance holds it). */
  async purgeStates(): Promise<number> {
    const { result } = await this.leases.runExclusive('auth.purge_states', 10 * 60_000, () => this.auth.purgeExpiredStates());
    if (result) this.logger.log(`deleted ${result} expired OAuth states`);
    return result ?? 0;
  }
}
