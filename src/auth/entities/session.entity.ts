import { Column, Entity, PrimaryColumn } from 'typeorm';

/** A login. The cookie/bearer token is `<id>.<hmac(id)>`; logout revokes the row. */
@Entity('sessions')
export class Session {
  @PrimaryColumn({ type: 'varchar', length: 43 })
  id: string;

  @Column({ name: 'user_id', type: 'bigint' })
  userId: string;

  @Column({ name: 'created_at', type: 'datetime' })
  createdAt: Date;

  @Column({ name: 'expires_at', type: 'datetime' })
  expiresAt: Date;

  // The migration holds the column's DEFAULT; declaring it here too would make TypeORM re-select the
  // column after every insert (issue 16). Inserts give the value.
  /** wechat | miniprogram | guest */
  @Column({ type: 'varchar', length: 16 })
  kind: string;

  /** The app the session was made through (null for a guest). */
  @Column({ type: 'varchar', length: 32, nullable: true })
  appid: string | null;

  @Column({ type: 'varchar', length: 128, nullable: true })
  openid: string | null;

  @Column({ name: 'revoked_at', type: 'datetime', nullable: true })
  revokedAt: Date | null;
}
