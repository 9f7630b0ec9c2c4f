// The bench's OAuth 2.1 authorization server: oidc-provider on 127.0.0.1, configured by the JSON in
// the AUTHKEEPER_AS_CONFIG environment variable (or the first argument):
//
//   issuer               "http://HOST:PORT[/path]"
//   listenPort           the port to listen on; default the issuer's. When it differs, the issuer
//                        names a front that reverse-proxies to this server, and every URL the
//                        server generates names the issuer's host whatever Host it is sent
//   profile              a provider profile, see as-profiles.mjs ("" for none)
//   routes               oidc-provider's route paths, e.g. {authorization: "/auth", token: "/token"}
//   jwks                 {keys: [...]} private signing keys (an RS256 key is required)
//   accessTokenTTL       seconds; refreshTokenTTL seconds
//   opaque               opaque access tokens instead of JWTs
//   noRotation           refresh tokens are not rotated
//   scopes               the resource scopes, e.g. ["mcp:read", "mcp:write"]
//   deviceInterval       seconds, added as `interval` to device authorization responses (optional)
//   introspectionClient  {id, secret} of the static confidential client for resource servers
//   staticClients        more pre-registered clients, as oidc-provider client metadata
//   resource             the resource profiles bind tokens to without an RFC 8707 `resource`
//   entra                {tenantId, appScope} of the entra profile
//   cimdOrigin           the https origin serving client ID metadata documents (cimd profile)
//
// It prints "READY <issuer>" when listening. Lines on stdin control it: "down N" closes the listener
// (connections are refused; state is kept) and prints "DOWN N"; "up N" listens again and prints "UP N".
// State lives in memory only: a new process forgets every client, grant and token.
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';

import express from 'express';

import { newHooks } from './as-hooks.mjs';
import { newProfile } from './as-profiles.mjs';
import { newProvider } from './as-provider.mjs';

const WELL_KNOWN = ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration'];

const cfg = JSON.parse(process.env.AUTHKEEPER_AS_CONFIG ?? process.argv[2] ?? '{}');
const issuer = new URL(cfg.issuer);
const profile = newProfile(cfg);
// The path prefixes the provider is served under: the issuer's, and a profile's aliases. Longest
// first, so that the hooks match the most specific one.
const mounts = [{ name: 'issuer', path: issuer.pathname.replace(/\/$/, '') }, ...profile.mounts]
  .sort((a, b) => b.path.length - a.path.length);

const hooks = newHooks(mounts.map((m) => m.path), cfg.routes, cfg);
const provider = newProvider(cfg, profile, hooks.record);
const oidc = provider.callback();

// serve hands a request to the provider as mount's. oidc-provider derives the URLs it generates
// from the request's originalUrl minus its url (the mount path), so a metadata document served at
// another location still names the mount's endpoints.
function serve(mount, wk) {
  return (req, res) => {
    req.akMount = mount.name; // read by profiles' response middleware
    if (wk) {
      req.url = wk;
      req.originalUrl = `${mount.path}${wk}`;
    }
    oidc(req, res);
  };
}

const app = express();
app.disable('x-powered-by');
app.use((req, res, next) => {
  const start = Date.now();
  const { path } = req; // before mounting rewrites req.url
  res.on('finish', () => {
    // The path only: query strings and bodies may carry codes or tokens.
    const gt = req.grantType ? ` grant_type=${req.grantType}` : '';
    console.error(`as: ${req.method} ${path}${gt} -> ${res.statusCode} (${Date.now() - start}ms)`);
  });
  next();
});
app.use(hooks.router);
if (cfg.listenPort && String(cfg.listenPort) !== issuer.port) {
  // Behind a front on the issuer's origin: generate every URL under it, whatever Host was sent.
  app.use((req, _res, next) => {
    req.headers.host = issuer.host;
    next();
  });
}
if (profile.request) {
  app.use(profile.request({ issuer, mounts, routes: cfg.routes, cfg }, provider));
}
for (const [location, name] of Object.entries(profile.wellKnown)) {
  const mount = mounts.find((m) => m.name === name);
  app.get(location, serve(mount, WELL_KNOWN.find((wk) => location.startsWith(wk))));
}
for (const mount of mounts) {
  if (!mount.path) {
    app.use(serve(mount));
    continue;
  }
  // RFC 8414 §3.1 inserts the issuer's path after the well-known segment; MCP clients also try the
  // same for OpenID discovery. oidc-provider only serves <issuer>/.well-known/..., so map these.
  for (const wk of WELL_KNOWN) app.get(`${wk}${mount.path}`, serve(mount, wk));
  app.use(mount.path, serve(mount));
}

const server = createServer(app);
const port = Number(cfg.listenPort || issuer.port);

function listen(line) {
  server.listen(port, '127.0.0.1', () => console.log(line));
}

server.on('error', (err) => {
  console.error(`as: listen: ${err.message}`);
  process.exit(1);
});

listen(`READY ${cfg.issuer}`);

createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, n] = line.trim().split(/\s+/);
  if (cmd === 'down') {
    server.close(() => console.log(`DOWN ${n}`));
    server.closeAllConnections();
  } else if (cmd === 'up') {
    listen(`UP ${n}`);
  }
}).on('close', () => process.exit(0)); // the fixture went away

process.on('SIGTERM', () => process.exit(0));
