/** What this module reads of an Express 5 router layer (router@2: `route` for app.get/post/…, else middleware). */
interface RouterLayer {
  route?: { path: unknown };
}

/** The first segment of a route path when it is a literal (`/admin/orders/:no` → `admin`), else undefined. */
function literalFirstSegment(path: unknown): string | undefined {
  if (typeof path !== 'string' || !path.startsWith('/')) return undefined;
  const end = path.indexOf('/', 1);
  const first = end < 0 ? path.slice(1) : path.slice(1, end);
  // Express routes case-insensitively: compare lower-cased.
  return first !== '' && /^[A-Za-z0-9._~-]+$/.test(first) ? first.toLowerCase() : undefined;
}

/**
 * Express matches a request against every layer in registration order, so a shopper's poll of
 * GET /orders/:no first tries each of the ~110 admin, sandbox, auth and notify routes that Nest
 * registered before the orders controller. This moves the routes whose path starts with one of `hot`
 * (e.g. `orders`) ahead of the routes before them — but only past route layers whose first path segment
 * is another literal, which can never match a request for the moved path, and never past any middleware
 * or a route with a parameter or wildcard first — so which handler answers any request is unchanged.
 * Relative order among the moved routes is kept. Answers how many layers moved.
 */
export function promoteRoutes(stack: RouterLayer[], hot: readonly string[]): number {
  const isHot = (layer: RouterLayer) => layer.route !== undefined && hot.includes(literalFirstSegment(layer.route.path) ?? '');
  let moved = 0;
  for (let i = 0; i < stack.length; i++) {
    if (!isHot(stack[i])) continue;
    const segment = literalFirstSegment(stack[i].route!.path);
    let to = i;
    while (to > 0) {
      const before = stack[to - 1];
      if (!before.route || isHot(before)) break;
      const other = literalFirstSegment(before.route.path);
      if (other === undefined || other === segment) break;
      to--;
    }
    if (to < i) {
      const [layer] = stack.splice(i, 1);
      stack.splice(to, 0, layer);
      moved++;
    }
  }
  return moved;
}
