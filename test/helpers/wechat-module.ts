import { Global, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Clock, FixedClock } from '../../src/common/clock';
import { MemoryStore } from '../../src/common/store/memory-store';
import { SharedStore } from '../../src/common/store/shared-store';
import { AppConfigModule } from '../../src/config/config.module';
import { loadConfig } from '../../src/config/load-config';
import { WechatCredentials } from '../../src/wechat/wechat-credentials';
import { WechatModule } from '../../src/wechat/wechat.module';

/**
 * The WechatModule alone (no database), with a movable clock and an in-memory shared store, for
 * client tests against local stand-ins of WeChat.
 */
export async function wechatTestingModule(options: {
  env: Record<string, string>;
  credentials: WechatCredentials;
  clock?: FixedClock;
  store?: SharedStore;
}) {
  const clock = options.clock ?? new FixedClock(new Date());
  const store = options.store ?? new MemoryStore(() => clock.nowMs());

  @Global()
  @Module({ providers: [{ provide: Clock, useValue: clock }, { provide: SharedStore, useValue: store }], exports: [Clock, SharedStore] })
  class TestInfraModule {}

  const config = loadConfig({ NODE_ENV: 'test', WECHAT_MODE: 'sandbox', ...options.env });
  const moduleRef = await Test.createTestingModule({
    imports: [AppConfigModule.forRoot(config), TestInfraModule, WechatModule.forRoot(() => options.credentials)],
  }).compile();
  await moduleRef.init();
  return { moduleRef, clock, store, config };
}
