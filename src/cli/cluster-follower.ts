import { type ConnectOptions, ProtocolConnection } from "../client/connection.ts";
import type { NodeInfo } from "../protocol/messages.ts";
import { type Clock, systemClock, type Timer } from "../util/clock.ts";
import { type Logger, silentLogger } from "../util/logger.ts";

/**
 * `lifeline monitor --cluster ADDR,...`: follows a whole cluster through one of its nodes.
 * It holds one monitor connection to a node (the first seed, then any node it has heard of)
 * and reads the TOPOLOGY the node pushes — the members gossip (or `--peers`) told it of — so
 * the monitor can watch every node without being given the list, and sees nodes join and
 * leave. When that node goes away it reconnects to another it knows, with backoff.
 */
export interface ClusterFollowerOptions {
  /** "host:port" client addresses of some nodes of the cluster. */
  seeds: string[];
  /** Called with every node of the cluster (the one followed included) whenever that changes. */
  onChange(nodes: NodeInfo[]): void;
  /** First wait before reconnecting, ms (doubles up to `maxBackoff`). Default 250. */
  backoff?: number;
  /** Longest wait between reconnects, ms. Default 10 000. */
  maxBackoff?: number;
  /** Connect + handshake timeout, ms. Default 5000. */
  connectTimeout?: number;
  clock?: Clock;
  logger?: Logger;
  /** For tests: how to connect. */
  connect?: (opts: ConnectOptions) => Promise<ProtocolConnection>;
}

export class ClusterFollower {
  private conn: ProtocolConnection | undefined;
  private nodes: NodeInfo[] = [];
  private last = "";
  private timer: Timer | undefined;
  private stopped = false;
  private next = 0;
  private delay: number;
  private readonly clock: Clock;
  private readonly logger: Logger;

  constructor(private readonly opts: ClusterFollowerOptions) {
    if (opts.seeds.length === 0) throw new Error("ClusterFollower needs at least one seed");
    this.clock = opts.clock ?? systemClock;
    this.logger = opts.logger ?? silentLogger;
    this.delay = opts.backoff ?? 250;
  }

  start(): void {
    void this.attempt();
  }

  /** The nodes last heard of. */
  get view(): NodeInfo[] {
    return this.nodes;
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.conn?.destroy();
  }

  /** Where to connect next: known nodes that are not down first, then the seeds, in turn. */
  private candidates(): string[] {
    const live = this.nodes.filter((n) => n.state !== "down" && n.state !== "draining").map((n) => n.address);
    return [...new Set([...live, ...this.opts.seeds])];
  }

  private async attempt(): Promise<void> {
    if (this.stopped) return;
    const list = this.candidates();
    const address = list[this.next++ % list.length]!;
    const connect = this.opts.connect ?? ((o: ConnectOptions) => ProtocolConnection.connect(o));
    try {
      const conn = await connect({
        address,
        role: "monitor",
        timeout: this.opts.connectTimeout ?? 5000,
        heartbeat: 1000,
        name: "lifeline monitor --cluster",
        clock: this.clock,
      });
      if (this.stopped) {
        conn.destroy();
        return;
      }
      this.conn = conn;
      this.delay = this.opts.backoff ?? 250;
      this.logger.info(
        { event: "cluster-follow", node: conn.welcome.nodeId, address },
        `following the cluster through ${address}`,
      );
      conn.on("message", (m) => {
        if (m.type === "topology") this.update(m.nodes);
      });
      conn.on("close", () => {
        if (this.conn === conn) this.conn = undefined;
        if (this.stopped) return;
        this.logger.warn(
          { event: "cluster-lost", address },
          `lost the node followed (${address}); trying another`,
        );
        this.retry(0);
      });
      conn.start();
    } catch (err) {
      this.logger.warn(
        { event: "cluster-connect-failed", address, err: String(err) },
        `cannot follow the cluster through ${address}`,
      );
      this.retry(this.delay);
      this.delay = Math.min(this.delay * 2, this.opts.maxBackoff ?? 10_000);
    }
  }

  private retry(after: number): void {
    this.timer?.cancel();
    this.timer = this.clock.timeout(after, () => void this.attempt());
  }

  private update(nodes: NodeInfo[]): void {
    this.nodes = [...nodes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    // Only membership (ids and addresses) changes the targets; states are the monitor's own.
    const key = JSON.stringify(this.nodes.map((n) => [n.id, n.address]));
    if (key === this.last) return;
    this.last = key;
    this.opts.onChange(this.nodes);
  }
}
