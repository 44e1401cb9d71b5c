import { HttpStatus } from '@nestjs/common';
import { AppError } from '../../common/errors/app-error';

/** WeChat Pay answered with an error body `{ code, message, detail }` (or an unreadable one). */
export class WechatPayApiError extends AppError {
  constructor(
    /** HTTP status WeChat answered with. */
    readonly httpStatus: number,
    /** WeChat's error code, e.g. PARAM_ERROR, ORDER_NOT_EXIST, FREQUENCY_LIMITED. */
    readonly wechatCode: string,
    readonly wechatMessage: string,
    readonly requestId?: string,
    readonly detail?: unknown,
  ) {
    super(
      HttpStatus.BAD_GATEWAY,
      'WECHATPAY_ERROR',
      `WeChat Pay answered ${httpStatus} ${wechatCode}: ${wechatMessage}`,
      { wechatStatus: httpStatus, wechatCode, wechatMessage, requestId, detail },
    );
  }

  get isRateLimited(): boolean {
    return this.httpStatus === 429 || this.wechatCode === 'FREQUENCY_LIMITED';
  }

  get isServerError(): boolean {
    return this.httpStatus >= 500;
  }
}

export type SignatureFailure =
  | 'missing_header'
  | 'bad_timestamp'
  | 'stale_timestamp'
  | 'unknown_serial'
  | 'signature_probe'
  | 'bad_signature'
  | 'unsupported_signature_type';

/** A response or notification whose Wechatpay-* signature does not check out: never trust its body. */
export class WechatPaySignatureError extends AppError {
  constructor(
    readonly reason: SignatureFailure,
    message: string,
    readonly serial?: string,
  ) {
    super(HttpStatus.UNAUTHORIZED, 'WECHATPAY_SIGNATURE_INVALID', message, { reason });
  }
}

/**
 * An answer from WeChat Pay that fails verification (signature, signature type, Content-Type): the
 * upstream is at fault, so our caller gets a 502 — never a 401, which the console would take for
 * its own session expiring. Carries WeChat's Request-ID.
 */
export class WechatPayBadAnswerError extends AppError {
  constructor(
    readonly reason: SignatureFailure | 'unexpected_content_type',
    message: string,
    readonly requestId?: string,
    readonly serial?: string,
  ) {
    super(HttpStatus.BAD_GATEWAY, 'WECHATPAY_BAD_SIGNATURE', `WeChat Pay's answer failed verification: ${message}`, { reason, requestId });
  }
}

/** An AEAD_AES_256_GCM resource that cannot be decrypted: wrong APIv3 key or tampered data. */
export class WechatPayDecryptError extends AppError {
  constructor(message: string) {
    super(HttpStatus.BAD_REQUEST, 'WECHATPAY_DECRYPT_FAILED', message);
  }
}

/**
 * WeChat Pay could not be reached or did not answer in time (or a streamed body stalled or broke off).
 * `sent` tells whether the request left; `requestId` is WeChat's when its headers had arrived.
 */
export class WechatPayNetworkError extends AppError {
  constructor(
    message: string,
    readonly sent: boolean,
    readonly timedOut: boolean,
    readonly causeCode?: string,
    readonly requestId?: string,
  ) {
    super(HttpStatus.BAD_GATEWAY, timedOut ? 'WECHATPAY_TIMEOUT' : 'WECHATPAY_UNREACHABLE', message, requestId ? { requestId } : undefined);
  }
}

/** The downloaded bill does not match the hash WeChat announced. */
/** An encrypted bill part that does not open: its encrypt_key is not for our key, or the part was tampered with (GCM tag). */
export class WechatPayBillDecryptError extends AppError {
  constructor(message: string) {
    super(HttpStatus.BAD_GATEWAY, 'WECHATPAY_BILL_DECRYPT_FAILED', message);
  }
}

export class WechatPayBillHashError extends AppError {
  constructor(expected: string, actual: string) {
    super(HttpStatus.BAD_GATEWAY, 'WECHATPAY_BILL_HASH_MISMATCH', `bill hash mismatch: expected ${expected}, got ${actual}`);
  }
}
