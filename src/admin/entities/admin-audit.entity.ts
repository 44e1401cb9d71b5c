import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** One admin action that moved money or data: who (token fingerprint), what, on what, and how it ended. */
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

  @Column({ name: 'created_at', type: 'datetime' })
  createdAt: Date;
}
