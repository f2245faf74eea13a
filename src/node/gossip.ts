import type { Member, MemberEvent, Membership } from "../membership/index.ts";
import type { NodeInfo, NodeLoad } from "../protocol/messages.ts";
import type { Clock, Timer } from "../util/clock.ts";
import type { LifelineNode } from "./node.ts";

/**
 * A node's view of its cluster from gossip membership (SWIM + Lifeguard, src/membership):
 * it replaces the full mesh of `--peers` heartbeat connections with O(1) messages per node
 * per protocol period, and is what the node pushes to its clients as TOPOLOGY.
 *
 * Each node gossips metadata about itself: `client` (the "host:port" clients connect to),
 * `state` (healthy, degraded, draining), `reason` when not healthy, and a coarse load
 * (`conns`, `sessions`, `lag`, `cpu`, `queue`). Metadata changes go out under a new
 * incarnation to every member, so the load is re-announced only when it moved noticeably
 * (`loadChanged`) and at most every `metaInterval`; a state change goes out at once.
 *
 * Member states map to TOPOLOGY states: alive → the state the member announces; suspect →
 * `suspect` (clients give it little weight, but it may be fine: Lifeguard has not convicted
 * it); dead → `down`; left → `down` (it said goodbye, so its clients already moved).
 */
export interface GossipViewOptions {
  node: LifelineNode;
  membership: Membership;
  /**
   * How often the node's load is compared with what it last announced, ms. Default 2000.
   * Shorter keeps clients' load picture fresher; each announcement is one update gossiped to
   * every member (log N retransmissions each), so this bounds that traffic per node.
   */
  metaInterval?: number;
  clock: Clock;
  /** Called with the other nodes as clients should see them, whenever that changes. */
  onChange(nodes: NodeInfo[]): void;
}

/** Members' states as TOPOLOGY shows them (see the class comment). */
export function topologyState(m: Pick<Member, "state" | "meta">): string {
  switch (m.state) {
    case "alive":
      return m.meta.state ?? "healthy";
    case "suspect":
      return "suspect";
    default:
      return "down";
  }
}

/** The node's metadata for gossip: client address, state, reason, load (strings). */
export function nodeMeta(node: LifelineNode): Record<string, string> {
  const s = node.stats();
  const { lag, cpu } = node.loadNow;
  const meta: Record<string, string> = {
    client: node.address,
    state: s.state === "stopped" ? "draining" : s.state,
    conns: String(s.connections),
    sessions: String(s.sessions),
    queue: String(s.queue),
    lag: lag.toFixed(1),
    cpu: cpu.toFixed(2),
  };
  if (s.reason) meta.reason = s.reason.slice(0, 200);
  return meta;
}

/**
 * Whether the load moved enough to announce again: connections or sessions by a fifth (and
 * at least 10), the queue by 100, lag across 50 ms, CPU by 0.25 of a core.
 */
export function loadChanged(before: Record<string, string>, now: Record<string, string>): boolean {
  const n = (m: Record<string, string>, k: string) => Number(m[k] ?? 0);
  const moved = (k: string, rel: number, abs: number) => {
    const a = n(before, k);
    const b = n(now, k);
    return Math.abs(a - b) >= Math.max(abs, rel * Math.max(a, b));
  };
  return (
    moved("conns", 0.2, 10) ||
    moved("sessions", 0.2, 10) ||
    moved("queue", 0, 100) ||
    n(before, "lag") >= 50 !== n(now, "lag") >= 50 ||
    moved("cpu", 0, 0.25)
  );
}

function loadOf(meta: Readonly<Record<string, string>>): NodeLoad | undefined {
  if (meta.conns === undefined) return undefined;
  const num = (k: string) => {
    const v = Number(meta[k]);
    return Number.isFinite(v) && v >= 0 ? v : 0;
  };
  return {
    connections: num("conns"),
    sessions: num("sessions"),
    lag: num("lag"),
    queue: num("queue"),
    cpu: num("cpu"),
  };
}

export class GossipView {
  private readonly node: LifelineNode;
  private readonly membership: Membership;
  private readonly opts: GossipViewOptions;
  private announced: Record<string, string> = {};
  private timer: Timer | undefined;
  private readonly onState = () => this.announce();
  private readonly onMember = (e: MemberEvent) => this.changed(e);

  constructor(opts: GossipViewOptions) {
    this.opts = opts;
    this.node = opts.node;
    this.membership = opts.membership;
  }

  /** Announces this node's metadata, then follows membership events and the node's state. */
  start(): void {
    this.announce();
    this.node.on("state", this.onState);
    this.membership.on("member", this.onMember);
    this.membership.on("update", this.onMember);
    const every = this.opts.metaInterval ?? 2000;
    const tick = () => {
      this.announce();
      this.timer = this.opts.clock.timeout(every, tick);
    };
    this.timer = this.opts.clock.timeout(every, tick);
    this.opts.onChange(this.view());
  }

  stop(): void {
    this.timer?.cancel();
    this.node.off("state", this.onState);
    this.membership.off("member", this.onMember);
    this.membership.off("update", this.onMember);
  }

  /** The other nodes, as clients should see them: only members that said where clients go. */
  view(): NodeInfo[] {
    const out: NodeInfo[] = [];
    for (const m of this.membership.members()) {
      if (m.id === this.membership.id || !m.meta.client) continue;
      const info: NodeInfo = { id: m.id, address: m.meta.client, state: topologyState(m) };
      const load = loadOf(m.meta);
      if (load && m.state === "alive") info.load = load;
      if (m.state === "alive" && m.meta.reason) info.reason = m.meta.reason;
      out.push(info);
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Gossips the node's metadata if its address, state or reason changed, or its load moved. */
  private announce(): void {
    const meta = nodeMeta(this.node);
    const a = this.announced;
    if (
      meta.client === a.client &&
      meta.state === a.state &&
      meta.reason === a.reason &&
      !loadChanged(a, meta)
    )
      return;
    this.announced = meta;
    this.membership.updateMeta(meta);
  }

  private changed(e: MemberEvent): void {
    // Membership logs every change with its reason; the node only refreshes its clients.
    if (e.member.id !== this.membership.id) this.opts.onChange(this.view());
  }
}
