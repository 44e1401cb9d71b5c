import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsDefined, IsIn, IsInt, IsOptional, Max, Min, ValidateNested } from 'class-validator';
import { FAST_VALIDATE, hasExactlyKeys } from '../../common/validation';
import { ORDER_STATUSES } from '../entities/order.entity';
import { ATTEMPT_STATUSES, PAY_CHANNELS } from '../entities/payment-attempt.entity';

export class OrderItemInputDto {
  @ApiProperty({ example: 1 })
  @IsDefined({ message: 'productId is required' })
  @IsInt({ message: 'productId must be an integer' })
  @Min(1)
  productId: number;

  @ApiProperty({ example: 1, minimum: 1, maximum: 99 })
  @IsDefined({ message: 'quantity is required' })
  @IsInt({ message: 'quantity must be an integer' })
  @Min(1, { message: 'quantity must be at least 1' })
  @Max(99, { message: 'quantity must be at most 99' })
  quantity: number;
}

export class CreateOrderDto {
  @ApiProperty({ type: [OrderItemInputDto] })
  @IsDefined({ message: 'items is required: [{ productId, quantity }]' })
  @IsArray({ message: 'items must be an array of { productId, quantity }' })
  @ArrayMinSize(1, { message: 'items must contain at least one item' })
  @ArrayMaxSize(20, { message: 'items must contain at most 20 items' })
  @ValidateNested({ each: true })
  @Type(() => OrderItemInputDto)
  items: OrderItemInputDto[];

  /** The common valid body, checked by hand (the decorators above decide everything else; see FAST_VALIDATE). */
  static [FAST_VALIDATE](value: unknown): CreateOrderDto | undefined {
    if (!hasExactlyKeys(value, ['items'])) return undefined;
    const items = value.items;
    if (!Array.isArray(items) || items.length < 1 || items.length > 20) return undefined;
    const dto = new CreateOrderDto();
    dto.items = [];
    for (let i = 0; i < items.length; i++) {
      const item: unknown = items[i];
      if (!hasExactlyKeys(item, ['productId', 'quantity'])) return undefined;
      const { productId, quantity } = item;
      if (!Number.isInteger(productId) || (productId as number) < 1) return undefined;
      if (!Number.isInteger(quantity) || (quantity as number) < 1 || (quantity as number) > 99) return undefined;
      const line = new OrderItemInputDto();
      line.productId = productId as number;
      line.quantity = quantity as number;
      dto.items.push(line);
    }
    return dto;
  }
}

export class ListQueryDto {
  @ApiPropertyOptional({ default: 1, maximum: 100000 })
  @IsOptional()
  @Type(() => Number)
  @IsInt({ message: 'page must be an integer' })
  @Min(1, { message: 'page must be at least 1' })
  @Max(100000, { message: 'page must be at most 100000' })
  page?: number;

  @ApiPropertyOptional({ default: 20, maximum: 100 })
  @IsOptional()
  @Type(() => Number)
  @IsInt({ message: 'pageSize must be an integer' })
  @Min(1)
  @Max(100)
  pageSize?: number;

  @ApiPropertyOptional({ enum: ORDER_STATUSES })
  @IsOptional()
  @IsIn(ORDER_STATUSES as unknown as string[], { message: `status must be one of ${ORDER_STATUSES.join(', ')}` })
  status?: string;
}

export class OrderItemDto {
  @ApiProperty()
  productId: number;

  @ApiProperty()
  name: string;

  @ApiProperty({ description: 'fen' })
  unitPrice: number;

  @ApiProperty()
  quantity: number;

  @ApiProperty({ description: 'fen' })
  subtotal: number;
}

export class PaymentAttemptDto {
  @ApiProperty({ description: "The attempt's out_trade_no at WeChat (the first is the order's own)" })
  outTradeNo: string;

  @ApiProperty({ enum: PAY_CHANNELS })
  channel: string;

  @ApiProperty({ enum: ATTEMPT_STATUSES })
  status: string;

  @ApiProperty()
  createdAt: string;
}

export class OrderDto {
  @ApiProperty()
  outTradeNo: string;

  @ApiProperty({ enum: ORDER_STATUSES })
  status: string;

  @ApiProperty({ description: 'fen' })
  total: number;

  @ApiProperty({ example: 'CNY' })
  currency: string;

  @ApiProperty()
  description: string;

  @ApiProperty({ type: [OrderItemDto] })
  items: OrderItemDto[];

  @ApiProperty()
  createdAt: string;

  @ApiProperty({ nullable: true, type: String })
  paidAt: string | null;

  @ApiProperty({ description: 'Unpaid orders are closed at this time' })
  expiresAt: string;

  @ApiProperty({ nullable: true, type: String })
  closedAt: string | null;

  @ApiProperty({ nullable: true, enum: ['cancelled', 'expired'], description: 'CLOSED orders: cancelled by the shopper, or expired unpaid' })
  closeReason: 'cancelled' | 'expired' | null;

  @ApiProperty({ description: 'fen refunded so far' })
  refundedTotal: number;

  @ApiPropertyOptional({ description: 'Service-provider mode only: the sub-merchant the order is placed with' })
  subMchid?: string;

  @ApiProperty({ nullable: true, type: String })
  transactionId: string | null;

  @ApiProperty({ type: [PaymentAttemptDto], description: 'Payment attempts, oldest first' })
  payments: PaymentAttemptDto[];
}

/** Body of POST /orders/:no/pay (checked by the service, so that an unknown channel is named with the valid ones). */
export class PayDto {
  @ApiPropertyOptional({ enum: PAY_CHANNELS, default: 'jsapi' })
  channel?: string;
}

export class InvokeParamsDto {
  @ApiProperty({ enum: PAY_CHANNELS }) channel: string;
  @ApiProperty({ description: "The attempt's out_trade_no" }) outTradeNo: string;
  @ApiPropertyOptional({ description: 'jsapi' }) appId?: string;
  @ApiPropertyOptional({ description: 'jsapi, miniprogram' }) timeStamp?: string;
  @ApiPropertyOptional({ description: 'jsapi, miniprogram' }) nonceStr?: string;
  @ApiPropertyOptional({ example: 'prepay_id=wx201410272009395522657a690389285100', description: 'jsapi, miniprogram' }) package?: string;
  @ApiPropertyOptional({ example: 'RSA', description: 'jsapi, miniprogram' }) signType?: string;
  @ApiPropertyOptional({ description: 'jsapi, miniprogram' }) paySign?: string;
  @ApiPropertyOptional({ description: "h5: WeChat's h5_url + &redirect_url= (the result page)" }) h5Url?: string;
  @ApiPropertyOptional({ description: 'native: weixin://wxpay/bizpayurl?pr=…, shown as a QR code' }) codeUrl?: string;
}
