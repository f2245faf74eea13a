import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { HealthEngine } from "../health/engine.ts";
import { TARGET_STATES } from "../health/types.ts";
import type { HookDispatcher } from "../hooks/dispatcher.ts";

/**
 * The monitor's Prometheus metrics (README "Metrics" has the table). A registry of its own
 * per engine, not prom-client's global one: a process may run several monitors (tests,
 * libraries), and each `/metrics` shows only its own. Gauges that describe the present (state,
 * timeouts, phi, lag) are read from the engine at scrape time; counters and the probe
 * histogram follow its events.
 */
export interface MonitorMetrics {
  registry: Registry;
  /** Detaches from the engine. */
  close(): void;
}

/** Probe durations, seconds: 1 ms to 30 s, dense where loopback and LAN answers fall. */
export const PROBE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export function monitorMetrics(
  engine: HealthEngine,
  opts: { process?: boolean; extra?: (registry: Registry) => void } = {},
): MonitorMetrics {
  const registry = new Registry();
  // Process metrics (CPU, memory, file descriptors, GC) under the usual names.
  if (opts.process !== false) collectDefaultMetrics({ register: registry });

  new Gauge({
    name: "lifeline_target_up",
    help: "1 when the target should receive traffic (healthy or degraded), 0 otherwise",
    labelNames: ["target"],
    registers: [registry],
    collect() {
      this.reset();
      for (const t of engine.snapshot())
        this.set({ target: t.id }, t.state === "healthy" || t.state === "degraded" ? 1 : 0);
    },
  });
  new Gauge({
    name: "lifeline_target_state",
    help: "1 for the state the target is in, 0 for the others",
    labelNames: ["target", "state"],
    registers: [registry],
    collect() {
      this.reset();
      for (const t of engine.snapshot())
        for (const s of TARGET_STATES) this.set({ target: t.id, state: s }, t.state === s ? 1 : 0);
    },
  });
  new Gauge({
    name: "lifeline_target_state_since_seconds",
    help: "Unix time the target entered its current state",
    labelNames: ["target"],
    registers: [registry],
    collect() {
      this.reset();
      for (const t of engine.snapshot()) this.set({ target: t.id }, t.since / 1000);
    },
  });
  new Gauge({
    name: "lifeline_target_availability_ratio",
    help: "Fraction of the observed time the target was not down, per window",
    labelNames: ["target", "window"],
    registers: [registry],
    collect() {
      this.reset();
      for (const t of engine.snapshot())
        for (const [w, v] of Object.entries(t.trends.availability))
          if (v !== null) this.set({ target: t.id, window: w }, v);
    },
  });
  new Gauge({
    name: "lifeline_check_timeout_seconds",
    help: "Timeout the check's next attempt gets (adaptive: from its RTT estimate)",
    labelNames: ["target", "check"],
    registers: [registry],
    collect() {
      this.reset();
      for (const t of engine.snapshot())
        for (const c of t.checks) this.set({ target: t.id, check: c.name }, c.timeout / 1000);
    },
  });
  new Gauge({
    name: "lifeline_check_srtt_seconds",
    help: "Smoothed round-trip time of the check's successful probes",
    labelNames: ["target", "check"],
    registers: [registry],
    collect() {
      this.reset();
      for (const t of engine.snapshot())
        for (const c of t.checks)
          if (c.srtt !== null) this.set({ target: t.id, check: c.name }, c.srtt / 1000);
    },
  });
  new Gauge({
    name: "lifeline_check_phi",
    help: "Phi-accrual suspicion of heartbeat checks at their last result (0 while heartbeats flow)",
    labelNames: ["target", "check"],
    registers: [registry],
    collect() {
      this.reset();
      for (const t of engine.snapshot())
        for (const c of t.checks) {
          if (c.type !== "heartbeat" || !c.last) continue;
          const phi = c.last.detail?.phi;
          this.set({ target: t.id, check: c.name }, typeof phi === "number" ? phi : 0);
        }
    },
  });
  new Gauge({
    name: "lifeline_monitor_event_loop_lag_seconds",
    help: "Largest event-loop lag of the monitor over the last 10 s (its own health)",
    registers: [registry],
    collect() {
      this.set(engine.local.lag() / 1000);
    },
  });
  new Gauge({
    name: "lifeline_monitor_probes",
    help: "Probes in flight and waiting for a slot (monitor.maxInFlight)",
    labelNames: ["status"],
    registers: [registry],
    collect() {
      const l = engine.load();
      this.set({ status: "in_flight" }, l.inFlight);
      this.set({ status: "queued" }, l.queued);
    },
  });
  new Gauge({
    name: "lifeline_monitor_targets",
    help: "Targets configured",
    registers: [registry],
    collect() {
      this.set(engine.ids().length);
    },
  });

  const duration = new Histogram({
    name: "lifeline_probe_duration_seconds",
    help: "Duration of counted probe attempts (spoiled and provisional ones left out)",
    labelNames: ["target", "check", "status"],
    buckets: PROBE_BUCKETS,
    registers: [registry],
  });
  const failures = new Counter({
    name: "lifeline_probe_failures_total",
    help: "Failed probe attempts by error kind",
    labelNames: ["target", "check", "kind"],
    registers: [registry],
  });
  const spoiled = new Counter({
    name: "lifeline_probe_spoiled_total",
    help: "Probe results not counted because the monitor itself stalled",
    labelNames: ["target", "check"],
    registers: [registry],
  });
  const transitions = new Counter({
    name: "lifeline_state_transitions_total",
    help: "State changes of targets",
    labelNames: ["target", "from", "to"],
    registers: [registry],
  });
  const onResult: Parameters<typeof engine.on<"result">>[1] = (r) => {
    if (r.spoiled) {
      spoiled.inc({ target: r.target, check: r.check });
      return;
    }
    spoiled.inc({ target: r.target, check: r.check }, 0); // the series exists from the start
    if (r.provisional) return;
    duration.observe({ target: r.target, check: r.check, status: r.status }, r.latency / 1000);
    if (r.status === "fail") failures.inc({ target: r.target, check: r.check, kind: r.kind ?? "unknown" });
  };
  const onState: Parameters<typeof engine.on<"state">>[1] = (t) =>
    transitions.inc({ target: t.target, from: t.from, to: t.to });
  const onConfig: Parameters<typeof engine.on<"config">>[1] = (c) => {
    // A removed target's series go, so graphs do not show it forever.
    if (c.removed.length > 0) void dropTargets([duration, failures, spoiled, transitions], c.removed);
  };
  engine.on("result", onResult);
  engine.on("state", onState);
  engine.on("config", onConfig);
  opts.extra?.(registry);
  return {
    registry,
    close() {
      engine.off("result", onResult);
      engine.off("state", onState);
      engine.off("config", onConfig);
    },
  };
}

type Labelled = Counter<string> | Histogram<string>;

/** Drops every series of the given targets from labelled metrics. */
async function dropTargets(metrics: Labelled[], targets: readonly string[]): Promise<void> {
  const gone = new Set(targets);
  for (const m of metrics) {
    const seen = new Set<string>();
    for (const v of (await m.get()).values) {
      const { le: _le, ...labels } = v.labels as Record<string, string | number>;
      if (!gone.has(String(labels.target))) continue;
      const key = JSON.stringify(labels);
      if (seen.has(key)) continue;
      seen.add(key);
      m.remove(labels);
    }
  }
}

/** Hook delivery counters (README "Metrics"), read from the dispatcher at scrape time. */
export function hookMetrics(registry: Registry, hooks: HookDispatcher): void {
  new Counter({
    name: "lifeline_hook_notifications_total",
    help: "Hook notifications by outcome: sent, failed (tried, given up), dropped (never tried), suppressed (flapping)",
    labelNames: ["hook", "outcome"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [hook, s] of Object.entries(hooks.statsByHook()))
        for (const outcome of ["sent", "failed", "dropped", "suppressed"] as const)
          this.inc({ hook, outcome }, s[outcome]);
    },
  });
  new Counter({
    name: "lifeline_hook_retries_total",
    help: "Webhook attempts beyond each notification's first",
    labelNames: ["hook"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [hook, s] of Object.entries(hooks.statsByHook())) this.inc({ hook }, s.retries);
    },
  });
  new Gauge({
    name: "lifeline_hook_pending",
    help: "Notifications queued or being delivered",
    registers: [registry],
    collect() {
      this.set(hooks.pending());
    },
  });
}
