import { ApiProperty } from '@nestjs/swagger';
import { IsNotEmpty, IsString, MaxLength } from 'class-validator';

export class JssdkConfigQueryDto {
  @ApiProperty({ description: 'Absolute URL of the page that calls wx.config (the #fragment is ignored)', example: 'https://shop.example.com/cart?x=1' })
  @IsString({ message: 'url is required: the absolute URL of the page' })
  @IsNotEmpty({ message: 'url is required: the absolute URL of the page' })
  @MaxLength(2048)
  url: string;
}

export class WxConfigDto {
  @ApiProperty()
  appId: string;

  @ApiProperty({ description: 'Unix seconds' })
  timestamp: number;

  @ApiProperty()
  nonceStr: string;

  @ApiProperty({ description: 'sha1(jsapi_ticket=…&noncestr=…&timestamp=…&url=…)' })
  signature: string;

  @ApiProperty({ type: [String] })
  jsApiList: string[];
}
