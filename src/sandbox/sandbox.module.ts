import { DynamicModule, Module, OnModuleInit } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { loadOrCreateSandboxKeystore, loadOrCreateSandboxTls } from './keystore';
import { SANDBOX_SECAPI_OPTIONS, SandboxSecapiEndpoint, SandboxSecapiServer } from './sandbox-secapi.server';
import { SandboxBillsService } from './sandbox-bills.service';
import { SandboxCashierController } from './sandbox-cashier.controller';
import { SandboxCertificatesService } from './sandbox-certificates.service';
import { SandboxH5Controller } from './sandbox-h5.controller';
import { SandboxClock } from './sandbox-clock';
import { SandboxControlController } from './sandbox-control.controller';
import { SandboxFaults } from './sandbox-faults';
import { SandboxHttp } from './sandbox-http';
import { SandboxInstanceLock } from './sandbox-instance-lock';
import { SandboxMiniprogramControlController, SandboxMiniprogramController, SandboxMpController } from './sandbox-mp.controller';
import { SandboxMpService } from './sandbox-mp.service';
import { SandboxNotifier } from './sandbox-notifier.service';
import { SandboxPayV2Controller } from './sandbox-pay-v2.controller';
import { SandboxPayController, SandboxPayNotFoundController } from './sandbox-pay.controller';
import { SandboxPartnerController } from './sandbox-partner.controller';
import { SandboxPartnerService } from './sandbox-partner.service';
import { SandboxPayService } from './sandbox-pay.service';
import { SandboxRefundsService } from './sandbox-refunds.service';
import { SandboxSettings } from './sandbox.settings';
import { SandboxState } from './sandbox.state';

const STANDALONE = Symbol('SANDBOX_STANDALONE');

/**
 * A faithful local WeChat under /sandbox: official-account OAuth/token/ticket APIs, Pay APIv3 with
 * real signatures and encryption, cashier and JS bridge, notifications with retries, bills, and a
 * control API for tests. Mounted only in sandbox mode (AppModule) or alone (npm run sandbox).
 */
@Module({})
export class SandboxModule implements OnModuleInit {
  constructor(
    private readonly state: SandboxState,
    private readonly settings: SandboxSettings,
  ) {}

  /**
   * `secapiEndpoint`: the app's handle on the mutual-TLS endpoint (filled in once it listens), for its
   * APIv2 client; the standalone sandbox prints and exposes it instead.
   */
  static forRoot(config: AppConfig, options: { standalone?: boolean; secapiEndpoint?: SandboxSecapiEndpoint } = {}): DynamicModule {
    if (config.wechatMode !== 'sandbox') {
      throw new Error('the WeChat sandbox can never be mounted in live mode');
    }
    return {
      module: SandboxModule,
      controllers: [
        SandboxPayController,
        SandboxPartnerController,
        SandboxPayV2Controller,
        SandboxMpController,
        SandboxCashierController,
        SandboxH5Controller,
        SandboxControlController,
        SandboxMiniprogramController,
        SandboxMiniprogramControlController,
        // The Pay API's catch-all (signed 404 NOT_FOUND): must stay LAST, routes are matched in
        // registration order and anything after it under /sandbox/v3 would never be reached.
        SandboxPayNotFoundController,
      ],
      providers: [
        { provide: STANDALONE, useValue: options.standalone ?? false },
        {
          provide: SandboxSettings,
          inject: [AppConfig, STANDALONE],
          useFactory: async (cfg: AppConfig, standalone: boolean) =>
            SandboxSettings.from(cfg, await loadOrCreateSandboxKeystore(cfg.sandbox.dataDir), standalone, await loadOrCreateSandboxTls(cfg.sandbox.dataDir)),
        },
        {
          provide: SANDBOX_SECAPI_OPTIONS,
          // The http port's interface: the app's HOST (sandbox mode: 127.0.0.1), all for `npm run sandbox`.
          useValue: { port: config.sandbox.secapiPort, host: options.standalone ? undefined : config.host, endpoint: options.secapiEndpoint },
        },
        SandboxSecapiServer,
        SandboxClock,
        SandboxState,
        SandboxFaults,
        SandboxNotifier,
        SandboxHttp,
        SandboxPayService,
        SandboxRefundsService,
        SandboxBillsService,
        SandboxCertificatesService,
        SandboxMpService,
        SandboxPartnerService,
        // Inside the app only: `npm run sandbox` has no database, and is the one sandbox instances share.
        ...(options.standalone ? [] : [SandboxInstanceLock]),
      ],
      exports: [SandboxSettings, SandboxMpService, SandboxPayService, SandboxSecapiServer],
    };
  }

  onModuleInit(): void {
    if (this.settings.persistState) this.state.enablePersistence(this.settings.dataDir);
  }
}

