import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { LifelineClient } from "./client.ts";

/**
 * A client's Prometheus metrics, for the application to mount on its own `/metrics`
 * (README "Metrics"):
 *
 *   import { clientMetrics } from "lifeline/client";
 *   const registry = clientMetrics(client);               // or { registry: yours }
 *   app.get("/metrics", async (_, res) => res.type(registry.contentType).send(await registry.metrics()));
 *
 * Several clients can share one registry when each has its own `client` label.
 */
export interface ClientMetricsOptions {
  /** Register into this registry (yours, or prom-client's global `register`). Default: a new one. */
  registry?: Registry;
  /** Value of the `client` label. Default: the client's `name` option, else "default". */
  label?: string;
}

/** Failover times, seconds: 10 ms to a minute (a classic client's 5 s timeouts land high). */
export const FAILOVER_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

interface Entry {
  client: LifelineClient;
  label: { client: string };
}

/** The metrics of one registry: created once, shared by every client registered into it. */
interface RegistryMetrics {
  clients: Entry[];
  reconnects: Counter<string>;
  failovers: Counter<string>;
  failoverTime: Histogram<string>;
  sessionsLost: Counter<string>;
}

const byRegistry = new WeakMap<Registry, RegistryMetrics>();

function metricsOf(registry: Registry): RegistryMetrics {
  const known = byRegistry.get(registry);
  if (known) return known;
  const registers = [registry];
  const clients: Entry[] = [];
  const counter = (name: string, help: string) =>
    new Counter({ name, help, labelNames: ["client"], registers });
  const m: RegistryMetrics = {
    clients,
    reconnects: counter(
      "lifeline_client_reconnects_total",
      "Reconnect attempts after the connection was lost or a dial failed",
    ),
    failovers: counter("lifeline_client_failovers_total", "Moves to another node after losing one"),
    failoverTime: new Histogram({
      name: "lifeline_client_failover_seconds",
      help: "Time from losing a node to being connected to another",
      labelNames: ["client"],
      buckets: FAILOVER_BUCKETS,
      registers,
    }),
    sessionsLost: counter(
      "lifeline_client_sessions_lost_total",
      "Sessions that expired before the client could resume them",
    ),
  };
  // Read from the clients at scrape time.
  new Gauge({
    name: "lifeline_client_outbox_messages",
    help: "Messages in the outbox: unsent, and sent but not yet acknowledged (inflight)",
    labelNames: ["client", "status"],
    registers,
    collect() {
      this.reset();
      for (const c of clients) {
        const q = c.client.status().queue;
        this.set({ ...c.label, status: "unsent" }, q.unsent);
        this.set({ ...c.label, status: "inflight" }, q.inflight);
      }
    },
  });
  new Gauge({
    name: "lifeline_client_connected",
    help: "1 while the client has a connection to a node",
    labelNames: ["client"],
    registers,
    collect() {
      this.reset();
      for (const c of clients) this.set(c.label, c.client.status().state === "connected" ? 1 : 0);
    },
  });
  byRegistry.set(registry, m);
  return m;
}

export function clientMetrics(client: LifelineClient, opts: ClientMetricsOptions = {}): Registry {
  const registry = opts.registry ?? new Registry();
  const label = { client: opts.label ?? client.name ?? "default" };
  const m = metricsOf(registry);
  m.clients.push({ client, label });
  m.reconnects.inc(label, 0);
  m.failovers.inc(label, 0);
  m.sessionsLost.inc(label, 0);
  m.failoverTime.zero(label); // every series exists from the start, at zero
  client.on("reconnecting", () => m.reconnects.inc(label));
  client.on("failover", (e) => {
    m.failovers.inc(label);
    m.failoverTime.observe(label, e.took / 1000);
  });
  client.on("session-lost", () => m.sessionsLost.inc(label));
  return registry;
}
