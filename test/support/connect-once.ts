/**
 * A fresh failover client that connects once and reports how long it took, as a JSON line:
 * {"type":"connected","node","address","took"}. For tests that must run the client inside a
 * network namespace (`ip netns exec … node --import tsx test/support/connect-once.ts`).
 *
 * Usage: connect-once.ts SERVERS(comma-separated) [lifeline|classic]
 * The random source is a constant, so the lifeline client tries the servers in the given
 * order too (equal weights, equal draws): the first one is always tried first.
 */
import { createClient } from "../../src/client/client.ts";

const [servers = "", strategy = "lifeline"] = process.argv.slice(2);
const client = createClient({
  servers: servers.split(","),
  strategy: strategy === "classic" ? "classic" : "lifeline",
  random: () => 0.5,
});
const started = performance.now();
await client.connect();
const took = performance.now() - started;
const s = client.status();
process.stdout.write(`${JSON.stringify({ type: "connected", node: s.node, address: s.address, took })}\n`);
await client.close({ timeout: 0 });
process.exit(0);
