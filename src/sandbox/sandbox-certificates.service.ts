import { Injectable } from '@nestjs/common';
import { X509Certificate } from 'node:crypto';
import { beijingTime, encryptForMerchant } from './sandbox-crypto';
import { payError } from './sandbox-errors';
import { SandboxSettings } from './sandbox.settings';

type Json = Record<string, unknown>;

/** WeChat's answer to /v3/certificates for a merchant that only has the WeChat Pay public key. */
export const NO_PLATFORM_CERTIFICATE =
  '无可用的平台证书，请在商户平台-API安全申请使用微信支付公钥。可查看指引https://pay.weixin.qq.com/doc/v3/merchant/4012153196';

/** WeChat Pay's GET /v3/certificates: the platform certificate (none in public-key mode). */
@Injectable()
export class SandboxCertificatesService {
  /** The certificate's validity period, read once (the keystore never changes while running). */
  private certificateValidity?: { from: number; to: number };

  constructor(private readonly settings: SandboxSettings) {}

  /**
   * The platform certificate, encrypted with the APIv3 key, with the certificate's own validity period.
   * A merchant in pure public-key mode has none: WeChat answers 404 RESOURCE_NOT_EXISTS with this
   * message (as quoted from real answers in wechatpay-java #306/#400 and wechatpay-go #251).
   */
  certificatesView(): Json {
    if (this.settings.signMode === 'public_key') throw payError.resourceNotFound(NO_PLATFORM_CERTIFICATE);
    const ks = this.settings.keystore;
    if (!this.certificateValidity) {
      const cert = new X509Certificate(ks.platform.certificatePem);
      this.certificateValidity = { from: Date.parse(cert.validFrom), to: Date.parse(cert.validTo) };
    }
    return {
      data: [
        {
          serial_no: ks.platform.serial,
          effective_time: beijingTime(this.certificateValidity.from),
          expire_time: beijingTime(this.certificateValidity.to),
          encrypt_certificate: encryptForMerchant(ks.apiv3Key, ks.platform.certificatePem, 'certificate'),
        },
      ],
    };
  }
}
