import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsDefined, IsInt, IsOptional, IsString, Length, Matches, Max, MaxLength, Min } from 'class-validator';

export class CreateRefundDto {
  @ApiProperty({ example: 'W2611241010001ABCDEFGHIJ' })
  @IsDefined({ message: 'outTradeNo is required' })
  @IsString()
  @Matches(/^[0-9A-Za-z_\-|*]{6,32}$/, { message: 'outTradeNo must be 6-32 characters of letters, digits, _ - | *' })
  outTradeNo: string;

  @ApiProperty({ description: 'Amount to refund, in fen', example: 100 })
  @IsDefined({ message: 'amount is required (fen)' })
  @IsInt({ message: 'amount must be an integer number of fen' })
  @Min(1, { message: 'amount must be at least 1 fen' })
  @Max(100_000_000)
  amount: number;

  @ApiProperty({ description: 'Shown to the shopper (max 80 characters)', example: '商品缺货' })
  @IsDefined({ message: 'reason is required' })
  @IsString()
  @Length(1, 80, { message: 'reason must be 1-80 characters' })
  reason: string;

  @ApiPropertyOptional({ description: 'Your refund number; repeating it with the same body is idempotent' })
  @IsOptional()
  @IsString()
  @MaxLength(64)
  @Matches(/^[0-9A-Za-z_\-|*@]{1,64}$/, { message: 'outRefundNo must be 1-64 characters of letters, digits, _ - | * @' })
  outRefundNo?: string;
}

export class RefundDto {
  @ApiProperty() outRefundNo: string;
  @ApiProperty() outTradeNo: string;
  @ApiProperty({ description: "The payment attempt's out_trade_no the refund went to at WeChat" }) paymentOutTradeNo: string;
  @ApiProperty({ description: 'fen' }) amount: number;
  @ApiProperty({ nullable: true, type: String }) reason: string | null;
  @ApiProperty({
    enum: ['PROCESSING', 'SUCCESS', 'CLOSED', 'ABNORMAL', 'FAILED'],
    description:
      'PROCESSING: at WeChat, or outcome unknown. SUCCESS / CLOSED: final. ABNORMAL: WeChat could not pay it out (e.g. the card was closed); its amount stays reserved (not refundable again) until WeChat reports it SUCCESS or CLOSED. FAILED: WeChat refused it (wechatCode) or never received it; its amount is free again, but a later result from WeChat still moves it.',
  })
  status: string;
  @ApiProperty({ nullable: true, type: String }) refundId: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) wechatCode: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) wechatMessage: string | null;
  @ApiProperty() source: string;
  @ApiProperty() createdAt: string;
  @ApiProperty({ nullable: true, type: String }) successAt: string | null;
}
