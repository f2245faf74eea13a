import { resolveConfig } from "../config/resolve.ts";
import { HealthEngine } from "../health/engine.ts";
import { defaultRegistry } from "../health/probes/index.ts";
import type { TargetSnapshot } from "../health/target.ts";
import type { NodeInfo, NodeLoad } from "../protocol/messages.ts";
import type { Clock } from "../util/clock.ts";
import type { Logger } from "../util/logger.ts";

/**
 * Watches the other nodes given by `--peers` with the health engine's heartbeat probe (one
 * persistent connection each, phi-accrual on their heartbeats) and turns what it sees into
 * the NodeInfo list a node pushes to its clients as TOPOLOGY. A full mesh: N nodes cost
 * N·(N-1) connections; gossip membership replaces it for large clusters.
 */
export interface PeerWatcherOptions {
  /** "host:port" of each peer. */
  peers: string[];
  /** Heartbeat interval asked of peers, ms. Default 500. */
  heartbeat?: number;
  clock?: Clock;
  logger?: Logger;
  /** Called with the new view whenever a peer's state (or id) changes. */
  onChange(nodes: NodeInfo[]): void;
}

export class PeerWatcher {
  private readonly engine: HealthEngine;
  /** Last node id and load heard from each address (failed results carry none). */
  private readonly known = new Map<string, { id: string; load?: NodeLoad }>();

  constructor(opts: PeerWatcherOptions) {
    const registry = defaultRegistry();
    const config = resolveConfig(
      {
        monitor: { maxInFlight: 64 },
        targets: opts.peers.map((address) => ({
          id: address,
          checks: [{ type: "heartbeat", address, heartbeat: opts.heartbeat ?? 500 }],
        })),
      },
      registry,
    );
    this.engine = new HealthEngine(config, {
      registry,
      ...(opts.clock ? { clock: opts.clock } : {}),
      ...(opts.logger ? { logger: opts.logger } : {}),
    });
    this.engine.on("result", (r) => {
      const d = r.detail as { nodeId?: string; load?: NodeLoad } | undefined;
      if (d?.nodeId) this.known.set(r.target, { id: d.nodeId, ...(d.load ? { load: d.load } : {}) });
    });
    this.engine.on("state", () => opts.onChange(this.view()));
  }

  start(): void {
    this.engine.start();
  }

  stop(): Promise<void> {
    return this.engine.stop();
  }

  /** The peers as clients should see them (a peer never heard from is named by its address). */
  view(): NodeInfo[] {
    return this.engine.snapshot().map((t: TargetSnapshot) => {
      const k = this.known.get(t.id);
      const info: NodeInfo = { id: k?.id ?? t.id, address: t.id, state: t.state };
      if (k?.load && t.state !== "down") info.load = k.load;
      return info;
    });
  }
}
