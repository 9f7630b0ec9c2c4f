// The oidc-provider configuration of the bench's authorization server. Every choice that differs from
// oidc-provider's defaults is commented with the behaviour authkeeper's tests rely on.
import { randomBytes } from 'node:crypto';

import Provider, { errors } from 'oidc-provider';

import Adapter from './as-adapter.mjs';

const DAY = 24 * 60 * 60;
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

// isLoopbackResource reports whether a resource indicator (RFC 8707) names a server on this machine.
function isLoopbackResource(indicator) {
  const u = URL.parse(indicator);
  return !!u && (u.protocol === 'http:' || u.protocol === 'https:') && LOOPBACK_HOSTS.has(u.hostname);
}

// newProvider builds the provider for cfg (see as.mjs for the fields) and profile (as-profiles.mjs).
// record(event) receives notable events; it never sees token values.
export function newProvider(cfg, profile, record) {
  const resourceScope = [...cfg.scopes, ...(profile.resourceScopes ?? [])].join(' ');
  const atTTL = cfg.accessTokenTTL;
  const rtTTL = cfg.refreshTokenTTL;
  const admin = cfg.introspectionClient;
  Adapter.keepUsedRefreshTokens = !!profile.keepUsedRefreshTokens;

  const options = {
    adapter: Adapter, // in memory: a new process forgets every client, grant and token
    jwks: cfg.jwks, // the fixture's keys, stable across restarts so earlier JWTs still verify
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    routes: cfg.routes, // the fixture's, so that its endpoint URLs and the hooks' names agree
    clients: [{
      // A confidential client for resource servers: introspects any token and may revoke any token.
      client_id: admin.id,
      client_secret: admin.secret,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: [],
      response_types: [],
      redirect_uris: [],
    }, ...(cfg.staticClients ?? [])], // pre-registered clients (AuthServerOptions.StaticClients)
    responseTypes: ['code'], // OAuth 2.1: no implicit or hybrid flows
    pkce: { required: () => true }, // S256 is the only method oidc-provider 9 accepts
    // Refresh tokens whenever the client registered the grant type; the default also asks for the
    // offline_access scope, which oidc-provider drops unless prompt=consent is sent.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    // Refresh tokens outlive the AS browser session (the default ties them to it without offline_access).
    expiresWithSession: async () => false,
    // The default rotates only public clients' tokens (and confidential ones past 70% of their life).
    rotateRefreshToken: () => !cfg.noRotation,
    ttl: {
      AccessToken: atTTL,
      ClientCredentials: atTTL,
      RefreshToken: rtTTL,
      IdToken: 3600,
      DeviceCode: 600,
      Grant: Math.max(rtTTL, atTTL, 365 * DAY),
      Session: 365 * DAY,
      Interaction: 3600,
    },
    features: {
      devInteractions: { enabled: true }, // the login and consent pages the scripted browser fills in
      registration: { enabled: true, initialAccessToken: false }, // open RFC 7591 registration
      deviceFlow: { enabled: true },
      // Machine identities (RFC 6749 §4.4) with a resource indicator get an audience-bound token.
      clientCredentials: { enabled: true },
      revocation: {
        enabled: true,
        allowedPolicy: async (ctx, client, token) => {
          if (client.clientId === admin.id || token.clientId === client.clientId) return true;
          if (client.clientAuthMethod === 'none') return false;
          throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
        },
      },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // A refresh or code exchange without `resource` still yields a token for the granted resource
        // (when there is exactly one), as most real servers do.
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, indicator) => {
          if (!isLoopbackResource(indicator)) {
            throw new errors.InvalidTarget('resource must be an http(s) URL on a loopback host');
          }
          return {
            scope: resourceScope,
            audience: indicator,
            accessTokenTTL: atTTL,
            accessTokenFormat: cfg.opaque ? 'opaque' : 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
  };
  profile.configure?.(options);
  const provider = new Provider(cfg.issuer, options);

  provider.use(async (ctx, next) => {
    await next();
    const route = ctx.oidc?.route;
    if (route === 'discovery' && ctx.status === 200 && ctx.body) {
      // Resource scopes are not OIDC scopes, so oidc-provider would not list them.
      ctx.body.scopes_supported = [...new Set([...ctx.body.scopes_supported, ...cfg.scopes])];
    }
    if (route === 'device_authorization' && ctx.status === 200 && ctx.body && cfg.deviceInterval) {
      ctx.body.interval = cfg.deviceInterval; // oidc-provider omits it, so RFC 8628 clients wait 5 s
    }
    profile.response?.(ctx); // last: a profile's metadata is the provider's, not the bench's
  });

  listen(provider, record);
  return provider;
}

// listen turns provider events into stderr lines and recorded events.
function listen(provider, record) {
  const clientOf = (ctx) => ctx?.oidc?.client?.clientId ?? '-';
  for (const name of [
    'authorization.error', 'grant.error', 'registration_create.error', 'introspection.error',
    'revocation.error', 'device_authorization.error', 'code_verification.error', 'userinfo.error',
    'discovery.error', 'jwks.error', 'pushed_authorization_request.error', 'end_session.error',
  ]) {
    provider.on(name, (ctx, err) => {
      const detail = err.error_detail ? ` (${err.error_detail})` : '';
      console.error(`as: ${name} client=${clientOf(ctx)} ${err.error ?? err.name}: ${err.error_description ?? err.message}${detail}`);
      if (name === 'grant.error' && err.error_detail === 'refresh token already used') {
        record(`refresh_token.reused client=${clientOf(ctx)}`);
      }
    });
  }
  provider.on('server_error', (ctx, err) => {
    console.error(`as: server_error route=${ctx?.oidc?.route ?? '-'}: ${err.stack}`);
  });
  provider.on('registration_create.success', (ctx, client) => {
    record(`client.registered client=${client.clientId} type=${client.applicationType} auth=${client.clientAuthMethod}`);
  });
  provider.on('grant.revoked', (ctx, _grantId) => {
    // route "token" means reuse detection; "revocation" means an RFC 7009 request.
    record(`grant.revoked client=${clientOf(ctx)} via=${ctx?.oidc?.route ?? '-'}`);
  });
  provider.on('refresh_token.consumed', (token) => record(`refresh_token.rotated client=${token.clientId}`));
  provider.on('access_token.destroyed', (token) => record(`access_token.revoked client=${token.clientId}`));
  provider.on('refresh_token.destroyed', (token) => record(`refresh_token.revoked client=${token.clientId}`));
  provider.on('device_authorization.success', (ctx) => record(`device.authorization client=${clientOf(ctx)}`));
}
