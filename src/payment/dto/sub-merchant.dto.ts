import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsDefined, IsOptional, IsString, Length, Matches, ValidateIf } from 'class-validator';

const SUB_MCHID = /^\d{8,12}$/;
const APPID = /^wx[0-9a-zA-Z]{16}$/;
const APPSECRET = /^[0-9a-zA-Z]{32}$/;

export class CreateSubMerchantDto {
  @ApiProperty({ example: '1900000109', description: "The sub-merchant's mchid (特约商户号)" })
  @IsDefined({ message: 'subMchid is required' })
  @Matches(SUB_MCHID, { message: 'subMchid must be the numeric mchid of the sub-merchant (8 to 12 digits)' })
  subMchid: string;

  @ApiProperty({ example: '一号小店' })
  @IsDefined({ message: 'name is required' })
  @IsString({ message: 'name must be a string' })
  @Length(1, 128, { message: 'name must be 1 to 128 characters' })
  name: string;

  @ApiPropertyOptional({ description: "The sub-merchant's own official-account appid (with subAppSecret)" })
  @IsOptional()
  @Matches(APPID, { message: 'subAppid must be an official-account appid: "wx" followed by 16 letters or digits' })
  subAppid?: string;

  @ApiPropertyOptional({ description: "That account's AppSecret: stored encrypted, never answered" })
  @IsOptional()
  @Matches(APPSECRET, { message: 'subAppSecret must be the 32-character AppSecret of the sub-merchant official account' })
  subAppSecret?: string;

  @ApiPropertyOptional({ default: true })
  @IsOptional()
  @IsBoolean({ message: 'enabled must be true or false' })
  enabled?: boolean;
}

export class UpdateSubMerchantDto {
  @ApiPropertyOptional()
  @IsOptional()
  @IsString({ message: 'name must be a string' })
  @Length(1, 128, { message: 'name must be 1 to 128 characters' })
  name?: string;

  @ApiPropertyOptional({ nullable: true, type: String, description: 'null removes the own official account (and its secret)' })
  @ValidateIf((_o, v) => v !== null && v !== undefined)
  @Matches(APPID, { message: 'subAppid must be an official-account appid: "wx" followed by 16 letters or digits, or null' })
  subAppid?: string | null;

  @ApiPropertyOptional()
  @IsOptional()
  @Matches(APPSECRET, { message: 'subAppSecret must be the 32-character AppSecret of the sub-merchant official account' })
  subAppSecret?: string;

  @ApiPropertyOptional({ description: "false: its products cannot be ordered (409)" })
  @IsOptional()
  @IsBoolean({ message: 'enabled must be true or false' })
  enabled?: boolean;
}

export class SubMerchantDto {
  @ApiProperty()
  subMchid: string;

  @ApiProperty()
  name: string;

  @ApiProperty({ nullable: true, type: String })
  subAppid: string | null;

  @ApiProperty({ description: 'Whether a secret for subAppid is stored (the secret itself is never answered)' })
  hasSubAppSecret: boolean;

  @ApiProperty()
  enabled: boolean;

  @ApiProperty({ description: 'The default sub-merchant (WECHATPAY_SUB_MCHID)' })
  isDefault: boolean;

  @ApiProperty()
  createdAt: string;

  @ApiProperty()
  updatedAt: string;
}
