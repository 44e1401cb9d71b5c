import { Column, Entity, PrimaryColumn } from 'typeorm';

/** The latest reconciliation of one bill date (and sub-merchant): summary and every difference, as JSON. */
@Entity('reconciliations')
export class Reconciliation {
  @PrimaryColumn({ name: 'bill_date', type: 'varchar', length: 10 })
  billDate: string;

  /** The sub-merchant reconciled (service-provider mode); '' in direct mode. */
  @PrimaryColumn({ name: 'sub_mchid', type: 'varchar', length: 32, default: '' })
  subMchid: string;

  /** done | failed */
  @Column({ type: 'varchar', length: 16 })
  status: string;

  @Column({ type: 'text' })
  summary: string;

  @Column({ type: 'text' })
  differences: string;

  @Column({ name: 'created_at', type: 'datetime' })
  createdAt: Date;

  @Column({ name: 'updated_at', type: 'datetime' })
  updatedAt: Date;
}
