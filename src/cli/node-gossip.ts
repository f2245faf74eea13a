import { readFileSync } from "node:fs";
import { UsageError } from "../errors.ts";
import { parseHostPort } from "../health/probes/address.ts";
import {
  Keyring,
  MEMBERSHIP_PRESETS,
  Membership,
  type MembershipPreset,
  UdpTransport,
} from "../membership/index.ts";
import { GossipView } from "../node/gossip.ts";
import type { LifelineNode } from "../node/node.ts";
import { systemClock } from "../util/clock.ts";
import type { Logger } from "../util/logger.ts";

/**
 * `lifeline node --join` / `--gossip`: the node takes part in gossip membership (SWIM with
 * Lifeguard, src/membership) instead of watching a fixed `--peers` list, and pushes what
 * membership knows to its clients as TOPOLOGY.
 */
export interface GossipFlags {
  /** Seeds: "host:port" of any members' gossip addresses. */
  join?: string;
  /** Gossip address (UDP and TCP) to bind; default the node's --host, a free port. */
  gossip?: string;
  /** "host:port" other members reach this one at, when the bound one is not (0.0.0.0, NAT). */
  gossipAdvertise?: string;
  /** lan (default), wan, local. */
  gossipPreset?: string;
  /** File with the cluster's keys (base64, 32 bytes each, one per line; the first encrypts). */
  gossipKeyFile?: string;
}

export interface GossipSetup {
  flags: GossipFlags;
  seeds: string[];
  preset: MembershipPreset;
  keyring: Keyring | undefined;
  bind: { host: string; port: number };
}

function list(v: string | undefined): string[] {
  return (v ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * Validates the gossip flags; undefined when gossip is off (neither --join nor --gossip).
 * Keys come from --gossip-key-file or LIFELINE_GOSSIP_KEYS (comma-separated).
 */
export function gossipSetup(
  flags: GossipFlags,
  nodeHost: string,
  env: NodeJS.ProcessEnv,
): GossipSetup | undefined {
  if (flags.join === undefined && flags.gossip === undefined) return undefined;
  const seeds = list(flags.join);
  for (const s of seeds) if (!parseHostPort(s)) throw new UsageError(`--join: "${s}" is not host:port`);
  let bind = { host: nodeHost, port: 0 };
  if (flags.gossip !== undefined) {
    const hp = parseHostPort(flags.gossip, true);
    if (!hp) throw new UsageError(`--gossip: "${flags.gossip}" is not host:port`);
    bind = { host: hp.host, port: hp.port };
  }
  if (flags.gossipAdvertise !== undefined && !parseHostPort(flags.gossipAdvertise))
    throw new UsageError(`--gossip-advertise: "${flags.gossipAdvertise}" is not host:port`);
  const preset = (flags.gossipPreset ?? "lan") as MembershipPreset;
  if (!(preset in MEMBERSHIP_PRESETS))
    throw new UsageError(
      `--gossip-preset must be one of ${Object.keys(MEMBERSHIP_PRESETS).join(", ")}, not "${preset}"`,
    );
  let keys: string[] = [];
  if (flags.gossipKeyFile !== undefined) {
    try {
      keys = readFileSync(flags.gossipKeyFile, "utf8")
        .split(/\r?\n/)
        .map((l) => l.trim())
        .filter((l) => l !== "" && !l.startsWith("#"));
    } catch (err) {
      throw new UsageError(
        `--gossip-key-file: cannot read ${flags.gossipKeyFile}: ${(err as Error).message}`,
      );
    }
    if (keys.length === 0) throw new UsageError(`--gossip-key-file: ${flags.gossipKeyFile} holds no key`);
  } else if (env.LIFELINE_GOSSIP_KEYS) {
    keys = list(env.LIFELINE_GOSSIP_KEYS);
  }
  let keyring: Keyring | undefined;
  try {
    keyring = keys.length > 0 ? new Keyring(keys) : undefined;
  } catch (err) {
    throw new UsageError(`gossip keys: ${(err as Error).message}`);
  }
  return { flags, seeds, preset, keyring, bind };
}

/** A running gossip membership for a node, with the view that feeds its TOPOLOGY. */
export class NodeGossip {
  private joining: { cancel(): void } | undefined;
  private stopped = false;

  private constructor(
    readonly membership: Membership,
    private readonly view: GossipView,
    private readonly logger: Logger,
  ) {}

  static async start(node: LifelineNode, setup: GossipSetup, logger: Logger): Promise<NodeGossip> {
    const transport = await UdpTransport.listen({
      host: setup.bind.host,
      port: setup.bind.port,
      ...(setup.flags.gossipAdvertise ? { advertise: setup.flags.gossipAdvertise } : {}),
    });
    const membership = new Membership({
      id: node.nodeId,
      transport,
      preset: setup.preset,
      ...(setup.keyring ? { keyring: setup.keyring } : {}),
      logger,
    });
    const view = new GossipView({
      node,
      membership,
      clock: systemClock,
      onChange: (nodes) => node.setPeers(nodes),
    });
    view.start();
    membership.start();
    const g = new NodeGossip(membership, view, logger);
    g.joinInBackground(setup.seeds);
    return g;
  }

  /** "host:port" of this node's gossip endpoint. */
  get address(): string {
    return this.membership.address;
  }

  /**
   * Joins through the seeds; while none answers (they may be starting too) tries again with
   * backoff from 1 s to 30 s, logging each failure.
   */
  private joinInBackground(seeds: string[]): void {
    if (seeds.length === 0) return;
    let delay = 1000;
    const attempt = () => {
      if (this.stopped) return;
      this.membership.join(seeds).then(
        (n) => this.logger.info({ event: "joined", seeds, answered: n }, `joined through ${n} seed(s)`),
        (err: unknown) => {
          if (this.stopped) return;
          this.logger.warn(
            { event: "join-failed", seeds, err: String(err), retryIn: delay },
            `no seed answered; trying again in ${delay} ms`,
          );
          this.joining = systemClock.timeout(delay, attempt);
          delay = Math.min(delay * 2, 30_000);
        },
      );
    };
    attempt();
  }

  /** Leaves the cluster gracefully (others see `left`, not `dead`) and stops. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.joining?.cancel();
    this.view.stop();
    await this.membership.leave(2000);
    await this.membership.stop();
  }
}
