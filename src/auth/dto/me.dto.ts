import { ApiProperty } from '@nestjs/swagger';

export class MeDto {
  @ApiProperty()
  openid: string;

  @ApiProperty({ nullable: true, type: String })
  nickname: string | null;

  @ApiProperty({ nullable: true, type: String })
  avatarUrl: string | null;

  @ApiProperty({ enum: ['snsapi_base', 'snsapi_userinfo'] })
  scope: string;
}
