import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

@Entity('products')
export class Product {
  @PrimaryGeneratedColumn({ type: 'bigint' })
  id: string;

  @Column({ type: 'varchar', length: 128 })
  name: string;

  @Column({ type: 'varchar', length: 512, nullable: true })
  description: string | null;

  @Column({ name: 'image_url', type: 'varchar', length: 512, nullable: true })
  imageUrl: string | null;

  /** fen */
  @Column({ type: 'int' })
  price: number;

  /** null = unlimited */
  @Column({ type: 'int', nullable: true })
  stock: number | null;

  // The migration holds the column's DEFAULT; declaring it here too would make TypeORM re-select the
  // column after every insert (issue 16). Inserts give the value.
  @Column({ type: 'int' })
  active: number;

  /** Service-provider mode: the sub-merchant (sub_mchid) it belongs to; null in direct mode. */
  @Column({ name: 'sub_mchid', type: 'varchar', length: 32, nullable: true })
  subMchid: string | null;

  @Column({ name: 'created_at', type: 'datetime' })
  createdAt: Date;

  @Column({ name: 'updated_at', type: 'datetime' })
  updatedAt: Date;
}
