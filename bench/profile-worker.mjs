// A CPU profile of the worker running in workerd, taken through the V8 inspector while load runs,
// printed as self time per function (JavaScript glue, wasm functions by their Rust names, and the
// runtime's own parts such as `Response` or `(garbage collector)`).
//
//   WORKERD_INSPECTOR_ADDR=127.0.0.1:9229 cargo bench -p smo1-worker --bench edge   # or any test
//   node --experimental-websocket bench/profile-worker.mjs 127.0.0.1:9229 10 [out.cpuprofile]
//
// Start it while the row to profile runs. The saved profile opens in Chrome's DevTools
// (Performance panel). For readable JavaScript names build the worker with NO_MINIFY=1
// (`NO_MINIFY=1 ./scripts/build-worker`).
import { writeFileSync } from "node:fs";

const [addr, seconds = "10", out] = process.argv.slice(2);
if (!addr) {
  console.error("usage: profile-worker.mjs <inspector host:port> [seconds] [out.cpuprofile]");
  process.exit(2);
}
const [target] = await (await fetch(`http://${addr}/json`)).json();
const socket = new WebSocket(target.webSocketDebuggerUrl);
const waiting = new Map();
let lastId = 0;
socket.onmessage = ({ data }) => {
  const message = JSON.parse(data);
  waiting.get(message.id)?.(message);
  waiting.delete(message.id);
};
const call = (method) =>
  new Promise((resolve) => {
    waiting.set(++lastId, resolve);
    socket.send(JSON.stringify({ id: lastId, method }));
  });
await new Promise((resolve) => (socket.onopen = resolve));
await call("Profiler.enable");
await call("Profiler.start");
await new Promise((resolve) => setTimeout(resolve, Number(seconds) * 1000));
const { profile } = (await call("Profiler.stop")).result;
socket.close();
if (out) writeFileSync(out, JSON.stringify(profile));

const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
const self = new Map();
for (const id of profile.samples) {
  const { functionName, url } = nodes.get(id).callFrame;
  const name = `${functionName || "(anonymous)"} ${url.split("/").pop()}`.trim();
  self.set(name, (self.get(name) ?? 0) + 1);
}
const total = profile.samples.length;
console.log(`${total} samples over ${seconds} s; self time:`);
for (const [name, count] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 40)) {
  console.log(`${((100 * count) / total).toFixed(1).padStart(5)}%  ${name}`);
}
