// Entry point: @cloudflare/workers-oauth-provider 0.2.3 (npm alias oauth-provider-0.2.3), the last
// version that matched redirect URIs exactly — a loopback redirect on another port is refused.
import { OAuthProvider } from "oauth-provider-0.2.3";
import { makeWorker } from "./app.mjs";

export default makeWorker(OAuthProvider, "0.2.3", false);
