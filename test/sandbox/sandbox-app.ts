import { loadOrCreateSandboxKeystore, loadOrCreateSandboxTls, SandboxKeystore, SandboxTls } from '../../src/sandbox/keystore';
import { SandboxSecapiServer } from '../../src/sandbox/sandbox-secapi.server';
import { TestMerchant } from '../helpers/merchant-signer';
import { SandboxControl } from '../helpers/sandbox-control';
import { TestApp, TestAppOptions, startTestApp } from '../helpers/test-app';

export interface SandboxTestApp extends TestApp {
  keystore: SandboxKeystore;
  /** The sandbox CA, its mutual-TLS server certificate and the CA-issued apiclient_cert.pem. */
  tls: SandboxTls;
  /** `https://127.0.0.1:<port>/sandbox`: the mutual-TLS port (/secapi/…, /pay/downloadfundflow). */
  secapiBase: string;
  merchant: TestMerchant;
  control: SandboxControl;
}

/** The app in sandbox mode plus the sandbox's keystore, a hand-written merchant client and the control API. */
export async function startSandboxApp(options: TestAppOptions = {}): Promise<SandboxTestApp> {
  const t = await startTestApp(options);
  const keystore = await loadOrCreateSandboxKeystore(t.config.sandbox.dataDir);
  return Object.assign(t, {
    keystore,
    tls: await loadOrCreateSandboxTls(t.config.sandbox.dataDir),
    secapiBase: `${t.app.get(SandboxSecapiServer).origin}/sandbox`,
    merchant: new TestMerchant(t.baseUrl, keystore),
    control: new SandboxControl(t.baseUrl, { token: t.config.sandbox.controlToken }),
  });
}

let counter = 0;
export function tradeNo(prefix = 'SBX'): string {
  counter++;
  return `${prefix}${Date.now().toString(36)}${counter.toString(36)}${Math.random().toString(36).slice(2, 6)}`.slice(0, 32);
}
