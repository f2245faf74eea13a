import { ConfigError } from "../errors.ts";

/**
 * Tuning of the SWIM + Lifeguard failure detector. All durations are milliseconds. The
 * presets follow hashicorp/memberlist's (Serf and Consul run on them), `wan` and `local`
 * derived from `lan` as memberlist's are. Lifeline's `lan` is memberlist's DefaultLANConfig
 * with a shorter protocol period (500 ms, probe timeout 200 ms) and twice the retransmits
 * (retransmitMult 8): measured side by side with Serf (bench/gossip-vs-serf), it declares a
 * crashed or frozen member dead in ~3 s where Serf takes ~5.7 s, with no more false failures
 * under 20 %/40 % packet loss or with a member that keeps stalling for 1.5 s. The shorter
 * period raises more (refuted) suspicions under loss; the extra retransmits make sure each
 * refutation reaches every suspector, which is what keeps them from becoming deaths.
 * memberlist's own timing: `{ probeInterval: 1000, probeTimeout: 500, retransmitMult: 4 }`.
 * The trade-off shows at scale: simulated with 1,000 members (bench/swim-sim, 20 s runs),
 * this preset falsely declared 3 live members dead under 20 % loss and 13 when 10 % of the
 * members answer 1 s late (500 ms each way, twice the protocol period); memberlist's timing
 * declared none. For large clusters or members that stall for seconds, use memberlist's
 * timing (the overrides above) or `wan`.
 *
 * With N members, the `lan` preset detects a crashed member in about
 *   one protocol period to reach it in the probe order (on average N/2 periods to be probed
 *   by a given node, but some node probes it within ~1 period) + probeInterval (failed probe)
 *   + suspicion timeout (min..max below),
 * i.e. ~3 s at N ≤ 10 when others confirm the suspicion, ~13 s at most when nobody does.
 */
export interface MembershipConfig {
  /**
   * Name of the cluster, carried in every message (and authenticated with the key). A message
   * with another name is from a non-member and is dropped and counted. Default "lifeline".
   */
  clusterName: string;
  /**
   * Time between probes of one member (the protocol period), ms. Default 500 (lan; memberlist
   * 1000). Lower detects faster at the cost of more packets: each member sends ~2 packets per
   * period, so 4 per second at 500 ms.
   */
  probeInterval: number;
  /**
   * How long a direct ping waits for its ack before ping-req goes to `indirectChecks` others,
   * ms. Default 200 (lan; memberlist 500). Should be well above the 99th percentile RTT (a
   * LAN's is under a millisecond; use `wan` across regions); too low causes needless indirect
   * probes, too high leaves the indirect probes too little of the period.
   */
  probeTimeout: number;
  /**
   * Members asked to ping a target that missed its direct ping (ping-req). Default 3. More
   * makes a false suspicion from one bad link less likely, at k more packets per failed probe.
   */
  indirectChecks: number;
  /**
   * Also ping an unanswered target over the reliable (TCP) channel during the indirect phase,
   * so that a member whose UDP is blocked but is alive is not suspected. Default true.
   */
  tcpFallback: boolean;
  /**
   * Shortest suspicion timeout = suspicionMult · max(1, log10 N) · probeInterval. Default 4
   * (lan): 2 s up to 10 members, 4 s at 100. Lower detects faster; higher gives a slow but
   * alive member more time to refute (fewer false deaths).
   */
  suspicionMult: number;
  /**
   * Longest suspicion timeout = suspicionMaxTimeoutMult · shortest. Default 6 (lan). A
   * suspicion starts at the longest and shrinks towards the shortest as independent
   * confirmations arrive (Lifeguard), so a lone (possibly unhealthy) suspector is slow to kill.
   */
  suspicionMaxTimeoutMult: number;
  /**
   * Updates are piggybacked retransmitMult · ⌈log10(N + 1)⌉ times. Default 8 (lan; memberlist
   * 4). Higher spreads updates more surely under loss — a refutation that misses a suspector
   * becomes a false death — at more bytes per packet.
   */
  retransmitMult: number;
  /**
   * Time between gossip rounds (updates sent to `gossipNodes` random members besides the
   * piggyback on probes), ms. Default 200 (lan). 0 disables it. Only runs while updates wait.
   */
  gossipInterval: number;
  /** Members each gossip round goes to. Default 3 (lan). More spreads faster, costs more. */
  gossipNodes: number;
  /**
   * For how long gossip still goes to members declared dead, so a falsely declared member
   * learns it and refutes; also how long members that left are remembered, ms. Default
   * 30 000 (lan).
   */
  gossipToTheDeadTime: number;
  /**
   * Every this often, a push-pull is tried with one random member held dead (as Serf's
   * reconnect), so that the two sides of a healed partition find each other again even after
   * gossip to the dead has stopped, ms. Default 30 000. 0 disables it.
   */
  reconnectInterval: number;
  /**
   * How long a dead member is remembered (and retried by reconnectInterval) before it is
   * forgotten, ms. Default 6 h. Longer heals longer partitions; each costs ~200 bytes.
   */
  reconnectTimeout: number;
  /**
   * Full state exchange (push-pull over TCP) with one random member, ms; scaled up with the
   * cluster size beyond 32 members (pushPullInterval · (⌈log2 N − 5⌉ + 1)). Repairs what
   * gossip lost (anti-entropy). Default 30 000 (lan). 0 disables it (join still pushes-pulls).
   */
  pushPullInterval: number;
  /**
   * Lifeguard's local health multiplier: while the local node misses acks it should have had,
   * its probe interval and probe timeout are stretched by (score + 1), score ≤ this − 1.
   * Default 8. 1 disables it.
   */
  awarenessMaxMultiplier: number;
  /**
   * A protocol-period timer firing this much later than due means the local event loop is
   * stalled (Lifeguard: the local node is the unhealthy one): the health score rises by one.
   * ms. Default 500 (lan), 200 (local), 3000 (wan). 0 disables it.
   */
  lagThreshold: number;
  /** Timeout of a reliable (TCP) exchange: connect, request and response, ms. Default 10 000. */
  reliableTimeout: number;
  /**
   * Largest UDP payload sent, bytes (after encryption). Default 1400: fits a 1500-byte
   * Ethernet MTU with IP and UDP headers. Piggybacked updates fill what the message leaves.
   */
  maxPacketSize: number;
}

const lan: MembershipConfig = {
  clusterName: "lifeline",
  probeInterval: 500,
  probeTimeout: 200,
  indirectChecks: 3,
  tcpFallback: true,
  suspicionMult: 4,
  suspicionMaxTimeoutMult: 6,
  retransmitMult: 8,
  gossipInterval: 200,
  gossipNodes: 3,
  gossipToTheDeadTime: 30_000,
  reconnectInterval: 30_000,
  reconnectTimeout: 6 * 3600_000,
  pushPullInterval: 30_000,
  awarenessMaxMultiplier: 8,
  lagThreshold: 500,
  reliableTimeout: 10_000,
  maxPacketSize: 1400,
};

/** Higher latency, more loss: longer timeouts, slower rounds (memberlist's WAN preset). */
const wan: MembershipConfig = {
  ...lan,
  probeInterval: 5000,
  probeTimeout: 3000,
  suspicionMult: 6,
  gossipInterval: 500,
  gossipNodes: 4,
  gossipToTheDeadTime: 60_000,
  pushPullInterval: 60_000,
  lagThreshold: 3000,
  reliableTimeout: 30_000,
};

/** One host or loopback: RTTs in microseconds, so faster timeouts (memberlist's local). */
const local: MembershipConfig = {
  ...lan,
  probeTimeout: 200,
  indirectChecks: 1,
  suspicionMult: 3,
  retransmitMult: 2,
  gossipInterval: 100,
  gossipToTheDeadTime: 15_000,
  reconnectInterval: 10_000,
  pushPullInterval: 15_000,
  lagThreshold: 200,
  reliableTimeout: 1000,
};

export const MEMBERSHIP_PRESETS = { lan, wan, local } as const;
export type MembershipPreset = keyof typeof MEMBERSHIP_PRESETS;

/** A preset with overrides, validated; a ConfigError names every invalid field. */
export function membershipConfig(
  preset: MembershipPreset = "lan",
  overrides: Partial<MembershipConfig> = {},
): MembershipConfig {
  const base = MEMBERSHIP_PRESETS[preset];
  if (!base) throw new ConfigError([{ path: "membership.preset", message: `unknown preset "${preset}"` }]);
  const config = { ...base, ...overrides };
  validate(config);
  return config;
}

function validate(c: MembershipConfig): void {
  const issues: Array<{ path: string; message: string }> = [];
  const check = (field: keyof MembershipConfig, ok: boolean, message: string) => {
    if (!ok) issues.push({ path: `membership.${field}`, message });
  };
  const int = (v: number) => Number.isInteger(v);
  check(
    "clusterName",
    typeof c.clusterName === "string" && Buffer.byteLength(c.clusterName) <= 64,
    "must be a string of at most 64 bytes",
  );
  check("probeInterval", c.probeInterval > 0, "must be > 0 ms");
  check("probeTimeout", c.probeTimeout > 0, "must be > 0 ms");
  check(
    "probeTimeout",
    !(c.probeTimeout >= c.probeInterval),
    "must be shorter than probeInterval (the indirect probes need the rest of the period)",
  );
  check("indirectChecks", int(c.indirectChecks) && c.indirectChecks >= 0, "must be an integer ≥ 0");
  check("suspicionMult", c.suspicionMult >= 1, "must be ≥ 1");
  check("suspicionMaxTimeoutMult", c.suspicionMaxTimeoutMult >= 1, "must be ≥ 1");
  check("retransmitMult", int(c.retransmitMult) && c.retransmitMult >= 1, "must be an integer ≥ 1");
  check("gossipInterval", c.gossipInterval >= 0, "must be ≥ 0 ms (0 disables gossip rounds)");
  check("gossipNodes", int(c.gossipNodes) && c.gossipNodes >= 0, "must be an integer ≥ 0");
  check("gossipToTheDeadTime", c.gossipToTheDeadTime >= 0, "must be ≥ 0 ms");
  check("reconnectInterval", c.reconnectInterval >= 0, "must be ≥ 0 ms (0 disables it)");
  check("reconnectTimeout", c.reconnectTimeout >= 0, "must be ≥ 0 ms");
  check("pushPullInterval", c.pushPullInterval >= 0, "must be ≥ 0 ms (0 disables it)");
  check(
    "awarenessMaxMultiplier",
    int(c.awarenessMaxMultiplier) && c.awarenessMaxMultiplier >= 1,
    "must be an integer ≥ 1",
  );
  check("lagThreshold", c.lagThreshold >= 0, "must be ≥ 0 ms (0 disables it)");
  check("reliableTimeout", c.reliableTimeout > 0, "must be > 0 ms");
  check("maxPacketSize", int(c.maxPacketSize) && c.maxPacketSize >= 512, "must be an integer ≥ 512 bytes");
  if (issues.length > 0) throw new ConfigError(issues);
}
