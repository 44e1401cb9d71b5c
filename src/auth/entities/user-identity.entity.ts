import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/**
 * One (appid, openid) a user is known by: the official account's, the mini-program's. Identities
 * with the same unionid (WeChat returns one when the apps are bound to one open-platform account)
 * belong to the same user.
 */
@Entity('user_identities')
export class UserIdentity {
  @PrimaryGeneratedColumn({ type: 'bigint' })
  id: string;

  @Column({ name: 'user_id', type: 'bigint' })
  userId: string;

  @Column({ type: 'varchar', length: 32 })
  appid: string;

  @Column({ type: 'varchar', length: 128 })
  openid: string;

  @Column({ type: 'varchar', length: 128, nullable: true })
  unionid: string | null;

  @Column({ name: 'created_at', type: 'datetime' })
  createdAt: Date;
}
