import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import type { Membership, MembershipCounters } from "../membership/index.ts";
import type { NodeCounters } from "../node/counters.ts";
import type { LifelineNode } from "../node/node.ts";

/**
 * A node's Prometheus metrics (README "Metrics"), read from the node at scrape time: its
 * own registry, so several nodes in one process (tests, embedding) each show their own.
 */
export function nodeMetrics(node: LifelineNode, opts: { process?: boolean } = {}): Registry {
  const registry = new Registry();
  if (opts.process !== false) collectDefaultMetrics({ register: registry });
  registry.setDefaultLabels({ node: node.nodeId });

  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  gauge(
    "lifeline_node_connections",
    "Open connections (clients, monitors, peers)",
    () => node.stats().connections,
  );
  gauge("lifeline_node_sessions", "Sessions held by this node", () => node.stats().sessions);
  gauge("lifeline_node_queue", "Client messages queued and not yet committed", () => node.stats().queue);
  gauge("lifeline_node_event_loop_lag_seconds", "The node's event-loop lag", () => node.loadNow.lag / 1000);
  gauge("lifeline_node_cpu_ratio", "CPU use, share of one core", () => node.loadNow.cpu);
  new Gauge({
    name: "lifeline_node_state",
    help: "1 for the state the node is in",
    labelNames: ["state"],
    registers: [registry],
    collect() {
      for (const s of ["healthy", "degraded", "draining", "stopped"])
        this.set({ state: s }, node.state === s ? 1 : 0);
    },
  });

  const counter = (name: string, help: string, key: keyof NodeCounters) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(node.counters[key]);
      },
    });
  counter("lifeline_node_messages_received_total", "MSG frames received, resends included", "messagesIn");
  counter("lifeline_node_messages_processed_total", "Messages run by the app and committed", "processed");
  counter(
    "lifeline_node_replies_sent_total",
    "Replies sent (acknowledgements with the answer)",
    "repliesOut",
  );
  counter(
    "lifeline_node_duplicates_suppressed_total",
    "Resent messages answered from the stored reply without running the app",
    "duplicates",
  );
  counter("lifeline_node_app_errors_total", "Messages the app failed on (LL_APP)", "appErrors");
  counter("lifeline_node_pushes_sent_total", "PUSH frames sent", "pushesOut");
  counter("lifeline_node_pushes_replayed_total", "Pushes sent again after a resume", "pushesReplayed");
  counter("lifeline_node_push_acks_total", "Pushes acknowledged by clients", "pushAcks");
  counter("lifeline_node_drains_total", "Graceful drains started", "drains");
  counter(
    "lifeline_node_store_outages_total",
    "Times the store became unavailable (the node was degraded until it returned)",
    "storeOutages",
  );
  new Counter({
    name: "lifeline_node_sessions_total",
    help: "Session events: created, resumed (here), detached (connection gone), moved (taken elsewhere)",
    labelNames: ["event"],
    registers: [registry],
    collect() {
      this.reset();
      const c = node.counters;
      this.inc({ event: "created" }, c.sessionsCreated);
      this.inc({ event: "resumed" }, c.sessionsResumed);
      this.inc({ event: "detached" }, c.sessionsDetached);
      this.inc({ event: "moved" }, c.sessionsMoved);
    },
  });
  return registry;
}

/** Gossip membership metrics (README "Metrics"), added to a node's registry when it gossips. */
export function gossipMetrics(m: Membership, registry: Registry): void {
  new Gauge({
    name: "lifeline_gossip_members",
    help: "Members this node knows, by state (itself included)",
    labelNames: ["state"],
    registers: [registry],
    collect() {
      const counts: Record<string, number> = { alive: 0, suspect: 0, dead: 0, left: 0 };
      for (const x of m.members()) counts[x.state] = (counts[x.state] ?? 0) + 1;
      for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
    },
  });
  new Gauge({
    name: "lifeline_gossip_health_score",
    help: "Lifeguard local health score (0 = healthy; higher stretches probe timeouts)",
    registers: [registry],
    collect() {
      this.set(m.healthScore);
    },
  });
  const labelled = (
    name: string,
    help: string,
    label: string,
    keys: Record<string, keyof MembershipCounters>,
  ) =>
    new Counter({
      name,
      help,
      labelNames: [label],
      registers: [registry],
      collect() {
        this.reset();
        const c = m.counters();
        for (const [value, key] of Object.entries(keys)) this.inc({ [label]: value }, c[key]);
      },
    });
  labelled("lifeline_gossip_packets_total", "Gossip datagrams sent and received", "direction", {
    sent: "packetsSent",
    received: "packetsReceived",
  });
  labelled("lifeline_gossip_probes_total", "Probes: direct pings, ping-req, TCP fallback", "kind", {
    direct: "probes",
    indirect: "indirectProbes",
    tcp: "fallbackProbes",
  });
  labelled("lifeline_gossip_dropped_total", "Gossip messages dropped, by reason", "reason", {
    bad_tag: "droppedBadTag",
    unencrypted: "droppedUnencrypted",
    malformed: "droppedMalformed",
    non_member: "droppedNonMember",
    unexpected: "droppedUnexpected",
  });
  labelled("lifeline_gossip_events_total", "Suspicions this node raised and refutations of itself", "event", {
    suspected: "suspicionsRaised",
    refuted: "refutations",
  });
}
