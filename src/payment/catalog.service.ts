import { Injectable, Logger } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { In, Repository } from 'typeorm';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
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

interface CachedProduct {
  /** null: no such active product (a 404 is cached too). */
  product: Product | null;
  /** performance.now() when it was read. */
  readAt: number;
}

/**
 * The catalog. Prices live only here: an order's amount is always computed from it, never taken from a client.
 *
 * POST /orders reads it through a short-lived in-process cache (CATALOG_CACHE_TTL, default 1s, 0 = off):
 * an order is priced and permitted by a catalog at most that old, which is the same as the order having
 * been placed that much earlier. The cached stock is only a hint — the guarded UPDATE in the order's
 * transaction decides — used to refuse a sold-out product without a transaction. Product writes on this
 * instance (admin create/update, stock released by a close or cancel) evict their entries; another
 * instance's writes are seen within the TTL.
 */
@Injectable()
export class CatalogService {
  private readonly logger = new Logger(CatalogService.name);
  private readonly ttlMs: number;
  private readonly cache = new Map<string, CachedProduct>();
  /** Reads under way, by product id: concurrent creates of a cold product share one SELECT. */
  private readonly reading = new Map<string, Promise<void>>();
  /** Bumped by every eviction: a read that started before one does not fill the cache. */
  private generation = 0;
  /** Units of a product that creates on this instance are reserving right now (admit → release). */
  private readonly inFlight = new Map<string, number>();
  /** Creates waiting in admit() for one of those to settle. */
  private readonly waiting = new Map<string, Array<() => void>>();

  constructor(
    @InjectRepository(Product) private readonly products: Repository<Product>,
    private readonly clock: Clock,
    private readonly subMerchants: SubMerchantsService,
    config: AppConfig,
  ) {
    this.ttlMs = config.orders.catalogCacheTtlMs;
  }

  private view(p: Product): ProductDto {
    return productView(p, this.subMerchants.defaultSubMchid);
  }

  async listActive(): Promise<ProductDto[]> {
    return (await this.products.find({ where: { active: 1 }, order: { id: 'ASC' } })).map((p) => this.view(p));
  }

  async listAll(): Promise<ProductDto[]> {
    return (await this.products.find({ order: { id: 'ASC' } })).map((p) => this.view(p));
  }

  /**
   * The active products among `ids` (missing or inactive ones are left out), for pricing an order: from
   * the cache when read less than CATALOG_CACHE_TTL ago. The objects are shared: do not modify them.
   */
  async findActive(ids: number[]): Promise<Product[]> {
    if (!ids.length) return [];
    if (this.ttlMs <= 0) return this.products.find({ where: { id: In(ids.map(String)), active: 1 } });
    const keys = ids.map(String);
    let missing = this.stale(keys);
    if (missing.length) {
      const waits = missing.map((key) => this.reading.get(key)).filter((p): p is Promise<void> => p !== undefined);
      const unread = missing.filter((key) => !this.reading.has(key));
      if (unread.length) waits.push(this.read(unread));
      await Promise.all(waits);
      // Evicted while we waited (or the read failed to cache): read what is still missing ourselves.
      missing = this.stale(keys);
      if (missing.length) {
        const rows = await this.products.find({ where: { id: In(missing), active: 1 } });
        const byId = new Map(rows.map((p) => [String(p.id), p]));
        return keys.flatMap((key) => {
          const p = byId.get(key) ?? this.cache.get(key)?.product;
          return p ? [p] : [];
        });
      }
    }
    return keys.flatMap((key) => {
      const p = this.cache.get(key)!.product;
      return p ? [p] : [];
    });
  }

  /** The keys without a fresh cache entry. */
  private stale(keys: string[]): string[] {
    const now = performance.now();
    return keys.filter((key) => {
      const entry = this.cache.get(key);
      return !entry || now - entry.readAt >= this.ttlMs;
    });
  }

  private read(keys: string[]): Promise<void> {
    const generation = this.generation;
    const readAt = performance.now();
    const done = this.products
      .find({ where: { id: In(keys), active: 1 } })
      .then((rows) => {
        if (generation !== this.generation) return;
        const byId = new Map(rows.map((p) => [String(p.id), p]));
        for (const key of keys) this.cache.set(key, { product: byId.get(key) ?? null, readAt });
        if (this.cache.size > 10_000) this.prune();
      })
      .finally(() => {
        for (const key of keys) if (this.reading.get(key) === done) this.reading.delete(key);
      });
    for (const key of keys) this.reading.set(key, done);
    return done;
  }

  private prune(): void {
    const now = performance.now();
    for (const [key, entry] of this.cache) if (now - entry.readAt >= this.ttlMs) this.cache.delete(key);
  }

  /** Product writes on this instance (after they committed): the next read of these products goes to the database. */
  evict(productIds: Array<string | number>): void {
    if (this.ttlMs <= 0) return;
    this.generation++;
    for (const id of productIds) this.cache.delete(String(id));
  }

  /**
   * A sale's admission gate for a create of `quantity` units of one stocked product, on this instance,
   * while its cached entry is fresh: at most the hinted stock's worth of units are reserved by creates
   * in flight (each then runs its transaction, whose guarded UPDATE decides); a create beyond that
   * waits until one of them settles — committed (the hint drops: refused from memory once it is
   * short) or failed for any reason (its units are free again: the waiter goes ahead). So the late
   * shoppers of a sale cost no transaction, and no one is refused on a guess: only a hint that
   * committed orders (or a guarded UPDATE) lowered refuses. Answers 'short' (refuse: the hint is below
   * `quantity`), a release to call once the create has settled (after noteStock), or undefined (no
   * gate: no fresh entry, or no stock count).
   */
  async admit(productId: string | number, quantity: number): Promise<'short' | (() => void) | undefined> {
    const key = String(productId);
    for (;;) {
      const entry = this.cache.get(key);
      const stock = entry?.product?.stock;
      if (!entry || stock === null || stock === undefined || performance.now() - entry.readAt >= this.ttlMs) return undefined;
      if (stock < quantity) return 'short';
      const reserved = this.inFlight.get(key) ?? 0;
      if (reserved + quantity <= stock) {
        this.inFlight.set(key, reserved + quantity);
        let released = false;
        return () => {
          if (released) return;
          released = true;
          const left = (this.inFlight.get(key) ?? quantity) - quantity;
          if (left > 0) this.inFlight.set(key, left);
          else this.inFlight.delete(key);
          const waiters = this.waiting.get(key);
          this.waiting.delete(key);
          for (const wake of waiters ?? []) wake();
        };
      }
      await new Promise<void>((resolve) => {
        const list = this.waiting.get(key) ?? [];
        list.push(resolve);
        this.waiting.set(key, list);
      });
    }
  }

  /**
   * What a create learned about a product's stock, kept in its cached entry as a better hint until the
   * entry expires: `took` units were reserved by a committed order, or a guarded UPDATE found fewer than
   * `lessThan` units left. `pricedAt` (performance.now()) is when the create read the catalog: an entry
   * read after that may already show the outcome, and is left as it is (a higher hint is always safe).
   */
  noteStock(productId: string | number, pricedAt: number, outcome: { took: number } | { lessThan: number }): void {
    const entry = this.cache.get(String(productId));
    const p = entry?.product;
    if (!p || p.stock === null || entry.readAt > pricedAt) return;
    const stock = 'took' in outcome ? Math.max(0, p.stock - outcome.took) : Math.min(p.stock, outcome.lessThan - 1);
    if (stock !== p.stock) entry.product = Object.assign(new Product(), p, { stock });
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
    this.evict([id]);
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
    this.evict([id]);
    return { before: this.view(existing), after: this.view(await this.products.findOneByOrFail({ id: String(id) })) };
  }

  /** Demo products for a fresh sandbox shop; does nothing once any product exists. */
  async seedDemo(): Promise<void> {
    if ((await this.products.count()) > 0) return;
    for (const product of DEMO_PRODUCTS) await this.create(product);
    this.logger.log(`seeded ${DEMO_PRODUCTS.length} demo products`);
  }
}
