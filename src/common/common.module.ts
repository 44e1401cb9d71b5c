import { Global, Module, OnApplicationShutdown, Inject } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { LeaseService } from '../database/lease.service';
import { Clock, SystemClock } from './clock';
import { MemoryStore } from './store/memory-store';
import { RedisStore } from './store/redis-store';
import { SharedStore } from './store/shared-store';

/** Cross-cutting infrastructure every module may inject: the clock, the shared store, leases. */
@Global()
@Module({
  providers: [
    { provide: Clock, useClass: SystemClock },
    {
      provide: SharedStore,
      inject: [AppConfig],
      useFactory: (config: AppConfig): SharedStore =>
        config.redisUrl ? new RedisStore(config.redisUrl, config.redisPrefix) : new MemoryStore(),
    },
    LeaseService,
  ],
  exports: [Clock, SharedStore, LeaseService],
})
export class CommonModule implements OnApplicationShutdown {
  constructor(@Inject(SharedStore) private readonly store: SharedStore) {}

  async onApplicationShutdown(): Promise<void> {
    await this.store.close();
  }
}
