import { Injectable, Logger, Optional } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { DataSource } from 'typeorm';
import { Clock } from '../common/clock';
import { Metrics } from '../metrics/metrics.service';

/**
 * Named leases in the `job_leases` table: at most one instance holds a lease at a time, until it
 * releases it or the lease expires (so a crashed holder cannot block the job forever). Built on
 * guarded UPDATEs and a primary-key INSERT, so it works the same on MySQL and SQLite.
 */
@Injectable()
export class LeaseService {
  private readonly logger = new Logger(LeaseService.name);
  readonly owner = `${hostname().slice(0, 30)}:${process.pid}:${randomBytes(4).toString('hex')}`;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly clock: Clock,
    @Optional() private readonly metrics?: Metrics,
  ) {}

  /** Takes (or renews, when already ours) the lease for ttlMs. */
  async tryAcquire(name: string, ttlMs: number): Promise<boolean> {
    const now = this.clock.now();
    const expiresAt = new Date(now.getTime() + ttlMs);
    const updated = await this.dataSource
      .createQueryBuilder()
      .update('job_leases')
      .set({ owner: this.owner, expires_at: expiresAt, updated_at: now })
      .where('name = :name', { name })
      .andWhere('(owner = :owner OR expires_at < :now)', { owner: this.owner, now })
      .execute();
    if ((updated.affected ?? 0) > 0) return true;
    try {
      await this.dataSource
        .createQueryBuilder()
        .insert()
        .into('job_leases')
        .values({ name, owner: this.owner, expires_at: expiresAt, updated_at: now })
        .execute();
      return true;
    } catch (error) {
      if (isDuplicateKey(error)) return false;
      throw error;
    }
  }

  /** Extends the lease for ttlMs if this instance still holds it; false when it was lost to another. */
  async renew(name: string, ttlMs: number): Promise<boolean> {
    const now = this.clock.now();
    const updated = await this.dataSource
      .createQueryBuilder()
      .update('job_leases')
      .set({ expires_at: new Date(now.getTime() + ttlMs), updated_at: now })
      .where('name = :name AND owner = :owner', { name, owner: this.owner })
      .execute();
    return (updated.affected ?? 0) > 0;
  }

  async release(name: string): Promise<void> {
    await this.dataSource
      .createQueryBuilder()
      .update('job_leases')
      .set({ expires_at: new Date(0), updated_at: this.clock.now() })
      .where('name = :name AND owner = :owner', { name, owner: this.owner })
      .execute();
  }

  /**
   * Runs fn while holding the lease; returns `{ ran: false }` (without running fn) when another
   * instance holds it. While fn runs, a heartbeat renews the lease every ttlMs/3, so a sweep that
   * outlasts ttlMs keeps it; should a renewal find the lease taken by another instance (this one
   * stalled past the expiry), `lease.lost` turns true and fn should stop taking new work. The lease
   * is released when fn settles (after any renewal in flight, so none can re-extend it).
   */
  async runExclusive<T>(name: string, ttlMs: number, fn: (lease: LeaseHandle) => Promise<T>): Promise<{ ran: boolean; result?: T }> {
    const acquired = await this.tryAcquire(name, ttlMs).catch((error: unknown) => {
      this.metrics?.jobRun(name, 'failure');
      throw error;
    });
    if (!acquired) {
      this.metrics?.jobRun(name, 'skipped');
      return { ran: false };
    }
    const handle: LeaseHandle = { lost: false, renewals: 0 };
    let renewing: Promise<void> | undefined;
    const heartbeat = setInterval(() => {
      if (renewing) return;
      renewing = this.renew(name, ttlMs)
        .then((held) => {
          if (held) handle.renewals++;
          else if (!handle.lost) {
            handle.lost = true;
            this.logger.warn(`lease ${name} was taken by another instance while this one held it`);
          }
        })
        .catch((error: Error) => this.logger.warn(`could not renew lease ${name}: ${error.message}`))
        .finally(() => (renewing = undefined));
    }, Math.max(10, Math.floor(ttlMs / 3)));
    try {
      const result = await fn(handle);
      this.metrics?.jobRun(name, 'success', this.clock.nowMs());
      return { ran: true, result };
    } catch (error) {
      this.metrics?.jobRun(name, 'failure');
      throw error;
    } finally {
      clearInterval(heartbeat);
      await renewing;
      if (!handle.lost) {
        await this.release(name).catch((error: Error) =>
          this.logger.warn(`could not release lease ${name}: ${error.message}`),
        );
      }
    }
  }
}

/** What fn of runExclusive sees of its lease. */
export interface LeaseHandle {
  /** A renewal found another instance holding the lease: stop taking new work. */
  lost: boolean;
  /** Renewals so far (the heartbeat). */
  renewals: number;
}

export function isDuplicateKey(error: unknown): boolean {
  const e = error as { code?: string; errno?: number; driverError?: { code?: string } };
  const code = e?.driverError?.code ?? e?.code;
  return (
    code === 'ER_DUP_ENTRY' ||
    code === 'SQLITE_CONSTRAINT_PRIMARYKEY' ||
    code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    e?.errno === 1062
  );
}
