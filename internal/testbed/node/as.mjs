// The bench's OAuth 2.1 authorization server: oidc-provider on 127.0.0.1, configured by the JSON in
// the AUTHKEEPER_AS_CONFIG environment variable (or the first argument):
//
//   issuer               "http://127.0.0.1:PORT[/path]" — the port is the one listened on
//   jwks                 {keys: [...]} private signing keys (an RS256 key is required)
//   accessTokenTTL       seconds; refreshTokenTTL seconds
//   opaque               opaque access tokens instead of JWTs
//   noRotation           refresh tokens are not rotated
//   scopes               the resource scopes, e.g. ["mcp:read", "mcp:write"]
//   deviceInterval       seconds, added as `interval` to device authorization responses (optional)
//   introspectionClient  {id, secret} of the static confidential client for resource servers
//
// It prints "READY <issuer>" when listening. Lines on stdin control it: "down N" closes the listener
// (connections are refused; state is kept) and prints "DOWN N"; "up N" listens again and prints "UP N".
// State lives in memory only: a new process forgets every client, grant and token.
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';

import express from 'express';

import { newHooks } from './as-hooks.mjs';
import { newProvider } from './as-provider.mjs';

const cfg = JSON.parse(process.env.AUTHKEEPER_AS_CONFIG ?? process.argv[2] ?? '{}');
const issuer = new URL(cfg.issuer);
const prefix = issuer.pathname.replace(/\/$/, ''); // "" or e.g. "/tenant1"

const hooks = newHooks(prefix);
const provider = newProvider(cfg, hooks.record);
const oidc = provider.callback();

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
if (prefix) {
  // RFC 8414 §3.1 inserts the issuer's path after the well-known segment; MCP clients also try the
  // same for OpenID discovery. oidc-provider only serves <issuer>/.well-known/..., so map these.
  for (const wk of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
    app.get(`${wk}${prefix}`, (req, res) => {
      req.url = wk;
      req.originalUrl = `${prefix}${wk}`; // oidc-provider derives its mount path from originalUrl
      oidc(req, res);
    });
  }
  app.use(prefix, (req, res) => oidc(req, res));
} else {
  app.use((req, res) => oidc(req, res));
}

const server = createServer(app);
const port = Number(issuer.port);

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
