import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { ShopController } from './shop.controller';

/** The demo H5 shop (public/shop/, at / when DEMO_SHOP) and the admin console (public/admin/) are static pages; this serves the shop's boot data. */
@Module({ imports: [AuthModule], controllers: [ShopController] })
export class ShopModule {}
