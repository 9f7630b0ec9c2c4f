// Provider profiles of the bench's authorization server: each one reproduces, on top of oidc-provider,
// the documented behaviour of a hosted authorization server that MCP servers use and that authkeeper
// must handle (see /work/shared/PROVIDERS.md for the sources). The profile is cfg.profile:
//
//   ""           the plain bench AS
//   "entra"      Microsoft Entra ID v2 (Azure DevOps, Dataverse, Fabric, company MCP servers)
//   "atlassian"  Atlassian Rovo
//   "slack"      Slack
//   "github"     a GitHub OAuth app (api.githubcopilot.com/mcp)
//   "auth0"      Auth0, and Okta custom authorization servers
//   "legacy"     an AS behind a 2025-03-26 MCP server, at the default endpoint paths
//   "cimd"       oidc-provider with OAuth Client ID Metadata Documents
//
// A profile acts at these places, each optional:
//   mounts      extra path prefixes the provider is served under, besides the issuer's path
//   wellKnown   extra locations of a mount's metadata (path -> mount name)
//   resourceScopes         scopes every resource server accepts besides cfg.scopes
//   keepUsedRefreshTokens  a rotated refresh token stays valid (no reuse detection)
//   configure   edits oidc-provider's configuration before the provider is built
//   request     express middleware run after the test hooks and before the provider: request quirks
//   response    koa middleware run around every provider request, after it: response quirks
import { randomUUID } from 'node:crypto';

import express from 'express';

const WELL_KNOWN = ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration'];

// formOf returns the urlencoded body the test hooks read into req.body (a Buffer), or an empty one.
function formOf(req) {
  return new URLSearchParams(Buffer.isBuffer(req.body) ? req.body.toString() : '');
}

function setForm(req, form) {
  req.body = Buffer.from(form.toString());
}

// queryOf returns the parsed URL of an express request (before any mount strips its path).
function queryOf(req) {
  return new URL(req.url, 'http://bench.invalid');
}

// paths returns route's path under every mount, for express.
function paths(ctx, route) {
  return ctx.mounts.map((m) => `${m.path}${ctx.routes[route]}`);
}

// newProfile returns the profile of cfg. Its request(ctx, provider) receives ctx = {issuer (a URL),
// mounts (every {name, path} the provider is served under, the profile's included), routes, cfg}.
export function newProfile(cfg) {
  const make = {
    '': () => ({}),
    entra,
    atlassian,
    slack,
    github,
    auth0,
    legacy: () => ({}), // only the route paths differ, and the fixture passes those in cfg.routes
    cimd,
  }[cfg.profile ?? ''];
  if (!make) throw new Error(`unknown profile ${cfg.profile}`);
  return { mounts: [], wellKnown: {}, ...make(cfg) };
}

// ---------------------------------------------------------------------------------------------
// Entra ID v2 (login.microsoftonline.com/<tenant>/v2.0).
//
// - The tenant's issuer is <origin>/<tenant-guid>/v2.0. The multi-tenant "organizations" (and
//   "common") metadata, served at <origin>/organizations/v2.0/.well-known/openid-configuration,
//   names the issuer as the template <origin>/{tenantid}/v2.0; its endpoints are
//   /organizations/... ones and issue the same tenant's tokens (iss = the tenant issuer).
// - Metadata: no code_challenge_methods_supported although S256 works (typescript-sdk#832,
//   mcp-remote#217); no registration_endpoint (app registrations are made in the portal); no
//   revocation or introspection endpoint; no authorization_response_iss_parameter_supported, and
//   no `iss` on the callback (Entra does not implement RFC 9207). Entra's auth methods list.
// - `resource` on the authorization request: a redirect to the redirect_uri with
//   error=invalid_target and AADSTS9010010 (after the client and redirect_uri were validated,
//   as Entra shows a page otherwise). On the token request: 400 invalid_target, AADSTS9010010.
// - A refresh without `scope`: 400 invalid_request, AADSTS90014 (v2 requires scope on every
//   refresh; csharp-sdk#730, mcp-remote#357).
// - Scopes api://<app-id>/.default plus offline_access: the app's audience is cfg.resource (Entra
//   sends no `resource`; the app registration decides it), and .default expands to every
//   permission of the app: the JWT's scp (and, for the bench's MCP servers, scope) lists
//   cfg.scopes. Access tokens carry tid and ver "2.0".
// - A refresh token only when offline_access was asked for. Every refresh returns a new refresh
//   token and the used one stays valid ("refresh tokens are not revoked when used"; no reuse
//   detection). Token answers carry ext_expires_in.
// - A dead refresh token (expired, revoked, unknown): 400 invalid_grant with AADSTS700082 (PROVIDERS.md:
//   "dead grant → invalid_grant + AADSTS700082 / 50173").
// - Error bodies carry error_codes, timestamp, trace_id, correlation_id and error_uri, and the
//   description ends with "Trace ID: … Correlation ID: … Timestamp: …".
//
// Not reproduced: endpoint paths stay oidc-provider's (/<tenant>/v2.0/auth, not
// /<tenant>/oauth2/v2.0/authorize) — clients read them from the metadata; the token answer's
// `scope` echoes api://<app-id>/.default where Entra lists the app's permissions; only GET
// authorization requests are checked for `resource`.
function entra(cfg) {
  const { appScope, tenantId } = cfg.entra;
  const issuer = new URL(cfg.issuer);
  const template = `${issuer.origin}/{tenantid}/v2.0`;
  const appScopes = () => cfg.scopes.join(' ');

  // errorBody is an Entra error answer: the OAuth error with Entra's diagnostics.
  function errorBody(error, code, text) {
    const trace = randomUUID();
    const correlation = randomUUID();
    const ts = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
    return {
      error,
      error_description: `AADSTS${code}: ${text} Trace ID: ${trace} Correlation ID: ${correlation} Timestamp: ${ts}`,
      error_codes: [code],
      timestamp: ts,
      trace_id: trace,
      correlation_id: correlation,
      error_uri: `${issuer.origin}/error?code=${code}`,
    };
  }
  const RESOURCE_TEXT = "The resource parameter provided in the request doesn't match with the requested scopes.";
  const deadText = () => {
    const issued = new Date(Date.now() - 90 * 24 * 3600 * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
    return `The refresh token has expired due to inactivity. The token was issued on ${issued} and was inactive for 90.00:00:00.`;
  };
  const SCOPE_TEXT = "The required field 'scope' is missing from the credential. Ensure that you have all the necessary parameters for the login request.";

  return {
    mounts: [{ name: 'organizations', path: '/organizations/v2.0' }],
    resourceScopes: [appScope], // a resource's scopes besides cfg.scopes
    keepUsedRefreshTokens: true,
    configure(options) {
      options.features.registration = { enabled: false };
      // .default asks for "every permission of the app", and the app decides the audience.
      options.features.resourceIndicators.defaultResource = async (ctx, _client, oneOf) => {
        if (oneOf) return oneOf;
        const scopes = String(ctx.oidc.params?.scope ?? '').split(' ');
        return cfg.resource && scopes.includes(appScope) ? cfg.resource : undefined;
      };
      options.issueRefreshToken = async (_ctx, client, source) => (
        client.grantTypeAllowed('refresh_token') && source.scopes.has('offline_access'));
      options.formats = {
        customizers: {
          async jwt(_ctx, _token, jwt) {
            const { payload } = jwt;
            if (String(payload.scope ?? '').split(' ').includes(appScope)) {
              payload.scope = appScopes();
              payload.scp = appScopes();
            }
            payload.tid = tenantId;
            payload.ver = '2.0';
          },
        },
      };
    },
    request(ctx, provider) {
      const router = express.Router();
      router.get(paths(ctx, 'authorization'), async (req, res, next) => {
        const u = queryOf(req);
        const q = u.searchParams;
        if (q.has('resource')) {
          const client = await provider.Client.find(q.get('client_id') ?? '').catch(() => undefined);
          const redirect = q.get('redirect_uri');
          if (!client || !redirect || !client.redirectUriAllowed(redirect)) {
            next(); // oidc-provider's error page, as Entra shows its own
            return;
          }
          const to = new URL(redirect);
          const body = errorBody('invalid_target', 9010010, RESOURCE_TEXT);
          to.searchParams.set('error', 'invalid_target');
          to.searchParams.set('error_description', body.error_description);
          if (q.has('state')) to.searchParams.set('state', q.get('state'));
          console.error('as: entra: authorization request with resource -> invalid_target (AADSTS9010010)');
          res.redirect(302, to.href);
          return;
        }
        // oidc-provider drops offline_access unless prompt=consent is sent, and Entra issues refresh
        // tokens only for it: ask for consent then, so the grant keeps the scope.
        const scopes = (q.get('scope') ?? '').split(' ');
        const prompts = new Set((q.get('prompt') ?? '').split(' ').filter(Boolean));
        if (scopes.includes('offline_access') && !prompts.has('none') && !prompts.has('consent')) {
          prompts.add('consent');
          q.set('prompt', [...prompts].join(' '));
          req.url = `${u.pathname}?${q}`;
        }
        next();
      });
      router.post(paths(ctx, 'token'), (req, res, next) => {
        const form = formOf(req);
        if (form.has('resource')) {
          console.error('as: entra: token request with resource -> invalid_target (AADSTS9010010)');
          res.status(400).json(errorBody('invalid_target', 9010010, RESOURCE_TEXT));
          return;
        }
        if (form.get('grant_type') === 'refresh_token' && !form.get('scope')) {
          console.error('as: entra: refresh without scope -> invalid_request (AADSTS90014)');
          res.status(400).json(errorBody('invalid_request', 90014, SCOPE_TEXT));
          return;
        }
        next();
      });
      return router;
    },
    response(ctx) {
      const route = ctx.oidc?.route;
      if (route === 'discovery' && ctx.status === 200 && ctx.body) {
        const b = ctx.body;
        for (const k of ['code_challenge_methods_supported', 'registration_endpoint', 'revocation_endpoint',
          'introspection_endpoint', 'authorization_response_iss_parameter_supported']) delete b[k];
        b.token_endpoint_auth_methods_supported = ['client_secret_post', 'private_key_jwt', 'client_secret_basic'];
        b.scopes_supported = ['openid', 'profile', 'email', 'offline_access'];
        b.cloud_instance_name = 'microsoftonline.com';
        b.tenant_region_scope = null;
        if (ctx.req.akMount === 'organizations') b.issuer = template;
      }
      if ((route === 'authorization' || route === 'resume') && ctx.response.get('Location')) {
        const to = new URL(ctx.response.get('Location'), 'http://bench.invalid');
        if (to.searchParams.has('iss') && (to.searchParams.has('code') || to.searchParams.has('error'))) {
          to.searchParams.delete('iss');
          ctx.redirect(to.href);
        }
      }
      if (route === 'token' && ctx.status === 200 && ctx.body?.expires_in) {
        ctx.body.ext_expires_in = ctx.body.expires_in;
      }
      if (route === 'token' && ctx.status === 400 && ctx.body?.error === 'invalid_grant'
        && ctx.oidc.params?.grant_type === 'refresh_token') {
        ctx.body = errorBody('invalid_grant', 700082, deadText());
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Atlassian Rovo (mcp.atlassian.com).
//
// - The protected-resource metadata advertises one issuer (here the server root) and the metadata
//   served at that issuer's well-known URLs names another (cfg.issuer, e.g. <origin>/atl), as
//   Atlassian's names https://auth.atlassian.com (atlassian-mcp-server#205, copilot-cli#4480).
// - DCR; rotating refresh tokens with reuse detection (the bench's default).
// - A refresh with a dead refresh token: 403 {"error":"invalid_grant","error_description":"Unknown or
//   invalid refresh token."}, as Atlassian's OAuth 2.0 (3LO) documentation gives it.
function atlassian() {
  return {
    wellKnown: Object.fromEntries(WELL_KNOWN.map((wk) => [wk, 'issuer'])),
    response(ctx) {
      if (ctx.oidc?.route === 'token' && ctx.status === 400 && ctx.body?.error === 'invalid_grant'
        && ctx.oidc.params?.grant_type === 'refresh_token') {
        ctx.status = 403;
        ctx.body = { error: 'invalid_grant', error_description: 'Unknown or invalid refresh token.' };
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Slack (mcp.slack.com).
//
// - Issuer mismatch like Atlassian: Slack's protected-resource metadata advertises
//   https://mcp.slack.com, whose metadata names https://slack.com (claude-code#59058).
// - A pre-registered Slack app (no DCR), confidential; no RFC 7009 revocation endpoint.
// - Every token-endpoint answer carries Slack's "ok", and errors come with HTTP 200:
//   {"ok":false,"error":"invalid_grant",…}. The error codes stay OAuth's.
function slack() {
  return {
    wellKnown: Object.fromEntries(WELL_KNOWN.map((wk) => [wk, 'issuer'])),
    configure(options) {
      options.features.registration = { enabled: false };
    },
    response(ctx) {
      const route = ctx.oidc?.route;
      if (route === 'discovery' && ctx.status === 200 && ctx.body) {
        delete ctx.body.revocation_endpoint;
      }
      if (route === 'token' && ctx.body && typeof ctx.body === 'object') {
        const ok = ctx.status === 200;
        if (!ok) {
          console.error(`as: slack: token error ${ctx.status} answered with 200`);
          ctx.remove('WWW-Authenticate');
        }
        ctx.body = { ok, ...ctx.body };
        ctx.status = 200;
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// GitHub OAuth apps (github.com/login/oauth, behind api.githubcopilot.com/mcp).
//
// - Issuer <origin>/login/oauth, whose metadata is served only at the RFC 8414 path-inserted URL
//   /.well-known/oauth-authorization-server/login/oauth (github-mcp-server#1404): the OpenID and
//   appended forms answer 404.
// - No DCR (an OAuth app registered on github.com) and no RFC 7009 revocation endpoint;
//   token_endpoint_auth_methods_supported is ["client_secret_post"], and a token request with
//   Basic credentials is refused (200, incorrect_client_credentials).
// - Token answers have no expires_in and no refresh_token (OAuth-app tokens do not expire), an
//   opaque access token that the AS keeps for years (so introspection keeps accepting it),
//   token_type "bearer", and `scope` joined by commas ("repo,gist").
// - Errors come with HTTP 200 and GitHub's codes: invalid_grant on a code exchange is
//   bad_verification_code, invalid_client is incorrect_client_credentials (github-mcp-server#2901).
// - Without "Accept: application/json" the answer is form-encoded, as GitHub's is.
// - GitHub ignores `resource`: its tokens work at every GitHub API. The bench's MCP servers want
//   an audience, so a request without `resource` gets one for cfg.resource.
function github(cfg) {
  const issuer = new URL(cfg.issuer);
  const prefix = issuer.pathname.replace(/\/$/, '');
  const CODES = {
    invalid_grant: ['bad_verification_code', 'The code passed is incorrect or expired.'],
    invalid_client: ['incorrect_client_credentials', 'The client_id and/or client_secret passed are incorrect.'],
  };
  // errorBody is GitHub's answer for an OAuth error.
  const errorBody = (error, description) => {
    const [code, text] = CODES[error] ?? [error, description];
    return {
      error: code,
      error_description: text,
      error_uri: `https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#${code.replaceAll('_', '-')}`,
    };
  };
  // encode returns body as GitHub sends it: JSON when asked for, form-encoded otherwise.
  const encode = (accept, body) => (/application\/json/.test(accept ?? '')
    ? { type: 'application/json', text: JSON.stringify(body) }
    : { type: 'application/x-www-form-urlencoded', text: new URLSearchParams(body).toString() });

  return {
    configure(options) {
      options.features.registration = { enabled: false };
      options.issueRefreshToken = async () => false;
      options.features.resourceIndicators.defaultResource = async (_ctx, _client, oneOf) => oneOf ?? (cfg.resource || undefined);
    },
    request(ctx) {
      const router = express.Router();
      router.get(/\/\.well-known\//, (req, res, next) => {
        if (req.path === `${WELL_KNOWN[0]}${prefix}`) {
          next();
          return;
        }
        res.status(404).type('text/plain').send('Not Found');
      });
      // oidc-provider takes Basic for a client_secret_post client; GitHub's metadata lists
      // client_secret_post only, and the bench holds clients to it.
      router.post(paths(ctx, 'token'), (req, res, next) => {
        if (!/^basic /i.test(req.headers.authorization ?? '')) {
          next();
          return;
        }
        console.error('as: github: client_secret_basic refused with 200 incorrect_client_credentials');
        const { type, text } = encode(req.headers.accept, errorBody('invalid_client'));
        res.status(200).type(type).send(text);
      });
      return router;
    },
    response(ctx) {
      const route = ctx.oidc?.route;
      if (route === 'discovery' && ctx.status === 200 && ctx.body) {
        delete ctx.body.revocation_endpoint;
        ctx.body.token_endpoint_auth_methods_supported = ['client_secret_post'];
      }
      if (route !== 'token' || !ctx.body || typeof ctx.body !== 'object') return;
      let body = { ...ctx.body };
      if (ctx.status === 200) {
        delete body.expires_in;
        delete body.refresh_token;
        if (body.scope) body.scope = body.scope.split(' ').join(',');
        body.token_type = 'bearer';
      } else {
        console.error(`as: github: token error ${ctx.status} ${body.error} answered with 200`);
        body = errorBody(body.error, body.error_description);
        ctx.status = 200;
        ctx.remove('WWW-Authenticate');
      }
      const { type, text } = encode(ctx.get('Accept'), body);
      ctx.type = type;
      ctx.body = text;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Auth0 (and Okta custom authorization servers): an API's tokens are asked for with `audience`
// (modelcontextprotocol#695). `resource` is ignored; `audience` on /auth, /token and /device/auth
// picks the API, and the access token is then a JWT for it. Without it the token is opaque and
// good for /userinfo only — an MCP server refuses it. DCR is open (a tenant setting).
function auth0() {
  const swap = (params) => {
    params.delete('resource');
    if (params.has('audience')) {
      params.set('resource', params.get('audience'));
      params.delete('audience');
    }
  };
  return {
    request(ctx) {
      const router = express.Router();
      router.get(paths(ctx, 'authorization'), (req, _res, next) => {
        const u = queryOf(req);
        swap(u.searchParams);
        req.url = `${u.pathname}?${u.searchParams}`;
        next();
      });
      router.post(paths(ctx, 'device_authorization'), express.raw({ type: () => true, limit: '56kb' }));
      router.post([...paths(ctx, 'token'), ...paths(ctx, 'device_authorization')], (req, _res, next) => {
        const form = formOf(req);
        swap(form);
        setForm(req, form);
        next();
      });
      return router;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// oidc-provider's own Client ID Metadata Document support (draft-ietf-oauth-client-id-metadata-
// document-00, which oidc-provider 9.13 acknowledges as 'draft-02'): a client_id that is an https
// URL is fetched, validated (its client_id must equal the URL; no shared secrets) and cached. The
// fixture serves documents from a loopback https host whose CA node trusts (NODE_EXTRA_CA_CERTS);
// oidc-provider's fetch refuses special-use addresses, so that one origin goes through node's
// plain fetch instead.
function cimd(cfg) {
  const origin = new URL(cfg.cimdOrigin).origin;
  return {
    configure(options) {
      options.features.clientIdMetadataDocument = { enabled: true, ack: 'draft-02' };
      options.fetch = (url, opts) => {
        if (new URL(url).origin === origin) {
          const { dispatcher: _ssrfGuard, ...rest } = opts;
          return globalThis.fetch(url, rest);
        }
        return globalThis.fetch(url, opts);
      };
    },
  };
}
