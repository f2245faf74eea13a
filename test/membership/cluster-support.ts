import type { MembershipConfig } from "../../src/membership/config.ts";
import type { Keyring } from "../../src/membership/keyring.ts";
import { Membership } from "../../src/membership/membership.ts";
import { MemoryNetwork } from "../../src/membership/memory-network.ts";
import type { MemberEvent, MemberState } from "../../src/membership/types.ts";
import { seededRandom } from "../../src/util/clock.ts";
import { FakeClock } from "../../src/util/fake-clock.ts";

/**
 * A cluster of Membership instances on the in-memory network, all on one fake clock and one
 * seeded random source: deterministic, and minutes of protocol time run in milliseconds.
 */
export interface TestCluster {
  clock: FakeClock;
  net: MemoryNetwork;
  nodes: Membership[];
  /** Every event of every node, with the observer's id and the time. */
  events: Array<{ observer: string; at: number; event: MemberEvent }>;
  addressOf(id: string): string;
  node(id: string): Membership;
  /** Crashes a member: its endpoint closes and its timers stop. */
  kill(id: string): void;
  /** Adds and starts a member (not joined); `keyring` null for none, undefined for the cluster's. */
  add(id: string, keyring?: Keyring | null): Membership;
  /** Joins `node` through `seeds`, letting time pass for the exchange. */
  join(node: Membership, seeds: string[]): Promise<number>;
  /** What `observer` believes of `target`. */
  stateOf(observer: string, target: string): MemberState | undefined;
  /** True when every listed node sees every listed node alive. */
  converged(ids?: string[]): boolean;
  /** Advances in steps until `cond` holds; returns the time it took, or undefined. */
  until(cond: () => boolean, maxMs: number, step?: number): Promise<number | undefined>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  seed?: number;
  config?: Partial<MembershipConfig>;
  latency?: number;
  jitter?: number;
  keyring?: (id: string) => Keyring | undefined;
}

export async function startCluster(ids: string[], opts: ClusterOptions = {}): Promise<TestCluster> {
  const clock = new FakeClock();
  const random = seededRandom(opts.seed ?? 1);
  const net = new MemoryNetwork({ clock, random, latency: opts.latency ?? 2, jitter: opts.jitter ?? 2 });
  const nodes: Membership[] = [];
  const events: TestCluster["events"] = [];
  const addressOf = (id: string) => `${id}:7946`;
  const c: TestCluster = {
    clock,
    net,
    nodes,
    events,
    addressOf,
    node(id) {
      const n = nodes.find((x) => x.id === id);
      if (!n) throw new Error(`no node ${id}`);
      return n;
    },
    kill(id) {
      net.kill(addressOf(id));
      void c.node(id).stop();
    },
    add(id, keyring) {
      const kr = keyring === null ? undefined : (keyring ?? opts.keyring?.(id));
      const m = new Membership({
        id,
        transport: net.endpoint(addressOf(id)),
        clock,
        random,
        meta: { client: `${id}:7400` },
        ...(opts.config ? { config: opts.config } : {}),
        ...(kr ? { keyring: kr } : {}),
      });
      m.on("member", (event) => events.push({ observer: id, at: clock.now(), event }));
      nodes.push(m);
      m.start();
      return m;
    },
    async join(node, seeds) {
      const p = node.join(seeds);
      let result: number | undefined;
      let error: unknown;
      p.then(
        (n) => {
          result = n;
        },
        (e: unknown) => {
          error = e;
        },
      );
      for (let i = 0; i < 200 && result === undefined && error === undefined; i++) await clock.advance(10);
      if (error) throw error;
      return result ?? 0;
    },
    stateOf(observer, target) {
      return c.node(observer).member(target)?.state;
    },
    converged(list) {
      const want = list ?? nodes.map((n) => n.id);
      return want.every((o) => want.every((t) => c.stateOf(o, t) === "alive"));
    },
    async until(cond, maxMs, step = 100) {
      const start = clock.now();
      while (clock.now() - start <= maxMs) {
        if (cond()) return clock.now() - start;
        await clock.advance(step);
      }
      return cond() ? clock.now() - start : undefined;
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
  for (const id of ids) c.add(id);
  for (const n of nodes.slice(1)) await c.join(n, [addressOf(ids[0]!)]);
  return c;
}
