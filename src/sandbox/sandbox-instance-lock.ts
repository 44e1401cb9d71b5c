import { Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { hostname } from 'node:os';
import { DataSource } from 'typeorm';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { LeaseService } from '../database/lease.service';

/** The lease (a row of job_leases) held by the one instance on a database that simulates WeChat itself. */
export const SANDBOX_LEASE = 'sandbox.own-wechat';
/** A holder that stops renewing (crashed, killed) frees the database this long after its last heartbeat. */
export const SANDBOX_LEASE_TTL_MS = 30_000;
const HEARTBEAT_MS = SANDBOX_LEASE_TTL_MS / 3;

/** A second instance in sandbox mode with its own simulated WeChat on a database that already has one. */
export class SandboxAlreadyRunningError extends Error {
  readonly code = 'SANDBOX_ALREADY_RUNNING';

  constructor(
    readonly holder: string,
    readonly lastHeartbeatMs: number | undefined,
    config: AppConfig,
  ) {
    const since = lastHeartbeatMs === undefined ? '' : `, last heartbeat ${Math.max(0, Math.round(lastHeartbeatMs / 1000))} s ago`;
    super(
      `another instance in sandbox mode (${holder}${since}) already runs its own simulated WeChat on this database. ` +
        'Two sandboxes on one database would each hold different payments, users and tokens: orders prepaid at one could never be confirmed by the other. ' +
        'To run several instances, start one standalone sandbox (npm run sandbox, port SANDBOX_PORT=3100) and point every instance at it ' +
        `(WECHATPAY_API_BASE, WECHAT_API_BASE and WECHAT_OPEN_BASE = http://<sandbox host>:${config.sandbox.port}/sandbox, with the credentials it prints), ` +
        'or give this instance a database of its own. SANDBOX_INSTANCE_LOCK=false turns this check off. ' +
        `If that instance has crashed on another host, the database is free ${SANDBOX_LEASE_TTL_MS / 1000} s after its last heartbeat.`,
    );
    this.name = 'SandboxAlreadyRunningError';
  }
}

/** Whether a process of this host exists (signal 0 checks without signalling; EPERM = exists, not ours). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether this instance talks to the simulated WeChat mounted in itself (the defaults of sandbox mode)
 * rather than to a sandbox elsewhere (another instance's, or `npm run sandbox`).
 */
export function usesOwnSandbox(config: AppConfig): boolean {
  const own = `${config.publicBaseUrl}/sandbox`;
  return config.wechatMode === 'sandbox' && (config.wechat.payApiBase === own || config.wechat.mpApiBase === own);
}

/**
 * One simulated WeChat per database: an instance in sandbox mode that uses its own sandbox takes the
 * SANDBOX_LEASE at start-up (refusing to start when another instance holds it) and renews it every
 * HEARTBEAT_MS until it stops. Instances pointed at a shared sandbox take nothing.
 */
@Injectable()
export class SandboxInstanceLock implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(SandboxInstanceLock.name);
  private heartbeat?: NodeJS.Timeout;
  private held = false;

  constructor(
    private readonly config: AppConfig,
    private readonly leases: LeaseService,
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly clock: Clock,
  ) {}

  async onModuleInit(): Promise<void> {
    if (!this.config.sandbox.instanceLock || !usesOwnSandbox(this.config)) return;
    if (!(await this.leases.tryAcquire(SANDBOX_LEASE, SANDBOX_LEASE_TTL_MS))) {
      const rows: Array<{ owner: string; updated_at: Date | string }> = await this.dataSource
        .createQueryBuilder()
        .select(['owner', 'updated_at'])
        .from('job_leases', 'l')
        .where('name = :name', { name: SANDBOX_LEASE })
        .getRawMany();
      const row = rows[0];
      if (!row || !(await this.takeOverFromDeadProcess(row.owner))) {
        const updated = row ? new Date(row.updated_at).getTime() : NaN;
        throw new SandboxAlreadyRunningError(row?.owner ?? 'unknown', Number.isFinite(updated) ? this.clock.nowMs() - updated : undefined, this.config);
      }
    }
    this.held = true;
    this.heartbeat = setInterval(() => void this.renew(), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /**
   * A holder on this host whose process no longer exists (killed, crashed: `npm start` again at once)
   * leaves its lease behind; it is taken over at once rather than after the TTL. Guarded on the old
   * owner, so of two instances starting together only one takes it.
   */
  private async takeOverFromDeadProcess(owner: string): Promise<boolean> {
    const [host, pid] = owner.split(':');
    if (host !== hostname().slice(0, 30) || !/^\d+$/.test(pid ?? '') || processAlive(Number(pid))) return false;
    const now = this.clock.now();
    const res = await this.dataSource
      .createQueryBuilder()
      .update('job_leases')
      .set({ owner: this.leases.owner, expires_at: new Date(now.getTime() + SANDBOX_LEASE_TTL_MS), updated_at: now })
      .where('name = :name AND owner = :owner', { name: SANDBOX_LEASE, owner })
      .execute();
    if (!res.affected) return false;
    this.logger.warn(`took over the ${SANDBOX_LEASE} lease of ${owner}: that process no longer runs on this host`);
    return true;
  }

  private async renew(): Promise<void> {
    try {
      if (await this.leases.renew(SANDBOX_LEASE, SANDBOX_LEASE_TTL_MS)) return;
      // Stalled past the TTL and another instance took over: two sandboxes now share the database.
      this.logger.error(`lost the ${SANDBOX_LEASE} lease to another instance in sandbox mode on this database; taking it back when it is free`);
      if (await this.leases.tryAcquire(SANDBOX_LEASE, SANDBOX_LEASE_TTL_MS)) this.logger.warn(`took the ${SANDBOX_LEASE} lease back`);
    } catch (error) {
      this.logger.warn(`could not renew the ${SANDBOX_LEASE} lease: ${(error as Error).message}`);
    }
  }

  async onModuleDestroy(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (!this.held) return;
    this.held = false;
    await this.leases.release(SANDBOX_LEASE).catch((error: Error) => this.logger.warn(`could not release the ${SANDBOX_LEASE} lease: ${error.message}`));
  }
}
