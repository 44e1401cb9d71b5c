import { ApiProperty } from '@nestjs/swagger';

export class MeDto {
  @ApiProperty({ enum: ['wechat', 'miniprogram', 'guest'], description: 'How the session was made' })
  kind: string;

  @ApiProperty({ nullable: true, type: String, description: 'The openid under the app the session was made through; null for a guest' })
  openid: string | null;

  @ApiProperty({ nullable: true, type: String })
  nickname: string | null;

  @ApiProperty({ nullable: true, type: String })
  avatarUrl: string | null;

  @ApiProperty({ enum: ['snsapi_base', 'snsapi_userinfo', 'miniprogram', 'guest'] })
  scope: string;
}
