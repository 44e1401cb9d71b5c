import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** The ways a shopper pays (POST /orders/:no/pay { channel }). */
export const PAY_CHANNELS = ['jsapi', 'h5', 'native', 'miniprogram'] as const;
export type PayChannel = (typeof PAY_CHANNELS)[number];

export const ATTEMPT_STATUSES = ['NOTPAY', 'PAID', 'CLOSED', 'REFUNDED'] as const;
export type AttemptStatus = (typeof ATTEMPT_STATUSES)[number];

/**
 * One payment attempt of an order: its own out_trade_no at WeChat (one trade type per number, and a
 * closed number can never be prepaid again), channel and prepay. The first attempt's number is the
 * order's outTradeNo; later ones add `_2`, `_3`, …
 */
@Entity('payment_attempts')
export class PaymentAttempt {
  @PrimaryGeneratedColumn({ type: 'bigint' })
  id: string;

  @Column({ name: 'order_id', type: 'bigint' })
  orderId: string;

  @Column({ name: 'out_trade_no', type: 'varchar', length: 32 })
  outTradeNo: string;

  /** 1, 2, 3, … within the order (unique with order_id: two racing requests cannot open the same one). */
  @Column({ type: 'int' })
  seq: number;

  @Column({ type: 'varchar', length: 16 })
  channel: PayChannel;

  @Column({ type: 'varchar', length: 16 })
  status: AttemptStatus;

  /** The appid the prepay was made with (the mini-program's for miniprogram). */
  @Column({ type: 'varchar', length: 32, nullable: true })
  appid: string | null;

  /** The payer's openid under `appid` (jsapi, miniprogram). */
  @Column({ type: 'varchar', length: 128, nullable: true })
  openid: string | null;

  /** jsapi / miniprogram: prepay_id. */
  @Column({ name: 'prepay_id', type: 'varchar', length: 64, nullable: true })
  prepayId: string | null;

  /** h5: WeChat's h5_url; native: code_url. */
  @Column({ name: 'prepay_url', type: 'varchar', length: 512, nullable: true })
  prepayUrl: string | null;

  /** When WeChat answered the prepay (null: not prepaid yet, or the prepay failed). */
  @Column({ name: 'prepay_at', type: 'datetime', nullable: true })
  prepayAt: Date | null;

  /** The time_expire the prepay was sent with (a prepay again of this number repeats it). */
  @Column({ name: 'time_expire', type: 'varchar', length: 32, nullable: true })
  timeExpire: string | null;

  @Column({ name: 'transaction_id', type: 'varchar', length: 32, nullable: true })
  transactionId: string | null;

  @Column({ name: 'last_queried_at', type: 'datetime', nullable: true })
  lastQueriedAt: Date | null;

  @Column({ name: 'created_at', type: 'datetime' })
  createdAt: Date;

  @Column({ name: 'updated_at', type: 'datetime' })
  updatedAt: Date;
}
