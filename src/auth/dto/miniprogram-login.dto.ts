import { ApiProperty } from '@nestjs/swagger';
import { IsNotEmpty, IsString, Matches, MaxLength } from 'class-validator';

export class MiniprogramLoginDto {
  @ApiProperty({ description: 'The code of wx.login() (single use, valid 5 minutes)' })
  @IsString({ message: 'code must be the string wx.login() returned' })
  @IsNotEmpty({ message: 'code is required: the code of wx.login()' })
  @MaxLength(128, { message: 'code must be at most 128 characters' })
  @Matches(/^[\x21-\x7e]+$/, { message: 'code must be printable ASCII (the code of wx.login())' })
  code: string;
}

export class MiniprogramLoginAnswerDto {
  @ApiProperty({ description: 'Session token: send it as `Authorization: Bearer <token>`' })
  token: string;
}

export class GuestAnswerDto {
  @ApiProperty({ enum: ['guest'] })
  kind: 'guest';
}
