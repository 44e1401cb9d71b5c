import { ApiProperty } from '@nestjs/swagger';

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
