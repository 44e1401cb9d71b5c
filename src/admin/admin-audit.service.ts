import { Injectable, Logger } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { Clock } from '../common/clock';
import { AdminAuditEntry } from './entities/admin-audit.entity';

export interface AuditRecord {
  tokenFingerprint: string;
  action: string;
  target?: string | null;
  outcome: string;
  detail?: Record<string, unknown> | string | null;
  /** The client's IP; omitted for jobs. */
  ip?: string | null;
  /** The client's User-Agent; omitted for jobs. */
  userAgent?: string | null;
}

export interface AuditView {
  id: number;
  tokenFingerprint: string;
  action: string;
  target: string | null;
  outcome: string;
  detail: unknown;
  ip: string | null;
  userAgent: string | null;
  createdAt: string;
}

/** The client of a request, as an audit row records it: `req.ip` (per TRUST_PROXY) and the User-Agent. */
export function auditClient(req: { ip?: string; headers?: Record<string, string | string[] | undefined> }): { ip: string | null; userAgent: string | null } {
  const ua = req.headers?.['user-agent'];
  const userAgent = (Array.isArray(ua) ? ua[0] : ua)?.slice(0, 255); // Node's parser refuses control characters in headers
  return { ip: req.ip?.slice(0, 64) || null, userAgent: userAgent || null };
}

@Injectable()
export class AdminAuditService {
  private readonly logger = new Logger(AdminAuditService.name);

  constructor(
    @InjectRepository(AdminAuditEntry) private readonly entries: Repository<AdminAuditEntry>,
    private readonly clock: Clock,
  ) {}

  /** Writes one audit row. Failing to audit is logged loudly but never undoes the action itself. */
  async record(record: AuditRecord): Promise<void> {
    try {
      await this.entries.insert({
        tokenFingerprint: record.tokenFingerprint,
        action: record.action,
        target: record.target?.slice(0, 128) ?? null,
        outcome: record.outcome.slice(0, 64),
        detail:
          record.detail === undefined || record.detail === null
            ? null
            : typeof record.detail === 'string'
              ? record.detail
              : JSON.stringify(record.detail),
        ip: record.ip?.slice(0, 64) || null,
        userAgent: record.userAgent?.slice(0, 255) || null,
        createdAt: this.clock.now(),
      });
    } catch (error) {
      this.logger.error(`could not write audit row for ${record.action} ${record.target ?? ''}: ${(error as Error).message}`);
    }
  }

  async list(options: { limit: number; action?: string; target?: string }): Promise<AuditView[]> {
    const qb = this.entries.createQueryBuilder('a').orderBy('a.id', 'DESC').limit(options.limit);
    if (options.action) qb.andWhere('a.action = :action', { action: options.action });
    if (options.target) qb.andWhere('a.target = :target', { target: options.target });
    const rows = await qb.getMany();
    return rows.map((row) => ({
      id: Number(row.id),
      tokenFingerprint: row.tokenFingerprint,
      action: row.action,
      target: row.target,
      outcome: row.outcome,
      detail: parseDetail(row.detail),
      ip: row.ip,
      userAgent: row.userAgent,
      createdAt: row.createdAt.toISOString(),
    }));
  }
}

function parseDetail(detail: string | null): unknown {
  if (detail === null) return null;
  try {
    return JSON.parse(detail);
  } catch {
    return detail;
  }
}
