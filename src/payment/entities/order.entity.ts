import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

export const ORDER_STATUSES = ['NOTPAY', 'PAID', 'CLOSED', 'REFUNDED', 'ANOMALY', 'PAID_AFTER_CLOSE'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

@Entity('orders')
export class Order {
  @PrimaryGeneratedColumn({ type: 'bigint' })
  id: string;

  @Column({ name: 'out_trade_no', type: 'varchar', length: 32 })
  outTradeNo: string;

  @Column({ name: 'user_id', type: 'bigint' })
  userId: string;

  /** null for a guest (no WeChat identity) */
  @Column({ type: 'varchar', length: 32, nullable: true })
  appid: string | null;

  @Column({ type: 'varchar', length: 128, nullable: true })
  openid: string | null;

  @Column({ type: 'varchar', length: 20 })
  status: OrderStatus;

  /** fen */
  @Column({ type: 'int' })
  total: number;

  @Column({ type: 'varchar', length: 8 })
  currency: string;

  @Column({ type: 'varchar', length: 127 })
  description: string;

  @Column({ name: 'idempotency_key', type: 'varchar', length: 64, nullable: true })
  idempotencyKey: string | null;

  @Column({ name: 'request_hash', type: 'varchar', length: 64, nullable: true })
  requestHash: string | null;

  @Column({ name: 'prepay_id', type: 'varchar', length: 64, nullable: true })
  prepayId: string | null;

  @Column({ name: 'prepay_at', type: 'datetime', nullable: true })
  prepayAt: Date | null;

  @Column({ name: 'expires_at', type: 'datetime' })
  expiresAt: Date;

  @Column({ name: 'transaction_id', type: 'varchar', length: 32, nullable: true })
  transactionId: string | null;

  @Column({ name: 'payer_openid', type: 'varchar', length: 128, nullable: true })
  payerOpenid: string | null;

  @Column({ name: 'paid_total', type: 'int', nullable: true })
  paidTotal: number | null;

  @Column({ name: 'paid_at', type: 'datetime', nullable: true })
  paidAt: Date | null;

  @Column({ name: 'paid_batch', type: 'varchar', length: 32, nullable: true })
  paidBatch: string | null;

  @Column({ name: 'closed_at', type: 'datetime', nullable: true })
  closedAt: Date | null;

  // The migration holds the column's DEFAULT; declaring it here too would make TypeORM re-select the
  // column after every insert (issue 16). Inserts give the value.
  @Column({ name: 'refunded_total', type: 'int' })
  refundedTotal: number;

  @Column({ name: 'anomaly_reason', type: 'varchar', length: 255, nullable: true })
  anomalyReason: string | null;

  /** How a payment after close was settled (PAID_AFTER_CLOSE): refund | reinstate; decided once. */
  @Column({ name: 'after_close_action', type: 'varchar', length: 16, nullable: true })
  afterCloseAction: 'refund' | 'reinstate' | null;

  @Column({ name: 'last_queried_at', type: 'datetime', nullable: true })
  lastQueriedAt: Date | null;

  /** Service-provider mode: the sub-merchant (sub_mchid) it belongs to; null in direct mode. */
  @Column({ name: 'sub_mchid', type: 'varchar', length: 32, nullable: true })
  subMchid: string | null;

  @Column({ name: 'created_at', type: 'datetime' })
  createdAt: Date;

  @Column({ name: 'updated_at', type: 'datetime' })
  updatedAt: Date;
}
