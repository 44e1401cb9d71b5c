import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** A shopper, known by the openid WeChat gave us under our appid. */
@Entity('users')
export class User {
  @PrimaryGeneratedColumn({ type: 'bigint' })
  id: string;

  /** null for a guest (no WeChat identity) and for a shopper known only through the mini-program (see user_identities) */
  @Column({ type: 'varchar', length: 32, nullable: true })
  appid: string | null;

  @Column({ type: 'varchar', length: 128, nullable: true })
  openid: string | null;

  @Column({ type: 'varchar', length: 128, nullable: true })
  unionid: string | null;

  @Column({ type: 'varchar', length: 128, nullable: true })
  nickname: string | null;

  @Column({ name: 'avatar_url', type: 'varchar', length: 512, nullable: true })
  avatarUrl: string | null;

  @Column({ type: 'varchar', length: 32 })
  scope: string;

  @Column({ name: 'access_token_enc', type: 'text', nullable: true, select: false })
  accessTokenEnc: string | null;

  @Column({ name: 'refresh_token_enc', type: 'text', nullable: true, select: false })
  refreshTokenEnc: string | null;

  @Column({ name: 'access_expires_at', type: 'datetime', nullable: true })
  accessExpiresAt: Date | null;

  @Column({ name: 'refresh_expires_at', type: 'datetime', nullable: true })
  refreshExpiresAt: Date | null;

  @Column({ name: 'created_at', type: 'datetime' })
  createdAt: Date;

  @Column({ name: 'updated_at', type: 'datetime' })
  updatedAt: Date;
}
