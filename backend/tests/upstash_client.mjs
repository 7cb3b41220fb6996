// Drives the local Upstash bridge with Upstash's official client, unchanged (including its
// default base64 response encoding). Usage: node upstash_client.mjs <url> <token> <key prefix>
import { Redis } from "@upstash/redis";
import assert from "node:assert/strict";

const [url, token, prefix] = process.argv.slice(2);
const redis = new Redis({ url, token, enableTelemetry: false });

assert.equal(await redis.set(`${prefix}greeting`, "héllo wörld"), "OK");
assert.equal(await redis.get(`${prefix}greeting`), "héllo wörld");
assert.equal(await redis.get(`${prefix}absent`), null);
assert.equal(await redis.incr(`${prefix}counter`), 1);
await redis.set(`${prefix}json`, { a: 1, b: [true, "x"] });
assert.deepEqual(await redis.get(`${prefix}json`), { a: 1, b: [true, "x"] });
assert.equal(await redis.ping(), "PONG");

const pipeline = redis.pipeline();
pipeline.set(`${prefix}p1`, "one");
pipeline.incrby(`${prefix}counter`, 5);
pipeline.get(`${prefix}p1`);
assert.deepEqual(await pipeline.exec(), ["OK", 6, "one"]);

const tx = redis.multi();
tx.set(`${prefix}t1`, "a");
tx.get(`${prefix}t1`);
assert.deepEqual(await tx.exec(), ["OK", "a"]);

await redis.hset(`${prefix}hash`, { field: "value" });
assert.deepEqual(await redis.hgetall(`${prefix}hash`), { field: "value" });
assert.equal(await redis.expire(`${prefix}greeting`, 60), 1);

await assert.rejects(() => redis.incr(`${prefix}greeting`), /not an integer/);
await assert.rejects(
  () => new Redis({ url, token: "wrong", enableTelemetry: false }).get(`${prefix}x`),
  /Unauthorized/,
);
console.log("upstash client: all checks passed");
