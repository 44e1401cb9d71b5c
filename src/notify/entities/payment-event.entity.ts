import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** Every notification received, raw bytes as they arrived, verified or not. Append-only. */
@Entity('payment_events')
export class PaymentEvent {
  @PrimaryGeneratedColumn({ type: 'bigint' })
  id: string;

  /** transaction | refund */
  @Column({ type: 'varchar', length: 16 })
  kind: string;

  @Column({ name: 'notification_id', type: 'varchar', length: 64, nullable: true })
  notificationId: string | null;

  @Column({ name: 'event_type', type: 'varchar', length: 32, nullable: true })
  eventType: string | null;

  @Column({ name: 'out_trade_no', type: 'varchar', length: 32, nullable: true })
  outTradeNo: string | null;

  @Column({ name: 'out_refund_no', type: 'varchar', length: 64, nullable: true })
  outRefundNo: string | null;

  @Column({ type: 'int' })
  verified: number;

  /** applied, duplicate, anomaly, paid_after_close, unknown_order, conflict, rejected:<reason>, decrypt_failed, refund:<…> */
  @Column({ type: 'varchar', length: 32 })
  outcome: string;

  @Column({ type: 'varchar', length: 64, nullable: true })
  serial: string | null;

  @Column({ name: 'raw_body', type: 'text' })
  rawBody: string;

  @Column({ name: 'received_at', type: 'datetime' })
  receivedAt: Date;
}
