// Entry point: the current @cloudflare/workers-oauth-provider (npm alias oauth-provider-current).
import { OAuthProvider } from "oauth-provider-current";
import { makeWorker } from "./app.mjs";

export default makeWorker(OAuthProvider, "current", true);
