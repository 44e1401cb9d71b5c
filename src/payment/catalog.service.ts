import { Injectable, Logger } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { In, Repository } from 'typeorm';
import { Clock } from '../common/clock';
import { NotFoundError } from '../common/errors/app-error';
import { CreateProductDto, ProductDto, UpdateProductDto } from './dto/product.dto';
import { Product } from './entities/product.entity';
import { SubMerchantsService } from './sub-merchants.service';

export const DEMO_PRODUCTS: Array<Pick<CreateProductDto, 'name' | 'price' | 'stock' | 'description'>> = [
  { name: '微信支付定制马克杯', price: 3900, stock: 100, description: '陶瓷马克杯 350ml' },
  { name: '沙箱测试 T 恤', price: 8800, stock: 50, description: '纯棉，均码' },
  { name: '一分钱体验商品', price: 1, stock: null, description: '用来试一试支付流程' },
  { name: '限量徽章（仅剩 3 个）', price: 1200, stock: 3, description: '售完即止' },
];

export function productView(p: Product, defaultSubMchid?: string): ProductDto {
  const subMchid = p.subMchid ?? defaultSubMchid;
  return {
    id: Number(p.id),
    name: p.name,
    price: p.price,
    stock: p.stock,
    description: p.description,
    imageUrl: p.imageUrl,
    active: p.active === 1,
    // Service-provider mode only: direct mode's product JSON is unchanged.
    ...(subMchid ? { subMchid } : {}),
  };
}

const EDITABLE_FIELDS = ['name', 'price', 'stock', 'description', 'imageUrl', 'active', 'subMchid'] as const;

/**
 * What an edit changed, for the admin audit: each field the edit named, with its value before and
 * after (fields it named but left as they were are listed too, so the row shows what was asked).
 */
export function productChanges(
  before: ProductDto,
  after: ProductDto,
  dto: UpdateProductDto,
): { before: Partial<ProductDto>; after: Partial<ProductDto> } {
  const named = EDITABLE_FIELDS.filter((field) => dto[field] !== undefined);
  return {
    before: Object.fromEntries(named.map((field) => [field, before[field] ?? null])),
    after: Object.fromEntries(named.map((field) => [field, after[field] ?? null])),
  };
}

/** The catalog. Prices live only here: an order's amount is always computed from it, never taken from a client. */
@Injectable()
export class CatalogService {
  private readonly logger = new Logger(CatalogService.name);

  constructor(
    @InjectRepository(Product) private readonly products: Repository<Product>,
    private readonly clock: Clock,
    private readonly subMerchants: SubMerchantsService,
  ) {}

  private view(p: Product): ProductDto {
    return productView(p, this.subMerchants.defaultSubMchid);
  }

  async listActive(): Promise<ProductDto[]> {
    return (await this.products.find({ where: { active: 1 }, order: { id: 'ASC' } })).map((p) => this.view(p));
  }

  async listAll(): Promise<ProductDto[]> {
    return (await this.products.find({ order: { id: 'ASC' } })).map((p) => this.view(p));
  }

  async findActive(ids: number[]): Promise<Product[]> {
    if (!ids.length) return [];
    return this.products.find({ where: { id: In(ids.map(String)), active: 1 } });
  }

  async create(dto: CreateProductDto): Promise<ProductDto> {
    const subMchid = await this.subMerchants.resolveForProduct(dto.subMchid);
    const now = this.clock.now();
    const result = await this.products.insert({
      subMchid,
      name: dto.name,
      price: dto.price,
      stock: dto.stock ?? null,
      description: dto.description ?? null,
      imageUrl: dto.imageUrl ?? null,
      active: 1,
      createdAt: now,
      updatedAt: now,
    });
    const id = result.identifiers[0].id as string | number;
    return this.view(await this.products.findOneByOrFail({ id: String(id) }));
  }

  /** Applies an edit; answers the product as it was just before and as it is after. */
  async update(id: number, dto: UpdateProductDto): Promise<{ before: ProductDto; after: ProductDto }> {
    const existing = await this.products.findOneBy({ id: String(id) });
    if (!existing) throw new NotFoundError(`product ${id}`, 'PRODUCT_NOT_FOUND');
    const changes: Partial<Product> = { updatedAt: this.clock.now() };
    if (dto.name !== undefined) changes.name = dto.name;
    if (dto.price !== undefined) changes.price = dto.price;
    if (dto.stock !== undefined) changes.stock = dto.stock;
    if (dto.description !== undefined) changes.description = dto.description;
    if (dto.imageUrl !== undefined) changes.imageUrl = dto.imageUrl;
    if (dto.active !== undefined) changes.active = dto.active ? 1 : 0;
    if (dto.subMchid !== undefined) changes.subMchid = await this.subMerchants.resolveForProduct(dto.subMchid);
    await this.products.update({ id: String(id) }, changes);
    return { before: this.view(existing), after: this.view(await this.products.findOneByOrFail({ id: String(id) })) };
  }

  /** Demo products for a fresh sandbox shop; does nothing once any product exists. */
  async seedDemo(): Promise<void> {
    if ((await this.products.count()) > 0) return;
    for (const product of DEMO_PRODUCTS) await this.create(product);
    this.logger.log(`seeded ${DEMO_PRODUCTS.length} demo products`);
  }
}
