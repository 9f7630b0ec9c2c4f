// The bench worker, shared by both versions of @cloudflare/workers-oauth-provider (see current.mjs and
// v0.2.3.mjs, the entry points): the provider with dynamic client registration, 60-second access
// tokens, rotating refresh tokens and RFC 7009 revocation at the token endpoint; an auto-approving
// /authorize page; and an MCP endpoint (/mcp) served by the official TypeScript SDK's web-standard
// Streamable HTTP transport with one tool, echo.
//
// Configuration comes from wrangler `--var`s: ORIGIN (http://127.0.0.1:PORT, required: the resource
// identifier is ORIGIN/mcp) and BARE ("1": serve 0.2.3 as it is, without protected-resource metadata).

import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { z } from "zod";

// The library's minimum: Cloudflare KV cannot expire a record sooner (1.x refuses less at construction).
const ACCESS_TOKEN_TTL = 60;
const REFRESH_TOKEN_TTL = 30 * 24 * 3600;
const SCOPES = ["mcp"];
const USER = "bench-user"; // the one user every authorization is completed for
const PRM_PREFIX = "/.well-known/oauth-protected-resource";

// makeWorker returns the worker's fetch handler for one version of the library. hasResourceMetadata
// says whether the library serves RFC 9728 metadata and names it in its 401 challenge itself (1.x);
// for 0.2.3 the worker adds both, as a deployment of that version had to, unless BARE is set.
export function makeWorker(OAuthProvider, version, hasResourceMetadata) {
	let provider; // built on the first request: the resource identifier depends on ORIGIN
	return {
		async fetch(request, env, ctx) {
			if (!env.ORIGIN) return new Response("ORIGIN is not set", { status: 500 });
			const resource = env.ORIGIN + "/mcp";
			provider ??= new OAuthProvider({
				apiRoute: "/mcp",
				apiHandler: mcpHandler(version),
				defaultHandler: {
					fetch: (req, env) => defaultHandler(req, env, resource, hasResourceMetadata),
				},
				authorizeEndpoint: "/authorize",
				tokenEndpoint: "/token",
				clientRegistrationEndpoint: "/register",
				accessTokenTTL: ACCESS_TOKEN_TTL,
				refreshTokenTTL: REFRESH_TOKEN_TTL,
				scopesSupported: SCOPES,
				// 1.x only (0.2.3 ignores both): its RFC 9728 document and challenge.
				resourceMetadata: { resource, resource_name: `workers-oauth-provider ${version}` },
				requiredScopes: SCOPES,
				onError: ({ code, description, status, internal }) =>
					console.log(`oauth error ${status} ${code}: ${description}` + (internal ? ` (${internal.category}/${internal.reason})` : "")),
			});
			const res = await provider.fetch(request, env, ctx);
			if (hasResourceMetadata || env.BARE === "1" || res.status !== 401 || new URL(request.url).pathname !== "/mcp") {
				return res;
			}
			// 0.2.3's challenge has no resource_metadata (RFC 9728 §5.1): add it.
			const out = new Response(res.body, res);
			out.headers.set("WWW-Authenticate",
				`${res.headers.get("WWW-Authenticate") || 'Bearer realm="OAuth"'}, resource_metadata="${env.ORIGIN}${PRM_PREFIX}/mcp"`);
			return out;
		},
	};
}

// defaultHandler serves what the library leaves to the application: the authorization page, and,
// for 0.2.3, the protected-resource metadata.
async function defaultHandler(request, env, resource, hasResourceMetadata) {
	const url = new URL(request.url);
	if (url.pathname === "/authorize") return authorize(request, env);
	if (!hasResourceMetadata && env.BARE !== "1" && url.pathname === PRM_PREFIX + "/mcp") {
		return Response.json({
			resource,
			authorization_servers: [env.ORIGIN],
			scopes_supported: SCOPES,
			bearer_methods_supported: ["header"],
			resource_name: "workers-oauth-provider 0.2.3",
		});
	}
	return new Response("not found", { status: 404 });
}

// authorize approves every valid request at once for USER, with the scopes asked for, so that a
// scripted browser following redirects completes the flow. A request the library refuses to parse
// (unknown client, unregistered redirect URI) gets a 400 page, never a redirect, as it must.
async function authorize(request, env) {
	let authRequest;
	try {
		authRequest = await env.OAUTH_PROVIDER.parseAuthRequest(request);
	} catch (e) {
		console.log(`authorize refused: ${e.message}`);
		return new Response(`invalid authorization request: ${e.message}\n`, { status: 400 });
	}
	const { redirectTo } = await env.OAUTH_PROVIDER.completeAuthorization({
		request: authRequest,
		userId: USER,
		metadata: { label: "authkeeper bench" },
		scope: authRequest.scope,
		props: { user: USER },
	});
	return Response.redirect(redirectTo, 302);
}

// mcpHandler serves the MCP endpoint statelessly: a new server and transport per request, as the
// SDK documents for runtimes without sticky sessions. It is reached only with a valid token.
function mcpHandler(version) {
	return {
		async fetch(request) {
			const server = new McpServer({ name: `authkeeper-bench-workers-${version}`, version: "1" });
			server.registerTool("echo", { description: "Returns text.", inputSchema: { text: z.string() } },
				async ({ text }) => ({ content: [{ type: "text", text }] }));
			const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined });
			await server.connect(transport);
			return transport.handleRequest(request);
		},
	};
}
