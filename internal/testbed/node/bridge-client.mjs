// A stdio MCP client on the official TypeScript SDK (Client + StdioClientTransport), run by authkeeper's
// bridge tests. It spawns `AK_BIN bridge AK_SERVER` with this process's environment, keeps ONE session,
// and calls tools in a loop for AK_SECONDS seconds, AK_INTERVAL_MS apart (default 200), cycling echo,
// add and whoami. It prints JSON lines on stdout:
//   {"event":"connected"}
//   {"event":"call","tool":"echo","ok":true,"ms":12,"expires_at":0}   expires_at: whoami's token expiry
//   {"event":"call","tool":"add","ok":false,"error":"…","data":{…}}   a failed call (isError or thrown)
//   {"event":"done","calls":N,"failed":M}
// The bridge's stderr is passed through to this process's stderr. Exit status 0 unless connecting failed.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const bin = process.env.AK_BIN;
const server = process.env.AK_SERVER;
const seconds = Number(process.env.AK_SECONDS ?? '10');
const interval = Number(process.env.AK_INTERVAL_MS ?? '200');
if (!bin || !server) {
  console.error('bridge-client: set AK_BIN and AK_SERVER');
  process.exit(2);
}
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const transport = new StdioClientTransport({ command: bin, args: ['bridge', server], env: { ...process.env }, stderr: 'inherit' });
const client = new Client({ name: 'authkeeper-bridge-test', version: '1' });
try {
  await client.connect(transport);
} catch (err) {
  console.error(`bridge-client: connect: ${err.message}`);
  process.exit(1);
}
out({ event: 'connected' });

const calls = [
  () => ['echo', { text: 'hello' }, (t) => t === 'hello'],
  () => ['add', { a: 2, b: 3 }, (t) => t === '5'],
  () => ['whoami', {}, (t) => JSON.parse(t).expires_at > 0],
];
const deadline = Date.now() + seconds * 1000;
let n = 0;
let failed = 0;
while (Date.now() < deadline) {
  const [tool, args, check] = calls[n % calls.length]();
  n++;
  const start = Date.now();
  try {
    const res = await client.callTool({ name: tool, arguments: args });
    const text = res.content?.[0]?.text ?? '';
    if (res.isError || !check(text)) {
      failed++;
      out({ event: 'call', tool, ok: false, error: text });
    } else {
      const expires_at = tool === 'whoami' ? JSON.parse(text).expires_at : 0;
      out({ event: 'call', tool, ok: true, ms: Date.now() - start, expires_at });
    }
  } catch (err) {
    failed++;
    out({ event: 'call', tool, ok: false, error: err.message, data: err.data ?? null });
  }
  await new Promise((r) => setTimeout(r, interval));
}
out({ event: 'done', calls: n, failed });
await client.close();
