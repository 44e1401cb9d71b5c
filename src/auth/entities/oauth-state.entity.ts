import { Column, Entity, PrimaryColumn } from 'typeorm';

/** One authorize round trip: where to go afterwards, and whether its state was already used. */
@Entity('oauth_states')
export class OAuthState {
  @PrimaryColumn({ type: 'varchar', length: 32 })
  id: string;

  @Column({ type: 'varchar', length: 512 })
  redirect: string;

  @Column({ type: 'varchar', length: 32 })
  scope: string;

  /** The official account the login goes through when not the default one (a sub-merchant's own); null: the default. */
  @Column({ type: 'varchar', length: 32, nullable: true })
  appid: string | null;

  @Column({ name: 'created_at', type: 'datetime' })
  createdAt: Date;

  @Column({ name: 'expires_at', type: 'datetime' })
  expiresAt: Date;

  @Column({ name: 'used_at', type: 'datetime', nullable: true })
  usedAt: Date | null;
}
