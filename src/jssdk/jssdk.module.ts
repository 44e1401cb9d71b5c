import { Global, Module } from '@nestjs/common';
import { JssdkController } from './jssdk.controller';
import { JssdkService } from './jssdk.service';
import { WechatTokenService } from './wechat-token.service';

/** wx.config signatures, and the official account's access_token/jsapi_ticket service every module uses. */
@Global()
@Module({
  controllers: [JssdkController],
  providers: [WechatTokenService, JssdkService],
  exports: [WechatTokenService, JssdkService],
})
export class JssdkModule {}
