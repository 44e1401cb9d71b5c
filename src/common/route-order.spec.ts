import { promoteRoutes } from './route-order';

const route = (path: string) => ({ route: { path }, name: path });
const middleware = (name: string): { name: string; route?: { path: string } } => ({ name });
const names = (stack: Array<{ name: string }>) => stack.map((layer) => layer.name);

describe('promoteRoutes', () => {
  it('moves the hot routes ahead of routes under other literal first segments, keeping their own order', () => {
    const stack = [middleware('json'), route('/health'), route('/admin/orders/:no'), route('/sandbox/v3/pay'), route('/orders'), route('/orders/:no'), route('/admin/x'), route('/orders/:no/pay'), middleware('404')];
    expect(promoteRoutes(stack, ['orders'])).toBe(3);
    expect(names(stack)).toEqual(['json', '/orders', '/orders/:no', '/orders/:no/pay', '/health', '/admin/orders/:no', '/sandbox/v3/pay', '/admin/x', '404']);
  });

  it('never moves past middleware or a route with a parameter or wildcard first segment', () => {
    for (const blocker of [middleware('static'), route('/:page'), route('/{*path}'), route('/'), route('*')]) {
      const stack = [route('/health'), blocker, route('/admin'), route('/orders/:no')];
      promoteRoutes(stack, ['orders']);
      expect(names(stack)).toEqual(['/health', blocker.name, '/orders/:no', '/admin']);
    }
  });

  it('matches the segment case-insensitively, as Express routes', () => {
    const stack = [route('/health'), route('/ORDERS/legacy'), route('/admin'), route('/orders/:no')];
    promoteRoutes(stack, ['orders']);
    expect(names(stack)).toEqual(['/ORDERS/legacy', '/orders/:no', '/health', '/admin']);
  });

  it('is idempotent', () => {
    const stack = [middleware('json'), route('/health'), route('/orders')];
    promoteRoutes(stack, ['orders']);
    expect(promoteRoutes(stack, ['orders'])).toBe(0);
    expect(names(stack)).toEqual(['json', '/orders', '/health']);
  });
});
