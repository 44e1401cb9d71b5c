import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsInt, IsOptional, IsString, IsUrl, Length, Matches, Max, MaxLength, Min, ValidateIf } from 'class-validator';

const SUB_MCHID_FIELD = () =>
  Matches(/^\d{8,12}$/, { message: 'subMchid must be the numeric mchid of a registered sub-merchant (8 to 12 digits)' });

export class CreateProductDto {
  @ApiProperty({ example: '微信定制马克杯' })
  @IsString()
  @Length(1, 128)
  name: string;

  @ApiProperty({ description: 'Price in fen (1 yuan = 100)', example: 3900 })
  @IsInt({ message: 'price must be an integer number of fen (1 yuan = 100 fen)' })
  @Min(1)
  @Max(10_000_000)
  price: number;

  @ApiPropertyOptional({ description: 'Units in stock; null or absent = unlimited', nullable: true, type: Number })
  @ValidateIf((_o, v) => v !== null && v !== undefined)
  @IsInt({ message: 'stock must be an integer or null (unlimited)' })
  @Min(0)
  @Max(1_000_000_000)
  stock?: number | null;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @MaxLength(512)
  description?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsUrl({ require_protocol: true, require_tld: false })
  @MaxLength(512)
  imageUrl?: string;
  @ApiPropertyOptional({ description: 'Service-provider mode: the sub-merchant selling it (default WECHATPAY_SUB_MCHID)' })
  @IsOptional()
  @SUB_MCHID_FIELD()
  subMchid?: string;
}

export class UpdateProductDto {
  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Length(1, 128)
  name?: string;

  @ApiPropertyOptional({ description: 'fen' })
  @IsOptional()
  @IsInt({ message: 'price must be an integer number of fen (1 yuan = 100 fen)' })
  @Min(1)
  @Max(10_000_000)
  price?: number;

  @ApiPropertyOptional({ nullable: true, type: Number })
  @ValidateIf((_o, v) => v !== null && v !== undefined)
  @IsInt({ message: 'stock must be an integer or null (unlimited)' })
  @Min(0)
  @Max(1_000_000_000)
  stock?: number | null;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @MaxLength(512)
  description?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsUrl({ require_protocol: true, require_tld: false })
  @MaxLength(512)
  imageUrl?: string;

  @ApiPropertyOptional({ description: 'false hides the product from the shop' })
  @IsOptional()
  @IsBoolean({ message: 'active must be true or false' })
  active?: boolean;
  @ApiPropertyOptional({ description: 'Service-provider mode: the sub-merchant selling it (default WECHATPAY_SUB_MCHID)' })
  @IsOptional()
  @SUB_MCHID_FIELD()
  subMchid?: string;
}

export class ProductDto {
  @ApiProperty()
  id: number;

  @ApiProperty()
  name: string;

  @ApiProperty({ description: 'fen' })
  price: number;

  @ApiProperty({ nullable: true, type: Number, description: 'null = unlimited' })
  stock: number | null;

  @ApiPropertyOptional({ nullable: true, type: String })
  description?: string | null;

  @ApiPropertyOptional({ nullable: true, type: String })
  imageUrl?: string | null;

  @ApiPropertyOptional()
  active?: boolean;

  @ApiPropertyOptional({ description: 'Service-provider mode only: the sub-merchant selling it' })
  subMchid?: string;
}
