import { payEndpointName } from './call-observer';

describe('payEndpointName', () => {
  it.each([
    ['POST', '/v3/pay/transactions/jsapi', 'v3/pay/transactions/jsapi'],
    ['GET', '/v3/pay/transactions/out-trade-no/T20261203000001', 'v3/pay/transactions/out-trade-no'],
    ['POST', '/v3/pay/transactions/out-trade-no/T20261203000001/close', 'v3/pay/transactions/close'],
    ['GET', '/v3/pay/transactions/id/4200001234202612030000000001', 'v3/pay/transactions/id'],
    ['POST', '/v3/refund/domestic/refunds', 'v3/refund/domestic/refunds'],
    ['GET', '/v3/refund/domestic/refunds/R20261203000001', 'v3/refund/domestic/refunds/query'],
    ['GET', '/sandbox/v3/certificates', 'v3/certificates'],
    ['GET', '/v3/billdownload/file', 'v3/billdownload/file'],
  ])('%s %s → %s', (method, path, name) => expect(payEndpointName(method, path)).toBe(name));

  it('never lets a number of an unknown route become a label', () => {
    expect(payEndpointName('GET', '/v3/unknown/12345678/x')).toBe('v3/unknown/:id');
  });
});
