import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { DataSource } from 'typeorm';
import { Clock } from '../common/clock';

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

  async release(name: string): Promise<void> {
    await this.dataSource
      .createQueryBuilder()
      .update('job_leases')
      .set({ expires_at: new Date(0), updated_at: this.clock.now() })
      .where('name = :name AND owner = :owner', { name, owner: this.owner })
      .execute();
  }

  /**
   * Runs fn while holding the lease; returns undefined (without running fn) when another instance
   * holds it. The lease outlives fn by nothing: it is released when fn settles.
   */
  async runExclusive<T>(name: string, ttlMs: number, fn: () => Promise<T>): Promise<{ ran: boolean; result?: T }> {
    if (!(await this.tryAcquire(name, ttlMs))) return { ran: false };
    try {
      return { ran: true, result: await fn() };
    } finally {
      await this.release(name).catch((error: Error) =>
        this.logger.warn(`could not release lease ${name}: ${error.message}`),
      );
    }
  }
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
