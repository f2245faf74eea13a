/**
 * Gossip agent (a child of bench/gossip-vs-serf.ts): one Lifeline member — `Membership` over
 * `UdpTransport` — as its own process, so that it can be SIGKILLed or SIGSTOPped like a
 * `serf agent`, and run inside the benchmark's network namespace.
 *
 *   node --import tsx bench/lib/gossip-agent.ts --id ID [--host 127.0.0.1] [--port 0]
 *        [--join HOST:PORT,...] [--preset lan|wan|local] [--config JSON]
 *
 * `--config` is a JSON object of MembershipConfig overrides of the preset (validated by
 * membershipConfig: a bad one exits 2 with the reason). `--join` seeds are tried together
 * (a push-pull with each); when none answers, again every 500 ms for 10 s.
 *
 * stdout, one JSON line each (`at`: Date.now() of the event, ms, comparable with the
 * parent's clock on the same host):
 *   {"type":"ready","id","address","joined","config","pid"}   after the join (or at once
 *       without seeds)
 *   {"type":"member","id","state","previous","incarnation","reason","at"}   every state change
 *       of another member as this one sees it (alive, suspect, dead, left)
 *   {"type":"health","score","delta","at"}   Lifeguard's local health score changed
 *   {"type":"tick","lag","at"}   every 5 s: largest event-loop delay since the last tick, ms
 *   {"type":"counters",...}   the Membership's counters, on SIGTERM/SIGINT before exiting
 *   {"type":"error","message"}   a join that failed (then exit 1)
 * Exits 0 on SIGTERM/SIGINT or when stdin closes (the parent has gone).
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseArgs } from "node:util";
import {
  Membership,
  type MembershipConfig,
  type MembershipPreset,
  membershipConfig,
  UdpTransport,
} from "../../src/membership/index.ts";

const write = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(o)}\n`);

const { values } = parseArgs({
  options: {
    id: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
    join: { type: "string", default: "" },
    preset: { type: "string", default: "lan" },
    config: { type: "string", default: "{}" },
  },
  // The parent appends its run marker (--lifeline-bench-run=ID) to every child's arguments.
  strict: false,
});

function fail(message: string, code: number): never {
  write({ type: "error", message });
  process.stderr.write(`gossip-agent: ${message}\n`);
  process.exit(code);
}

const id = typeof values.id === "string" ? values.id : fail("--id is required", 2);
const preset = String(values.preset) as MembershipPreset;
let overrides: Partial<MembershipConfig>;
try {
  overrides = JSON.parse(String(values.config)) as Partial<MembershipConfig>;
  membershipConfig(preset, overrides);
} catch (err) {
  fail(`bad --preset/--config: ${(err as Error).message}`, 2);
}
const seeds = String(values.join)
  .split(",")
  .map((s) => s.trim())
  .filter(Boolean);

const transport = await UdpTransport.listen({ host: String(values.host), port: Number(values.port) });
const membership = new Membership({ id, transport, preset, config: overrides });

membership.on("member", (e) =>
  write({
    type: "member",
    id: e.member.id,
    state: e.member.state,
    previous: e.previous ?? null,
    incarnation: e.member.incarnation,
    reason: e.reason,
    at: Date.now(),
  }),
);
membership.on("health", ({ score, delta }) => write({ type: "health", score, delta, at: Date.now() }));

let stopping = false;
const lag = monitorEventLoopDelay({ resolution: 10 });
lag.enable();
const ticker = setInterval(() => {
  write({ type: "tick", lag: Math.round(lag.max / 1e6), at: Date.now() });
  lag.reset();
}, 5000);

async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearInterval(ticker);
  write({ type: "counters", ...membership.counters() });
  await membership.stop().catch(() => {});
  process.exit(0);
}
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
process.stdin.on("end", () => void stop());
process.stdin.on("error", () => void stop());
process.stdin.resume();

membership.start();
let joined = 0;
if (seeds.length > 0) {
  const until = Date.now() + 10_000;
  for (;;) {
    try {
      joined = await membership.join(seeds);
      break;
    } catch (err) {
      if (stopping) break;
      if (Date.now() > until) fail(`join ${seeds.join(",")} failed: ${(err as Error).message}`, 1);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
if (!stopping)
  write({
    type: "ready",
    id,
    address: membership.address,
    joined,
    config: membership.config,
    pid: process.pid,
  });
