import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, Matches, MaxLength } from 'class-validator';

export class AuthorizeQueryDto {
  @ApiPropertyOptional({ description: 'Same-site path to return to after login', example: '/orders' })
  @IsOptional()
  @IsString()
  @MaxLength(512)
  redirect?: string;

  @ApiPropertyOptional({ enum: ['snsapi_base', 'snsapi_userinfo'], default: 'snsapi_base' })
  @IsOptional()
  @IsIn(['snsapi_base', 'snsapi_userinfo'], { message: 'scope must be snsapi_base or snsapi_userinfo' })
  scope?: 'snsapi_base' | 'snsapi_userinfo';

  @ApiPropertyOptional({
    description:
      "Service-provider mode: log in through this sub-merchant's own official account (its sub_appid; the provider's when it has none). Default: the default sub-merchant's",
    example: '1900000202',
  })
  @IsOptional()
  @Matches(/^[0-9]{8,12}$/, { message: 'subMchid must be a sub-merchant number (8 to 12 digits)' })
  subMchid?: string;
}

export class CallbackQueryDto {
  @IsOptional()
  @IsString()
  @MaxLength(256)
  code?: string;

  @IsOptional()
  @IsString()
  @MaxLength(256)
  state?: string;
}

export class MeQueryDto {
  @ApiPropertyOptional({ description: 'Re-read nickname and avatar from WeChat (snsapi_userinfo logins)' })
  @IsOptional()
  @IsIn(['0', '1', 'true', 'false'], { message: 'refresh must be 1 or 0' })
  refresh?: string;
}
