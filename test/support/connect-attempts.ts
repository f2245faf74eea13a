/**
 * A fresh failover client that connects once and reports, as one JSON line, how long it took
 * and every connect attempt it made on the way (from its transport, so the attempts a race
 * aborted are listed too):
 *   {"type":"connected","strategy","node","address","took",
 *    "attempts":[{"address","start","end","result"}]}
 * `start`/`end` are ms since connect() was called; `result` is "connected", an error code
 * (LL_TIMEOUT, LL_CONNECT_FAILED...) or "LL_ABORTED" for an attempt a winning race cancelled.
 * For tests that must run the client inside a network namespace:
 *   ip netns exec NS node --import tsx test/support/connect-attempts.ts SERVERS [lifeline|classic]
 *
 * SERVERS is comma-separated. The random source is a constant, so a lifeline client also tries
 * the servers in the given order (equal weights, equal draws): the first one first.
 * Exits 2 with {"type":"error"} when not connected within 30 s.
 */
import { createClient } from "../../src/client/client.ts";
import { tcpConnector } from "../../src/client/link.ts";

interface Attempt {
  address: string;
  start: number;
  end?: number;
  result?: string;
}

const [servers = "", strategy = "lifeline"] = process.argv.slice(2);
const attempts: Attempt[] = [];
let t0 = 0;
const since = () => Math.round((performance.now() - t0) * 10) / 10;
const client = createClient({
  servers: servers.split(","),
  strategy: strategy === "classic" ? "classic" : "lifeline",
  random: () => 0.5,
  connect: async (opts) => {
    const a: Attempt = { address: opts.address, start: since() };
    attempts.push(a);
    try {
      const link = await tcpConnector(opts);
      a.result = "connected";
      return link;
    } catch (err) {
      a.result = (err as { code?: string }).code ?? String(err);
      throw err;
    } finally {
      a.end = since();
    }
  },
});
t0 = performance.now();
try {
  await client.connect({ timeout: 30_000 });
} catch (err) {
  process.stdout.write(`${JSON.stringify({ type: "error", message: String(err), attempts })}\n`);
  await client.close({ timeout: 0 });
  process.exit(2);
}
const took = performance.now() - t0;
const s = client.status();
await client.close({ timeout: 0 });
// The losers of a race are aborted as the winner is adopted; let their rejections land.
await new Promise((r) => setTimeout(r, 50));
process.stdout.write(
  `${JSON.stringify({ type: "connected", strategy, node: s.node, address: s.address, took, attempts })}\n`,
);
process.exit(0);
