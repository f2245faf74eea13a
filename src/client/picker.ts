import type { NodeInfo, NodeLoad } from "../protocol/messages.ts";
import type { Random } from "../util/clock.ts";

/**
 * The servers a client knows and the order in which to try them.
 *
 * It starts from the configured list and learns the rest from TOPOLOGY (and GOAWAY) sent by
 * the nodes: each node's state and load. Connect times and PING round trips give each a
 * latency. A server that just failed is avoided for a while (`avoidFor`): tried only when
 * nothing else is left.
 *
 * The order is random, weighted by how good a server looks (`weight`): healthy over degraded,
 * low latency, low load. Randomness is the point: a thousand clients that lost the same node
 * must spread over the survivors, not all pick the one that looked best a second ago.
 */
export interface ServerView {
  address: string;
  /** Node id, once a node told us. */
  id?: string;
  /** From TOPOLOGY: healthy, degraded, draining, down... undefined = not known yet. */
  state?: string;
  load?: NodeLoad;
  /** Smoothed latency (connect time, PING round trip), ms. */
  latency?: number;
  /** Not before this time (monotonic ms), after a failure. */
  avoidUntil: number;
  /** Failures in a row. */
  failures: number;
  /** From the configured list (never forgotten). */
  seed: boolean;
}

/** Relative preference for a server (higher is better); 0 = do not try while others exist. */
export function weight(s: ServerView, now: number): number {
  if (s.state === "down" || s.state === "draining" || s.state === "stopped") return 0;
  let w = s.state === "degraded" ? 0.25 : 1;
  // Latency: 1 ms and 5 ms are the same on a LAN; 50 ms vs 5 ms matters.
  if (s.latency !== undefined) w *= 10 / (10 + s.latency);
  if (s.load) {
    // Event-loop lag and CPU say a node is overloaded. Only clear overload counts: every
    // client sees the same (stale) snapshot, so reacting to noise would herd them all
    // away from one node onto the others.
    w *= 1 / (1 + Math.max(0, s.load.lag - 50) / 100);
    w *= 1 / (1 + Math.max(0, s.load.cpu - 0.8) * 2);
  }
  if (now < s.avoidUntil) w *= 0.001;
  return w;
}

/**
 * A weighted random order without replacement (Efraimidis–Spirakis: key = u^(1/w)); servers
 * with weight 0 come last, in random order. Pure: `random` is injected.
 */
export function weightedOrder<T>(items: T[], weightOf: (t: T) => number, random: Random): T[] {
  const keyed = items.map((t) => {
    const w = weightOf(t);
    const u = Math.max(Number.MIN_VALUE, random());
    return { t, zero: w <= 0, key: w > 0 ? Math.log(u) / w : Math.log(u) };
  });
  keyed.sort((a, b) => (a.zero === b.zero ? b.key - a.key : a.zero ? 1 : -1));
  return keyed.map((k) => k.t);
}

export class ServerPicker {
  private readonly servers = new Map<string, ServerView>();

  constructor(
    seeds: string[],
    private readonly avoidFor: number,
  ) {
    for (const a of seeds) this.servers.set(a, { address: a, avoidUntil: 0, failures: 0, seed: true });
  }

  get all(): ServerView[] {
    return [...this.servers.values()];
  }

  get(address: string): ServerView | undefined {
    return this.servers.get(address);
  }

  private view(address: string): ServerView {
    let s = this.servers.get(address);
    if (!s) {
      s = { address, avoidUntil: 0, failures: 0, seed: false };
      this.servers.set(address, s);
    }
    return s;
  }

  /** A node's view of the cluster. Nodes it no longer lists are forgotten unless seeds. */
  topology(nodes: NodeInfo[]): void {
    const listed = new Set<string>();
    for (const n of nodes) {
      if (!n.address) continue;
      listed.add(n.address);
      const s = this.view(n.address);
      s.id = n.id;
      s.state = n.state;
      if (n.load) s.load = n.load;
    }
    for (const [a, s] of this.servers) if (!s.seed && !listed.has(a)) this.servers.delete(a);
  }

  /** The current node said how it is doing (HEARTBEAT). */
  report(address: string, state: string, load: NodeLoad): void {
    const s = this.view(address);
    s.state = state;
    s.load = load;
  }

  /** A measured latency (connect time or PING round trip). */
  latency(address: string, ms: number): void {
    const s = this.view(address);
    s.latency = s.latency === undefined ? ms : s.latency * 0.75 + ms * 0.25;
  }

  succeeded(address: string): void {
    const s = this.view(address);
    s.failures = 0;
    s.avoidUntil = 0;
  }

  /** The server failed (or is draining): avoid it for a while. */
  failed(address: string, now: number, state?: string): void {
    const s = this.view(address);
    s.failures++;
    s.avoidUntil = now + this.avoidFor;
    if (state) s.state = state;
  }

  /** Every known server, best-looking first (randomised by weight); `exclude` goes last. */
  order(now: number, random: Random, exclude?: string): string[] {
    const list = weightedOrder(this.all, (s) => weight(s, now), random).map((s) => s.address);
    if (exclude && list.includes(exclude)) return [...list.filter((a) => a !== exclude), exclude];
    return list;
  }
}
