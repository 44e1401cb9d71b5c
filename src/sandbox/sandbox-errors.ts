/** A Pay APIv3 error as WeChat answers it: HTTP status + `{ code, message, detail? }`. */
export class SandboxPayError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly detail?: unknown,
  ) {
    super(message);
  }
}

/** An official-account error: HTTP 200 with `{ errcode, errmsg }` (errmsg carries a trace suffix like WeChat's). */
export class SandboxMpError extends Error {
  constructor(
    readonly errcode: number,
    readonly errmsg: string,
  ) {
    super(errmsg);
  }
}

/** A refused control-API request: answered with `status` and a plain message. */
export class SandboxControlError extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

export const payError = {
  param: (message: string, field?: string, value?: unknown) =>
    new SandboxPayError(400, 'PARAM_ERROR', message, field ? { field, value, issue: message, location: 'body' } : undefined),
  invalid: (message: string) => new SandboxPayError(400, 'INVALID_REQUEST', message),
  notFound: (message = '订单不存在') => new SandboxPayError(404, 'ORDER_NOT_EXIST', message),
  resourceNotFound: (message: string) => new SandboxPayError(404, 'RESOURCE_NOT_EXISTS', message),
};
