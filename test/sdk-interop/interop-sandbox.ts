/**
 * What the SDK interop specs share: the standalone sandbox started as `npm run sandbox` (read from what
 * it prints), the SDKs loaded from test/sdk-interop/node_modules, and WeChat's hosts mapped to the
 * sandbox at the connection.
 *
 * Needs `npm ci --prefix test/sdk-interop` (its own node_modules). The specs are skipped without it,
 * unless REQUIRE_SDK_INTEROP=1 (CI), where a missing install fails.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import tls from 'node:tls';
import { join } from 'node:path';
import { SandboxControl } from '../helpers/sandbox-control';
import { freePort, tempDir } from '../helpers/test-app';

const INSTALLED = existsSync(join(__dirname, 'node_modules'));
if (!INSTALLED && process.env.REQUIRE_SDK_INTEROP === '1') {
  throw new Error('REQUIRE_SDK_INTEROP=1 but test/sdk-interop/node_modules is missing: run `npm ci --prefix test/sdk-interop`');
}
export const describeSdks = INSTALLED ? describe : describe.skip;
/** The SDKs come from test/sdk-interop/node_modules, untyped here so that type checking never needs them. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- third-party JavaScript SDKs
export const sdk = (name: string): any => createRequire(join(__dirname, 'package.json'))(name);
/** A module as the SDK `from` itself resolves it (its own copy of a dependency). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- third-party JavaScript SDKs
export const sdkDependency = (from: string, name: string): any => createRequire(createRequire(join(__dirname, 'package.json')).resolve(from))(name);

export interface Sandbox {
  base: string;
  port: number;
  dataDir: string;
  files: { key: string; cert: string; publicKey: string };
  /** WECHATPAY_API_V2_KEY as the sandbox printed it. */
  apiV2Key: string;
  /** The mutual-TLS port (/secapi/…, /pay/downloadfundflow) and the sandbox CA its certificate chains to, as printed. */
  secapi: { port: number; ca: string };
  keystore: { appid: string; appsecret: string; mchid: string; apiv3Key: string; merchant: { certSerial: string }; publicKey: { id: string } };
  /** Everything the sandbox printed on start. */
  printed: string;
  control: SandboxControl;
  stop: () => void;
}

export async function startSandbox(env: Record<string, string>): Promise<Sandbox> {
  const port = await freePort();
  const dataDir = tempDir();
  const child: ChildProcess = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/sandbox/standalone.ts'], {
    cwd: join(__dirname, '..', '..'),
    env: { PATH: process.env.PATH, SANDBOX_PORT: String(port), DATA_DIR: dataDir, NODE_ENV: 'test', SANDBOX_REFUND_DELAY: '0s', ...env },
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const deadline = Date.now() + 50_000;
  while (!out.includes('Test controls') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (!out.includes('Test controls')) throw new Error(`the standalone sandbox did not start:\n${out}`);
  // What the sandbox printed, as a user of `npm run sandbox` reads it.
  const printed = (label: string) => new RegExp(`${label}\\s+(\\S+)`).exec(out)?.[1] ?? '';
  const files = { key: printed('merchant API private key'), cert: printed('merchant API certificate'), publicKey: printed('WeChat Pay public key') };
  const keystore = JSON.parse(readFileSync(join(dataDir, 'sandbox', 'keystore.json'), 'utf8'));
  return {
    base: `http://127.0.0.1:${port}`,
    port,
    dataDir,
    files,
    apiV2Key: /WECHATPAY_API_V2_KEY=(\S+)/.exec(out)?.[1] ?? '',
    secapi: {
      port: Number(new URL(/WECHATPAY_SECAPI_BASE=(\S+)/.exec(out)?.[1] ?? 'https://127.0.0.1:0').port),
      ca: readFileSync(/NODE_EXTRA_CA_CERTS=(\S+)/.exec(out)?.[1] ?? join(dataDir, 'sandbox', 'sandbox_ca.pem'), 'utf8'),
    },
    keystore,
    printed: out,
    control: new SandboxControl(`http://127.0.0.1:${port}`),
    stop: () => {
      child.kill();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * WeChat's hosts mapped to the sandbox: every connection of this agent goes to the sandbox's port (plain
 * HTTP), whatever host the https URL names — a hosts-file entry and a TLS-terminating proxy in one. The
 * port is in the class, not the instance: a client asking for no pooling (`agent: false`, as superagent
 * does) gets `new agent.constructor()`, which must map the same way.
 */
export function wechatHostsAgent(port: number, mutualTls?: { port: number; ca: string }): https.Agent {
  class WechatHostsAgent extends https.Agent {
    override createConnection(options: tls.ConnectionOptions): ReturnType<typeof connect> {
      // A request carrying the merchant certificate (the /secapi calls, downloadfundflow) goes to the
      // sandbox's mutual-TLS port over real TLS: the certificate presented, the server verified against the
      // sandbox CA (its certificate names 127.0.0.1, not WeChat's host), as WeChat requires it.
      if (mutualTls && (options.pfx || options.cert)) {
        return tls.connect({ host: '127.0.0.1', port: mutualTls.port, ca: mutualTls.ca, pfx: options.pfx, passphrase: options.passphrase, cert: options.cert, key: options.key });
      }
      return connect({ host: '127.0.0.1', port });
    }
  }
  return new WechatHostsAgent({ keepAlive: false });
}
