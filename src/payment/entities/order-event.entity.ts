import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** The order's timeline: created, prepay, notifications, queries, paid, closed, refunds, anomalies. */
@Entity('order_events')
export class OrderEvent {
  @PrimaryGeneratedColumn({ type: 'bigint' })
  id: string;

  @Column({ name: 'out_trade_no', type: 'varchar', length: 32 })
  outTradeNo: string;

  @Column({ type: 'varchar', length: 32 })
  type: string;

  @Column({ type: 'text', nullable: true })
  detail: string | null;

  @Column({ name: 'created_at', type: 'datetime' })
  createdAt: Date;
}
