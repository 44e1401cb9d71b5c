import { Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuthController } from './auth.controller';
import { AuthJobs } from './auth.jobs';
import { AuthService } from './auth.service';
import { OAuthState } from './entities/oauth-state.entity';
import { Session } from './entities/session.entity';
import { UserIdentity } from './entities/user-identity.entity';
import { User } from './entities/user.entity';
import { SessionGuard } from './session.guard';
import { ShopperAccounts } from './shopper-accounts';
import { SubMerchant } from '../payment/entities/sub-merchant.entity';

/** WeChat OAuth login and shopper sessions. Other modules use SessionGuard, @CurrentUser() and AuthService. */
@Global()
@Module({
  imports: [TypeOrmModule.forFeature([User, Session, OAuthState, UserIdentity, SubMerchant])],
  controllers: [AuthController],
  providers: [AuthService, SessionGuard, AuthJobs, ShopperAccounts],
  exports: [AuthService, SessionGuard, AuthJobs, ShopperAccounts],
})
export class AuthModule {}
