import { DynamicModule, Module } from '@nestjs/common';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { ScheduleModule } from '@nestjs/schedule';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { DestinationStream } from 'pino';
import { AdminModule } from './admin/admin.module';
import { AuthModule } from './auth/auth.module';
import { BillingModule } from './billing/billing.module';
import { CommonModule } from './common/common.module';
import { buildLoggerModule } from './common/logging';
import { retryableDatabaseError } from './config/startup-errors';
import { AppConfig } from './config/app-config';
import { AppConfigModule } from './config/config.module';
import { buildDataSourceOptions } from './database/data-source-options';
import { HealthModule } from './health/health.module';
import { JssdkModule } from './jssdk/jssdk.module';
import { MetricsModule } from './metrics/metrics.module';
import { NotifyModule } from './notify/notify.module';
import { PaymentModule } from './payment/payment.module';
import { RefundModule } from './refund/refund.module';
import { loadOrCreateSandboxKeystore, loadOrCreateSandboxTls, sandboxMerchantCredentials } from './sandbox/keystore';
import { SandboxSecapiEndpoint } from './sandbox/sandbox-secapi.server';
import { SandboxModule } from './sandbox/sandbox.module';
import { ShopModule } from './shop/shop.module';
import { WechatCredentials, loadLiveCredentials } from './wechat/wechat-credentials';
import { WechatModule } from './wechat/wechat.module';

/** Live: the merchant's files. Sandbox: the keystore the sandbox generated under DATA_DIR/sandbox. */
async function resolveCredentials(config: AppConfig): Promise<WechatCredentials> {
  if (config.wechatMode === 'live') return loadLiveCredentials(config);
  // The sandbox registers a mini-program of its own unless WECHAT_MINIPROGRAM_APPID/APPSECRET name one.
  const keystore = await loadOrCreateSandboxKeystore(config.sandbox.dataDir);
  return sandboxMerchantCredentials(keystore, config.sandbox.signMode, config.wechat.miniprogram, await loadOrCreateSandboxTls(config.sandbox.dataDir));
}

export interface AppModuleOptions {
  /** Where log lines go (tests capture them); stdout when absent. */
  logStream?: DestinationStream;
  /** Scheduled jobs on (default) or off (some tests drive the jobs by hand). */
  schedules?: boolean;
}

/** The composition root: which modules make up the application, given the validated config. */
@Module({})
export class AppModule {
  static forRoot(config: AppConfig, options: AppModuleOptions = {}): DynamicModule {
    // The in-process sandbox's mutual-TLS port (APIv2 /secapi calls), when the app uses its own sandbox's
    // Pay API and WECHATPAY_SECAPI_BASE does not name another endpoint.
    const secapiEndpoint = config.wechatMode === 'sandbox' ? new SandboxSecapiEndpoint() : undefined;
    const ownSecapi = secapiEndpoint && !config.wechat.secapiBase && config.wechat.payApiBase === `${config.publicBaseUrl}/sandbox`;
    return {
      module: AppModule,
      imports: [
        AppConfigModule.forRoot(config),
        buildLoggerModule(config, options.logStream),
        TypeOrmModule.forRoot({
          ...buildDataSourceOptions(config),
          migrationsRun: true,
          autoLoadEntities: true,
          // Wrong credentials or a missing database end the start at once (one clear message from main.ts),
          // not after 9 retries with a stack trace each; a server still starting is retried.
          toRetry: retryableDatabaseError,
        }),
        EventEmitterModule.forRoot(),
        ...(options.schedules === false ? [] : [ScheduleModule.forRoot()]),
        CommonModule,
        MetricsModule.forRoot(config),
        HealthModule,
        AdminModule,
        WechatModule.forRoot(resolveCredentials, { secapiBase: ownSecapi ? () => secapiEndpoint.base : undefined }),
        ...(config.wechatMode === 'sandbox' ? [SandboxModule.forRoot(config, { secapiEndpoint })] : []),
        AuthModule,
        JssdkModule,
        PaymentModule,
        RefundModule,
        NotifyModule,
        BillingModule,
        ShopModule,
      ],
    };
  }
}
