import { loadOrCreateSandboxKeystore, SandboxKeystore } from '../../src/sandbox/keystore';
import { TestMerchant } from '../helpers/merchant-signer';
import { SandboxControl } from '../helpers/sandbox-control';
import { TestApp, TestAppOptions, startTestApp } from '../helpers/test-app';

export interface SandboxTestApp extends TestApp {
  keystore: SandboxKeystore;
  merchant: TestMerchant;
  control: SandboxControl;
}

/** The app in sandbox mode plus the sandbox's keystore, a hand-written merchant client and the control API. */
export async function startSandboxApp(options: TestAppOptions = {}): Promise<SandboxTestApp> {
  const t = await startTestApp(options);
  const keystore = await loadOrCreateSandboxKeystore(t.config.sandbox.dataDir);
  return Object.assign(t, {
    keystore,
    merchant: new TestMerchant(t.baseUrl, keystore),
    control: new SandboxControl(t.baseUrl, { token: t.config.sandbox.controlToken }),
  });
}

let counter = 0;
export function tradeNo(prefix = 'SBX'): string {
  counter++;
  return `${prefix}${Date.now().toString(36)}${counter.toString(36)}${Math.random().toString(36).slice(2, 6)}`.slice(0, 32);
}
