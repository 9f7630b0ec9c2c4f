// The bench's TypeScript MCP server: the official TS SDK's StreamableHTTPServerTransport (stateful
// sessions, GET stream, DELETE) behind the SDK's requireBearerAuth, with RFC 9728 metadata from the
// SDK's mcpAuthMetadataRouter. Tokens are verified with jose against the issuer's JWKS, or by RFC 7662
// introspection. Started by testbed.TSMCPServer; configured by the JSON in AK_MCP_CONFIG:
//   {issuer, advertiseAS, originResource, protectedMethods, toolCallScopes, jsonResponse, requiredScopes,
//    opaque, introspectionClientId, introspectionClientSecret, path}
// (see testbed.MCPServerOptions for what each does).
// Listens on a free 127.0.0.1 port, then prints "READY <mcp url>". GET /_bench/stats (no auth) returns
// the request counters {requests, unauthorized, forbidden} of the MCP endpoint.
// Never logs a token.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as z from 'zod';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { mcpAuthMetadataRouter, getOAuthProtectedResourceMetadataUrl } from '@modelcontextprotocol/sdk/server/auth/router.js';
import { InvalidTokenError, ServerError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';

const cfg = JSON.parse(process.env.AK_MCP_CONFIG ?? '{}');
const path = cfg.path || '/mcp';
const requiredScopes = cfg.requiredScopes ?? [];
const toolCallScopes = cfg.toolCallScopes ?? [];
const protectedMethods = cfg.protectedMethods ?? [];

// Authorization server metadata, in the order the MCP specification gives (RFC 8414, then OIDC).
async function discover(issuer) {
  const u = new URL(issuer);
  const p = u.pathname.replace(/\/$/, '');
  const candidates = p
    ? [`/.well-known/oauth-authorization-server${p}`, `/.well-known/openid-configuration${p}`, `${p}/.well-known/openid-configuration`]
    : ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration'];
  for (const c of candidates) {
    const res = await fetch(new URL(c, u.origin));
    if (res.status >= 400 && res.status < 500) continue;
    if (!res.ok) throw new Error(`GET ${c}: ${res.status}`);
    const meta = await res.json();
    if (meta.issuer !== issuer) throw new Error(`metadata issuer ${meta.issuer} is not ${issuer}`);
    return meta;
  }
  throw new Error(`no authorization server metadata for ${issuer}`);
}

function authInfo(token, resource, { sub, client_id, scope, exp, aud }) {
  const auds = Array.isArray(aud) ? aud : [aud];
  return {
    token,
    clientId: client_id,
    scopes: scope ? scope.split(' ') : [],
    expiresAt: exp,
    // requireBearerAuth compares this with expectedResource and answers 401 on a mismatch.
    resource: auds.includes(resource) ? new URL(resource) : undefined,
    extra: { sub },
  };
}

function jwtVerifier(meta, resource) {
  const jwks = createRemoteJWKSet(new URL(meta.jwks_uri)); // refetches on an unknown kid
  return {
    async verifyAccessToken(token) {
      try {
        // RFC 9068 §4: typ must be at+jwt, so an ID token is never taken for an access token.
        const { payload } = await jwtVerify(token, jwks, {
          issuer: meta.issuer, audience: resource, typ: 'at+jwt', requiredClaims: ['exp'],
        });
        return authInfo(token, resource, payload);
      } catch (err) {
        if (err?.code === 'ERR_JWKS_TIMEOUT' || !err?.code?.startsWith?.('ERR_J')) {
          throw new ServerError(`jwks: ${err.message}`);
        }
        // The SDK puts this message unescaped into the quoted error_description of WWW-Authenticate,
        // and jose's messages quote claim names.
        throw new InvalidTokenError(err.message.replaceAll('"', "'"));
      }
    },
  };
}

function introspectionVerifier(meta, resource) {
  const basic = Buffer.from(
    `${encodeURIComponent(cfg.introspectionClientId)}:${encodeURIComponent(cfg.introspectionClientSecret)}`,
  ).toString('base64');
  return {
    async verifyAccessToken(token) {
      const res = await fetch(meta.introspection_endpoint, {
        method: 'POST',
        headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
      });
      if (!res.ok) throw new ServerError(`introspection: ${res.status}`);
      const r = await res.json();
      if (!r.active) throw new InvalidTokenError('token is not active');
      if (r.iss && r.iss !== meta.issuer) throw new InvalidTokenError(`issuer ${r.iss} is not ${meta.issuer}`);
      return authInfo(token, resource, r);
    },
  };
}

const text = (t) => ({ content: [{ type: 'text', text: t }] });

// The bench tools; names, arguments and results match the Go server's (testbed/mcpgo.go).
function newServer() {
  const s = new McpServer({ name: 'authkeeper-bench-ts', version: '1' });
  s.registerTool('echo', { description: 'Returns text.', inputSchema: { text: z.string() } },
    async ({ text: t }) => text(t));
  s.registerTool('add', { description: 'Returns a+b.', inputSchema: { a: z.number(), b: z.number() } },
    async ({ a, b }) => text(String(a + b)));
  s.registerTool('whoami', { description: "Describes the caller's token, never the token itself." },
    async ({ authInfo: ai }) => text(JSON.stringify({
      subject: ai.extra?.sub ?? '', client_id: ai.clientId ?? '', scopes: ai.scopes, expires_at: ai.expiresAt,
    })));
  s.registerTool('countdown', {
    description: 'Sends n notifications interval_ms apart.',
    inputSchema: { n: z.number().int(), interval_ms: z.number().int() },
  }, async ({ n, interval_ms }, extra) => {
    const progressToken = extra._meta?.progressToken;
    for (let i = 1; i <= n; i++) {
      if (i > 1) await sleep(interval_ms, undefined, { signal: extra.signal });
      if (progressToken === undefined) continue; // progress needs a token (see mcpgo.go)
      await extra.sendNotification({
        method: 'notifications/progress',
        params: { progressToken, progress: i, total: n, message: `countdown ${i}/${n}` },
      });
    }
    return text('done');
  });
  s.registerTool('slow', { description: 'Returns after ms milliseconds.', inputSchema: { ms: z.number().int() } },
    async ({ ms }, extra) => {
      await sleep(ms, undefined, { signal: extra.signal });
      return text(`slept ${ms}ms`);
    });
  return s;
}

const meta = await discover(cfg.issuer);
const httpServer = http.createServer();
await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
const origin = `http://127.0.0.1:${httpServer.address().port}`;
const url = `${origin}${path}`;
// The protected resource: the endpoint, or the bare origin (as Slack advertises it).
const resource = cfg.originResource ? origin : url;
const resourceMetadataUrl = getOAuthProtectedResourceMetadataUrl(new URL(resource));
const scopesSupported = [...new Set([...requiredScopes, ...toolCallScopes])];

const stats = { requests: 0, unauthorized: 0, forbidden: 0 };
const sessions = new Map(); // session id → transport

const app = createMcpExpressApp({ host: '127.0.0.1' });
app.get('/_bench/stats', (_req, res) => res.json(stats));
// Ends every session, as a server that restarts or expires them does: the next request with an old
// session id gets the SDK's 404.
app.post('/_bench/end-sessions', async (_req, res) => {
  const all = [...sessions.values()];
  sessions.clear();
  await Promise.all(all.map((t) => t.close()));
  res.json({ ended: all.length });
});
if (cfg.originResource || (cfg.advertiseAS && cfg.advertiseAS !== meta.issuer)) {
  // The SDK's router can name neither another authorization server than the issuer's nor a resource
  // without the trailing slash URL.href adds to an origin: serve this metadata first, in its place.
  // With the origin as resource, the path-inserted location names nothing (the router's prefix match
  // would answer there).
  if (cfg.originResource) app.use(`/.well-known/oauth-protected-resource${path}`, (_req, res) => res.sendStatus(404));
  app.get(new URL(resourceMetadataUrl).pathname, (_req, res) => res.json({
    resource,
    authorization_servers: [cfg.advertiseAS || meta.issuer],
    scopes_supported: scopesSupported.length ? scopesSupported : undefined,
    bearer_methods_supported: ['header'],
  }));
}
app.use(mcpAuthMetadataRouter({
  oauthMetadata: meta,
  resourceServerUrl: new URL(resource),
  scopesSupported: scopesSupported.length ? scopesSupported : undefined,
}));
app.use(path, (req, res, next) => {
  stats.requests++;
  res.on('finish', () => {
    if (res.statusCode === 401) stats.unauthorized++;
    if (res.statusCode === 403) stats.forbidden++;
  });
  next();
});
const verifier = cfg.opaque ? introspectionVerifier(meta, resource) : jwtVerifier(meta, resource);
const bearer = (scopes) => requireBearerAuth({
  verifier, requiredScopes: scopes, resourceMetadataUrl, expectedResource: new URL(resource),
});
const protect = bearer(requiredScopes);
const protectToolCall = toolCallScopes.length ? bearer(scopesSupported) : null;
app.use(path, (req, res, next) => {
  // Route by the JSON-RPC methods of the (already parsed) body, as the Go server's mcpGate does.
  const msgs = req.method === 'POST' ? [req.body].flat() : [];
  const methods = msgs.map((m) => m?.method).filter((m) => typeof m === 'string');
  if (protectToolCall && methods.includes('tools/call')) return protectToolCall(req, res, next);
  if (!protectedMethods.length || req.headers.authorization
    || methods.some((m) => protectedMethods.includes(m))) return protect(req, res, next);
  return next();
});

const rpcError = (res, status, message) =>
  res.status(status).json({ jsonrpc: '2.0', error: { code: -32000, message }, id: null });

app.post(path, async (req, res) => {
  const sid = req.headers['mcp-session-id'];
  let transport = sid ? sessions.get(sid) : undefined;
  if (sid && !transport) return rpcError(res, 404, 'Session not found');
  if (!transport) {
    if (!isInitializeRequest(req.body)) return rpcError(res, 400, 'Bad Request: no session id');
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: randomUUID,
      enableJsonResponse: !!cfg.jsonResponse,
      onsessioninitialized: (id) => sessions.set(id, transport),
    });
    transport.onclose = () => transport.sessionId && sessions.delete(transport.sessionId);
    await newServer().connect(transport);
  }
  await transport.handleRequest(req, res, req.body);
});

// GET opens the standalone SSE stream; DELETE ends the session (the transport answers both).
const sessionRequest = async (req, res) => {
  const sid = req.headers['mcp-session-id'];
  if (!sid) return rpcError(res, 400, 'Bad Request: no session id');
  const transport = sessions.get(sid);
  if (!transport) return rpcError(res, 404, 'Session not found');
  await transport.handleRequest(req, res);
};
app.get(path, sessionRequest);
app.delete(path, sessionRequest);

httpServer.on('request', app);
console.log(`READY ${url}`);

process.on('SIGTERM', async () => {
  for (const t of sessions.values()) await t.close().catch(() => {});
  httpServer.closeAllConnections();
  httpServer.close(() => process.exit(0));
});
