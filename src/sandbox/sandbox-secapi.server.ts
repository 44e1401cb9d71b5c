import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Server, createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { SandboxSettings } from './sandbox.settings';

/** What the mutual-TLS gate attaches to a request whose client presented the merchant's certificate. */
const SECAPI_CLIENT = Symbol('sandbox.secapiClient');

export interface SecapiClient {
  /** The certificate's CN: the merchant id it was issued to. */
  mchid: string;
  /** Its serial, upper-case hex. */
  serial: string;
}

/** The merchant certificate the request came with, when it came through the mutual-TLS port; undefined otherwise. */
export function secapiClientOf(req: IncomingMessage): SecapiClient | undefined {
  return (req as IncomingMessage & { [SECAPI_CLIENT]?: SecapiClient })[SECAPI_CLIENT];
}

/**
 * The paths WeChat serves only with the merchant certificate: /secapi/… and the fund-flow bill, under
 * /sandbox or (standalone sandbox) at the root.
 */
const CERTIFICATE_PATHS = /^(?:\/sandbox)?(?:\/secapi\/|\/pay\/downloadfundflow\/?$)/;

export function needsMerchantCertificate(path: string): boolean {
  return CERTIFICATE_PATHS.test(path.split('?', 1)[0]);
}

/**
 * Where the in-process sandbox's mutual-TLS endpoint listens, handed from the sandbox to the app's APIv2
 * client (AppModule creates one per application; the sandbox fills it in once its port is open).
 */
export class SandboxSecapiEndpoint {
  private url?: string;

  set(url: string): void {
    this.url = url;
  }

  /** `https://127.0.0.1:<port>/sandbox`. */
  get base(): string {
    if (!this.url) throw new Error('the sandbox mutual-TLS endpoint is not listening (yet)');
    return this.url;
  }
}

export const SANDBOX_SECAPI_OPTIONS = Symbol('SANDBOX_SECAPI_OPTIONS');

export interface SandboxSecapiOptions {
  /** SANDBOX_SECAPI_PORT; 0 = a free port. */
  port: number;
  /** Interface to bind (the http port's: the app's HOST, all interfaces for `npm run sandbox`). */
  host?: string;
  /** The app's handle on the endpoint (in-process sandbox only). */
  endpoint?: SandboxSecapiEndpoint;
}

/** nginx's answer, as api.mch.weixin.qq.com gives it when the client certificate is missing or not accepted. */
function nginx400(res: ServerResponse, reason: string): void {
  const body = `<html>\r\n<head><title>400 ${reason}</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n<center>${reason}</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;
  res.writeHead(400, { 'Content-Type': 'text/html', 'Content-Length': Buffer.byteLength(body), Connection: 'close' });
  res.end(body);
}

/**
 * The sandbox's mutual-TLS port: a second listener, https, in front of the same routes as the http
 * port, for the calls WeChat takes only with the merchant API certificate (/secapi/pay/refund,
 * /pay/downloadfundflow). Its certificate is issued by the sandbox's CA for localhost, 127.0.0.1 and ::1
 * (DATA_DIR/sandbox/sandbox_ca.pem); it asks every client for a certificate and checks it against that
 * CA alone, which issued the merchant's apiclient_cert.pem and nothing else a client could hold.
 *
 * Like WeChat's front (nginx with client verification), the handshake itself completes and the request
 * is then answered HTTP 400 "No required SSL certificate was sent" (none) or "The SSL certificate error"
 * (one the CA did not issue, or not the merchant's), before anything is read or changed. Only the
 * certificate paths are served here; anything else is 404.
 */
@Injectable()
export class SandboxSecapiServer implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('SandboxSecapi');
  private server?: Server;
  private port?: number;
  /** Requests since start: passed to the routes, refused without a certificate, refused for the one presented. */
  readonly counts = { served: 0, noCertificate: 0, badCertificate: 0 };

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly settings: SandboxSettings,
    @Inject(SANDBOX_SECAPI_OPTIONS) private readonly options: SandboxSecapiOptions,
  ) {}

  resetCounts(): void {
    this.counts.served = 0;
    this.counts.noCertificate = 0;
    this.counts.badCertificate = 0;
  }

  /** `https://127.0.0.1:<port>` (the certificate names 127.0.0.1, localhost and ::1). */
  get origin(): string {
    if (this.port === undefined) throw new Error('the sandbox mutual-TLS endpoint is not listening (yet)');
    return `https://127.0.0.1:${this.port}`;
  }

  async onModuleInit(): Promise<void> {
    const tls = this.settings.tls;
    const server = createServer(
      {
        key: tls.server.privateKeyPem,
        cert: tls.server.certificatePem,
        ca: [tls.ca.certificatePem],
        requestCert: true,
        // Checked per request below (socket.authorized), so that a client without the certificate gets
        // WeChat's HTTP 400 rather than a bare handshake failure. Nothing passes unverified.
        rejectUnauthorized: false,
        minVersion: 'TLSv1.2',
      },
      (req, res) => this.handle(req, res),
    );
    server.on('tlsClientError', (error) => this.logger.debug(`TLS client error: ${error.message}`));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) =>
        reject(
          error.code === 'EADDRINUSE'
            ? new Error(`the sandbox's mutual-TLS port ${this.options.port} (SANDBOX_SECAPI_PORT) is already in use; choose another or 0 for a free one`)
            : error,
        ),
      );
      server.listen(this.options.port, this.options.host, () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    this.options.endpoint?.set(`${this.origin}/sandbox`);
  }

  async onApplicationShutdown(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket as TLSSocket;
    const peer = socket.getPeerCertificate();
    if (!peer || Object.keys(peer).length === 0) {
      this.counts.noCertificate++;
      return nginx400(res, 'No required SSL certificate was sent');
    }
    const cn = Array.isArray(peer.subject?.CN) ? peer.subject.CN[0] : peer.subject?.CN;
    if (!socket.authorized || cn !== this.settings.keystore.mchid) {
      this.logger.warn(`refused a client certificate (${socket.authorizationError ?? `CN=${cn}, not the merchant's`})`);
      this.counts.badCertificate++;
      return nginx400(res, 'The SSL certificate error');
    }
    if (!needsMerchantCertificate(req.url ?? '')) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('only /secapi/… and /pay/downloadfundflow are served on the mutual-TLS port');
      return;
    }
    this.counts.served++;
    (req as IncomingMessage & { [SECAPI_CLIENT]?: SecapiClient })[SECAPI_CLIENT] = { mchid: cn, serial: String(peer.serialNumber).toUpperCase() };
    const express = this.adapterHost.httpAdapter.getInstance<(req: IncomingMessage, res: ServerResponse) => void>();
    express(req, res);
  }
}
