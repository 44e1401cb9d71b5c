import { JobLeases1763900000000 } from './1763900000000-job-leases';
import { AdminAudit1763900050000 } from './1763900050000-admin-audit';
import { Auth1763900100000 } from './1763900100000-auth';
import { Payment1763900200000 } from './1763900200000-payment';
import { RefundBilling1763900300000 } from './1763900300000-refund-billing';
import { PaymentDurability1763900400000 } from './1763900400000-payment-durability';
import { AdminAuditClient1764000400000 } from './1764000400000-admin-audit-client';
import { ShopperLimits1764100000000 } from './1764100000000-shopper-limits';
import { GuestMiniprogram1764213000000 } from './1764213000000-guest-miniprogram';
import { PaymentAttempts1764300000000 } from './1764300000000-payment-attempts';
import { SubMerchants1764400000000 } from './1764400000000-sub-merchants';
import { ReconciliationSubMerchants1764530150000 } from './1764530150000-reconciliation-sub-merchants';
import { OAuthStateAppid1764600000000 } from './1764600000000-oauth-state-appid';
import { DropOrdersStatusPrepayIndex1764750000000 } from './1764750000000-drop-orders-status-prepay-index';

/**
 * Every migration, in order. Append new ones here (file name `<unix ms>-<name>.ts`); never edit one
 * that has landed on main. Each must run on both MySQL/MariaDB and SQLite: build tables with
 * TypeORM's schema builder and the helpers in src/database/columns.ts.
 */
export const migrations = [JobLeases1763900000000, AdminAudit1763900050000, Auth1763900100000, Payment1763900200000, RefundBilling1763900300000, PaymentDurability1763900400000, AdminAuditClient1764000400000, ShopperLimits1764100000000, GuestMiniprogram1764213000000, PaymentAttempts1764300000000, SubMerchants1764400000000, ReconciliationSubMerchants1764530150000, OAuthStateAppid1764600000000, DropOrdersStatusPrepayIndex1764750000000];
