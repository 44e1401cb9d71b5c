import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

export const REFUND_STATUSES = ['PROCESSING', 'SUCCESS', 'CLOSED', 'ABNORMAL', 'FAILED'] as const;
export type RefundStatus = (typeof REFUND_STATUSES)[number];

@Entity('refunds')
export class Refund {
  @PrimaryGeneratedColumn({ type: 'bigint' })
  id: string;

  @Column({ name: 'out_refund_no', type: 'varchar', length: 64 })
  outRefundNo: string;

  /** The order's number. */
  @Column({ name: 'out_trade_no', type: 'varchar', length: 32 })
  outTradeNo: string;

  /** The payment attempt the refund goes to at WeChat (null on rows from before attempts: the order's own number). */
  @Column({ name: 'payment_out_trade_no', type: 'varchar', length: 32, nullable: true })
  paymentOutTradeNo: string | null;

  /** fen */
  @Column({ type: 'int' })
  amount: number;

  @Column({ type: 'varchar', length: 80, nullable: true })
  reason: string | null;

  @Column({ type: 'varchar', length: 16 })
  status: RefundStatus;

  @Column({ name: 'request_hash', type: 'varchar', length: 64 })
  requestHash: string;

  @Column({ name: 'refund_id', type: 'varchar', length: 64, nullable: true })
  refundId: string | null;

  @Column({ name: 'wechat_code', type: 'varchar', length: 64, nullable: true })
  wechatCode: string | null;

  @Column({ name: 'wechat_message', type: 'varchar', length: 255, nullable: true })
  wechatMessage: string | null;

  /** admin | auto */
  @Column({ type: 'varchar', length: 16 })
  source: string;

  @Column({ name: 'success_at', type: 'datetime', nullable: true })
  successAt: Date | null;

  @Column({ name: 'last_queried_at', type: 'datetime', nullable: true })
  lastQueriedAt: Date | null;

  @Column({ name: 'created_at', type: 'datetime' })
  createdAt: Date;

  @Column({ name: 'updated_at', type: 'datetime' })
  updatedAt: Date;
}
