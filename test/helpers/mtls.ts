import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import https from 'node:https';
import { parseV2Xml } from '../../src/wechat/pay-v2/xml';
import { rsaKeyPair, selfSignedCertificate } from './keys';

export interface TlsPostResult {
  status: number;
  text: string;
  /** The XML answer's fields ({} when the answer is not XML, e.g. nginx's HTML 400). */
  fields: Record<string, string>;
}

/**
 * POSTs `body` over https to the sandbox's mutual-TLS port with an agent of its own (no session reuse
 * between calls): `ca` trusted to verify the server (never turned off), `cert`+`key` presented when given.
 */
export function tlsPost(url: string, body: string, options: { ca: string; cert?: string; key?: string }): Promise<TlsPostResult> {
  const agent = new https.Agent({ keepAlive: false, maxCachedSessions: 0 });
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      { method: 'POST', agent, ca: options.ca, cert: options.cert, key: options.key, headers: { 'Content-Type': 'text/xml; charset=utf-8' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, text, fields: text.trimStart().startsWith('<xml') ? parseV2Xml(text) : {} });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * A certificate the merchant could make itself: self-signed, for the merchant's own key (or a fresh
 * one), with the merchant's CN and serial (everything like apiclient_cert.pem except the CA that issued it).
 */
export async function selfMadeCertificate(subjectCn: string, serialHex: string, keyPair?: { privateKeyPem: string; publicKeyPem: string }): Promise<{ certPem: string; keyPem: string }> {
  const keys = keyPair ?? rsaKeyPair();
  const certPem = await selfSignedCertificate({
    keys,
    serial: serialHex,
    name: `CN=${subjectCn},OU=Self-made,O=Not issued by the sandbox CA,C=CN`,
    notBefore: new Date(Date.now() - 3600_000),
    notAfter: new Date(Date.now() + 365 * 24 * 3600_000),
    extensions: [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])],
  });
  return { certPem, keyPem: keys.privateKeyPem };
}
