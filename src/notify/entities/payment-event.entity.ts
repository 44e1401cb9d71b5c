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

  /** The notification's bytes exactly as received, in the form `rawEncoding` names. */
  @Column({ name: 'raw_body', type: 'text' })
  rawBody: string;

  /** utf8: raw_body is the bytes as text (they were valid UTF-8); base64: they were not; omitted: too large, raw_body is a marker; headers: failed verification, raw_body is only its signature headers as JSON. */
  // The migration holds the column's DEFAULT; declaring it here too would make TypeORM re-select the
  // column after every insert (issue 16). Inserts give the value.
  @Column({ name: 'raw_encoding', type: 'varchar', length: 8 })
  rawEncoding: 'utf8' | 'base64' | 'omitted' | 'headers';

  /** Byte length of the body as received. */
  @Column({ name: 'raw_size', type: 'int', nullable: true })
  rawSize: number | null;

  /** SHA-256 (hex) of the body as received. */
  @Column({ name: 'raw_sha256', type: 'varchar', length: 64, nullable: true })
  rawSha256: string | null;

  @Column({ name: 'received_at', type: 'datetime' })
  receivedAt: Date;
}
