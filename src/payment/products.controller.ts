import { Body, Controller, Get, Param, ParseIntPipe, Patch, Post } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { AdminOnly, Audit } from '../admin/admin.decorators';
import { CatalogService } from './catalog.service';
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
  @Audit('product.create', (_req, result) => String((result as ProductDto | undefined)?.id ?? ''))
  @ApiCreatedResponse({ type: ProductDto })
  create(@Body() dto: CreateProductDto): Promise<ProductDto> {
    return this.catalog.create(dto);
  }

  @Patch(':id')
  @Audit('product.update', (req) => String(req.params.id))
  @ApiOkResponse({ type: ProductDto })
  update(@Param('id', ParseIntPipe) id: number, @Body() dto: UpdateProductDto): Promise<ProductDto> {
    return this.catalog.update(id, dto);
  }
}
