// Test hooks of the bench's authorization server, served under /__testbed/ at the server root:
//
//   POST   /__testbed/faults    {endpoint, status, retryAfter, body, contentType, delayMs, count}
//   DELETE /__testbed/faults    clears every pending fault
//   GET    /__testbed/stats     {tokenRequests: {<grant_type>: n}, tokenRequestTimes: {<grant_type>: [ms since
//                                the epoch, on arrival]}, requests: {<endpoint>: n}, events: [...]}
//   POST   /__testbed/resource  {resource}: sets cfg.resource, the resource profiles bind tokens to
//
// A fault applies to the next `count` requests of an endpoint (default 1, negative = until cleared):
// it waits delayMs, then either answers with `status` (and Retry-After, and `body` or an OAuth error
// JSON) or, without a status, lets the request through. Faulted requests are counted too.
import express from 'express';

// endpointOf names the endpoint a root-relative path addresses — an oidc-provider route name (routes
// maps each to its path) below one of the mounts (the path prefixes the provider is served under),
// or a kind of metadata document — or else returns the path itself.
export function endpointOf(pathname, mounts, routes) {
  if (pathname.includes('/.well-known/oauth-authorization-server')) return 'oauth-authorization-server';
  if (pathname.includes('/.well-known/openid-configuration')) return 'openid-configuration';
  for (const mount of mounts) {
    if (!pathname.startsWith(mount)) continue;
    const rest = pathname.slice(mount.length);
    const name = Object.keys(routes).find((r) => routes[r] === rest);
    if (name) return name;
  }
  return pathname;
}

function defaultError(status) {
  if (status === 429 || status === 503) return 'temporarily_unavailable';
  if (status >= 500) return 'server_error';
  return 'invalid_request';
}

// newHooks returns the state and the express middleware of the hooks. mounts are the path prefixes
// the provider is served under, longest first; routes its route paths; cfg the server's
// configuration, whose `resource` the resource hook sets.
export function newHooks(mounts, routes, cfg) {
  const events = [];
  const tokenRequests = {};
  const tokenRequestTimes = {};
  const requests = {};
  let faults = [];

  const router = express.Router();
  router.use('/__testbed', express.json());
  router.post('/__testbed/faults', (req, res) => {
    const f = { count: 1, delayMs: 0, ...req.body };
    if (typeof f.endpoint !== 'string' || !f.endpoint) {
      res.status(400).json({ error: 'endpoint is required' });
      return;
    }
    faults.push(f);
    console.error(`as: fault armed ${JSON.stringify(f)}`);
    res.status(204).end();
  });
  router.delete('/__testbed/faults', (_req, res) => {
    faults = [];
    res.status(204).end();
  });
  router.get('/__testbed/stats', (_req, res) => {
    res.json({ tokenRequests, tokenRequestTimes, requests, events });
  });
  router.post('/__testbed/resource', (req, res) => {
    cfg.resource = typeof req.body?.resource === 'string' ? req.body.resource : '';
    console.error(`as: resource set to ${cfg.resource || '(none)'}`);
    res.status(204).end();
  });

  // The token endpoint's body is read here, to count grant types even for faulted requests;
  // oidc-provider then parses req.body instead of the stream (it warns once that it does).
  router.post(mounts.map((m) => `${m}${routes.token}`), express.raw({ type: () => true, limit: '56kb' }), (req, _res, next) => {
    const body = Buffer.isBuffer(req.body) ? req.body.toString() : '';
    const gt = new URLSearchParams(body).get('grant_type') ?? '(none)';
    tokenRequests[gt] = (tokenRequests[gt] ?? 0) + 1;
    (tokenRequestTimes[gt] ??= []).push(Date.now());
    req.grantType = gt;
    next();
  });

  router.use(async (req, res, next) => {
    if (req.path.startsWith('/__testbed')) {
      next();
      return;
    }
    const endpoint = endpointOf(req.path, mounts, routes);
    requests[endpoint] = (requests[endpoint] ?? 0) + 1;
    const f = faults.find((x) => x.endpoint === endpoint);
    if (!f) {
      next();
      return;
    }
    if (f.count > 0 && --f.count === 0) faults = faults.filter((x) => x !== f);
    if (f.delayMs > 0) await new Promise((r) => { setTimeout(r, f.delayMs); });
    if (!f.status) {
      next();
      return;
    }
    console.error(`as: fault served ${req.method} ${req.path} -> ${f.status}`);
    if (f.retryAfter) res.set('Retry-After', String(f.retryAfter));
    res.status(f.status).type(f.contentType ?? 'application/json');
    res.send(f.body ?? JSON.stringify({ error: defaultError(f.status), error_description: 'injected fault' }));
  });

  return {
    router,
    record(event) {
      events.push(event);
      console.error(`as: event ${event}`);
    },
  };
}
