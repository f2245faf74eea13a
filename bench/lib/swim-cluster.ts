import type { MembershipConfig } from "../../src/membership/config.ts";
import { Membership } from "../../src/membership/membership.ts";
import { MemoryNetwork } from "../../src/membership/memory-network.ts";
import { seededRandom } from "../../src/util/clock.ts";
import { SimClock } from "./swim-clock.ts";

/**
 * A simulated cluster for bench/swim-sim: N Membership instances on one in-memory network,
 * one simulation clock and one seeded random source (so every run with the same seed is the
 * same run). Built converged: every member joins through member 0 (a real push-pull each),
 * pulls the full table once more, and then the join announcements still queued are dropped,
 * so measurements start from a quiet, converged cluster instead of from N² join gossip.
 */
export interface SimCluster {
  clock: SimClock;
  net: MemoryNetwork;
  members: Membership[];
  address(i: number): string;
  /** Crashes member i (endpoint closed, timers stopped). */
  kill(i: number): void;
  stop(): Promise<void>;
}

export interface SimOptions {
  seed: number;
  latency?: number;
  jitter?: number;
  config?: Partial<MembershipConfig>;
}

export async function buildSimCluster(n: number, opts: SimOptions): Promise<SimCluster> {
  const clock = new SimClock();
  const random = seededRandom(opts.seed);
  const net = new MemoryNetwork({ clock, random, latency: opts.latency ?? 1, jitter: opts.jitter ?? 2 });
  const address = (i: number) => `10.0.${i >> 8}.${i & 255}:7946`;
  const members: Membership[] = [];
  for (let i = 0; i < n; i++) {
    const m = new Membership({
      id: `m${i}`,
      transport: net.endpoint(address(i)),
      clock,
      random,
      meta: { client: `10.0.${i >> 8}.${i & 255}:7400` },
      ...(opts.config ? { config: opts.config } : {}),
    });
    members.push(m);
    m.start();
  }
  // Two passes: the first teaches member 0 everyone, the second teaches everyone everything.
  // Each exchange takes a few simulated ms; the clock runs only until all have answered, so
  // little join gossip is generated before it is dropped below.
  for (let pass = 0; pass < 2; pass++) {
    let pending = n - 1;
    for (const m of members.slice(1)) {
      m.join([address(0)]).then(
        () => pending--,
        () => pending--,
      );
    }
    await clock.until(() => pending === 0, 10_000, 5);
  }
  for (const m of members) dropQueuedGossip(m);
  const c: SimCluster = {
    clock,
    net,
    members,
    address,
    kill(i) {
      net.kill(address(i));
      void members[i]!.stop();
    },
    async stop() {
      await Promise.all(members.map((m) => m.stop()));
    },
  };
  return c;
}

/** Simulation shortcut (not public API): forget the join announcements still queued. */
function dropQueuedGossip(m: Membership): void {
  (m as unknown as { queue: { clear(): void } }).queue.clear();
}
