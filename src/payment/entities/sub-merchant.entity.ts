import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** A sub-merchant (特约商户) the service provider takes payments for (issue 15). */
@Entity('sub_merchants')
export class SubMerchant {
  @PrimaryGeneratedColumn({ type: 'bigint' })
  id: string;

  @Column({ name: 'sub_mchid', type: 'varchar', length: 32 })
  subMchid: string;

  @Column({ type: 'varchar', length: 128 })
  name: string;

  /** The sub-merchant's own official account, when it has one. */
  @Column({ name: 'sub_appid', type: 'varchar', length: 32, nullable: true })
  subAppid: string | null;

  /** Its AppSecret, encrypted like the OAuth tokens (AuthCrypto, `v1.<iv>.<data>`); never answered. */
  @Column({ name: 'sub_appsecret_enc', type: 'varchar', length: 255, nullable: true })
  subAppSecretEnc: string | null;

  @Column({ type: 'int' })
  enabled: number;

  @Column({ name: 'created_at', type: 'datetime' })
  createdAt: Date;

  @Column({ name: 'updated_at', type: 'datetime' })
  updatedAt: Date;
}
