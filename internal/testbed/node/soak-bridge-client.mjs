// A stdio MCP client on the official TypeScript SDK for `make soak` (internal/soak). Like
// bridge-client.mjs it spawns `AK_BIN bridge AK_SERVER` with this process's environment and keeps ONE
// session, calling echo, add and whoami in turn, AK_INTERVAL_MS apart (default 200), for AK_SECONDS
// seconds or until the file AK_STOP_FILE exists (checked before each call). Every line carries `at` (Unix ms), so the soak can place calls in time and
// measure how long the token a server saw had left:
//   {"event":"connected","at":…}
//   {"event":"call","at":…,"tool":"whoami","ok":true,"ms":12,"left_ms":9000}   left_ms: whoami only
//   {"event":"call","at":…,"tool":"add","ok":false,"error":"…","code":-32050,"data":{…}}
//   {"event":"done","at":…,"calls":N,"failed":M}
// The bridge's stderr is passed through to this process's stderr. Exit status 0 unless connecting failed.
import { existsSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const bin = process.env.AK_BIN;
const server = process.env.AK_SERVER;
const seconds = Number(process.env.AK_SECONDS ?? '10');
const interval = Number(process.env.AK_INTERVAL_MS ?? '200');
if (!bin || !server) {
  console.error('soak-bridge-client: set AK_BIN and AK_SERVER');
  process.exit(2);
}
const out = (o) => process.stdout.write(JSON.stringify({ ...o, at: Date.now() }) + '\n');

const transport = new StdioClientTransport({ command: bin, args: ['bridge', server], env: { ...process.env }, stderr: 'inherit' });
const client = new Client({ name: 'authkeeper-soak', version: '1' });
try {
  await client.connect(transport);
} catch (err) {
  console.error(`soak-bridge-client: connect: ${err.message}`);
  process.exit(1);
}
out({ event: 'connected' });

const stopFile = process.env.AK_STOP_FILE;
const calls = [
  () => ['echo', { text: 'hello' }, (t) => t === 'hello'],
  () => ['add', { a: 2, b: 3 }, (t) => t === '5'],
  () => ['whoami', {}, (t) => JSON.parse(t).expires_at > 0],
];
const deadline = Date.now() + seconds * 1000;
let n = 0;
let failed = 0;
while (Date.now() < deadline && !(stopFile && existsSync(stopFile))) {
  const [tool, args, check] = calls[n % calls.length]();
  n++;
  const start = Date.now();
  try {
    const res = await client.callTool({ name: tool, arguments: args }, undefined, { timeout: 30000 });
    const text = res.content?.[0]?.text ?? '';
    if (res.isError || !check(text)) {
      failed++;
      out({ event: 'call', tool, ok: false, error: text.slice(0, 300) });
    } else {
      const left_ms = tool === 'whoami' ? JSON.parse(text).expires_at * 1000 - Date.now() : undefined;
      out({ event: 'call', tool, ok: true, ms: Date.now() - start, left_ms });
    }
  } catch (err) {
    failed++;
    out({ event: 'call', tool, ok: false, error: err.message, code: err.code ?? null, data: err.data ?? null });
  }
  await new Promise((r) => setTimeout(r, interval));
}
out({ event: 'done', calls: n, failed });
await client.close();
