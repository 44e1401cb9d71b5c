import { Body, Controller, Get, Param, ParseIntPipe, Patch, Post, Req } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { AdminRequest } from '../admin/admin.guard';
import { AdminOnly, Audit } from '../admin/admin.decorators';
import { CatalogService, productChanges } from './catalog.service';
import { CreateProductDto, ProductDto, UpdateProductDto } from './dto/product.dto';

@ApiTags('products')
@Controller('products')
export class ProductsController {
  constructor(private readonly catalog: CatalogService) {}

  @Get()
  @ApiOperation({ summary: 'Products on sale (price in fen; stock null = unlimited)' })
  @ApiOkResponse({ type: [ProductDto] })
  list(): Promise<ProductDto[]> {
    return this.catalog.listActive();
  }
}

@ApiTags('admin')
@AdminOnly()
@Controller('admin/products')
export class AdminProductsController {
  constructor(private readonly catalog: CatalogService) {}

  @Get()
  @ApiOkResponse({ type: [ProductDto] })
  list(): Promise<ProductDto[]> {
    return this.catalog.listAll();
  }

  @Post()
  @Audit(
    'product.create',
    (_req, result) => String((result as ProductDto | undefined)?.id ?? ''),
    (_req, result) => {
      const p = result as ProductDto;
      return { after: { name: p.name, price: p.price, stock: p.stock, active: p.active, ...(p.subMchid ? { subMchid: p.subMchid } : {}) } };
    },
  )
  @ApiCreatedResponse({ type: ProductDto })
  create(@Body() dto: CreateProductDto): Promise<ProductDto> {
    return this.catalog.create(dto);
  }

  @Patch(':id')
  @Audit('product.update', (req) => String(req.params.id))
  @ApiOperation({ summary: 'Edit a product; the audit row (product.update) keeps each named field before and after' })
  @ApiOkResponse({ type: ProductDto })
  async update(@Param('id', ParseIntPipe) id: number, @Body() dto: UpdateProductDto, @Req() req: AdminRequest): Promise<ProductDto> {
    const { before, after } = await this.catalog.update(id, dto);
    req.auditDetail = productChanges(before, after, dto);
    return after;
  }
}
