import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/**
 * One admin action that moved money or data, or one failed admin authentication: who (token
 * fingerprint, never the token), from where (IP, user agent), what, on what, and how it ended.
 */
@Entity('admin_audit')
export class AdminAuditEntry {
  @PrimaryGeneratedColumn({ type: 'bigint' })
  id: string;

  @Column({ name: 'token_fingerprint', type: 'varchar', length: 16 })
  tokenFingerprint: string;

  @Column({ type: 'varchar', length: 64 })
  action: string;

  @Column({ type: 'varchar', length: 128, nullable: true })
  target: string | null;

  /** `ok`, or `error:<code>` */
  @Column({ type: 'varchar', length: 64 })
  outcome: string;

  @Column({ type: 'text', nullable: true })
  detail: string | null;

  /** The client's IP (Express `req.ip`, i.e. as TRUST_PROXY resolves it); null for jobs. */
  @Column({ type: 'varchar', length: 64, nullable: true })
  ip: string | null;

  /** The client's User-Agent, cut to 255 characters; null for jobs. */
  @Column({ name: 'user_agent', type: 'varchar', length: 255, nullable: true })
  userAgent: string | null;

  @Column({ name: 'created_at', type: 'datetime' })
  createdAt: Date;
}
