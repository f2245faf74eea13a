import type { Clock, Random } from "../util/clock.ts";
import type { Logger } from "../util/logger.ts";
import type { Connector } from "./link.ts";

/** What happens to a message sent while the outbox is full. */
export type OverflowPolicy = "reject" | "drop-oldest";

export interface OutboxOptions {
  /** Messages held (waiting to be sent plus sent and not yet acknowledged). Default 10,000.
   *  More rides out a longer outage; each costs its payload in memory (or on disk). */
  maxMessages?: number;
  /** Payload bytes held, all messages together. Default 16 MiB. */
  maxBytes?: number;
  /**
   * When full: `reject` (default) fails the new `send()` with `LL_OUTBOX_FULL`; `drop-oldest`
   * drops the oldest message not yet sent (its `send()` rejects with `LL_OUTBOX_DROPPED` and
   * a `dropped` event names it) to make room. Messages already sent are never dropped: the
   * cluster may have processed them. Either way the caller is told; nothing is lost silently.
   */
  overflow?: OverflowPolicy;
  /**
   * A SQLite file that keeps the session (id, resume token, positions) and every message not
   * yet acknowledged, so a restarted client resumes where it stopped and resends what the
   * cluster may lack. Default: none (memory only). Costs a synchronous write per message.
   */
  path?: string;
}

export interface ClientOptions {
  /** Servers to start from, "host:port". Nodes' TOPOLOGY adds the rest of the cluster. */
  servers: string[];
  /** Shown in the nodes' logs. */
  name?: string;
  /** Learn servers from the nodes' TOPOLOGY (and GOAWAY). Default true. Turn it off when
   *  the addresses the nodes advertise are not reachable from here (NAT, a proxy in front):
   *  then only `servers` are used. */
  topology?: boolean;
  /**
   * `lifeline` (default): racing connects, adaptive timeouts, topology, jittered backoff,
   * heartbeat watching. `classic`: the seed's loop, for comparison: each server in the given
   * order with the full `connectTimeout`, then a fixed `classicRetryDelay` sleep when all
   * failed; no racing, no topology, no heartbeat watching (a dead connection is noticed only
   * when TCP says so).
   */
  strategy?: "lifeline" | "classic";
  /** Timeout of a connect attempt (TCP and handshake) before any was measured, ms. Default
   *  5,000 (the seed's). Later attempts use what was measured (RFC 6298 style), at least
   *  `minConnectTimeout`, at most this. */
  connectTimeout?: number;
  /** Floor of the adaptive connect timeout, ms. Default 500: a loaded node that answers in
   *  300 ms is slow, not dead. */
  minConnectTimeout?: number;
  /** Delay before racing the next server while an attempt is still pending, ms. Default 250.
   *  Smaller fails over faster from a slow server; larger opens fewer spare connections. */
  raceDelay?: number;
  /** Attempts in flight at once during a race. Default 3. */
  maxParallel?: number;
  /** Backoff after every server failed: first delay (before jitter), ms. Default 100. */
  backoffBase?: number;
  /** Backoff cap, ms. Default 5,000. Full jitter: the delay is uniform in [0, d]. */
  backoffCap?: number;
  /** `classic` only: fixed sleep after all servers failed, ms. Default 3,000 (the seed's). */
  classicRetryDelay?: number;
  /** Heartbeat interval asked of the node, ms. Default 500. 0 turns heartbeats off. */
  heartbeat?: number;
  /** Silence (no frame at all) after which the connection is declared dead, ms. Default
   *  2,000 (4 heartbeats). Smaller detects a frozen node sooner; too small and a GC pause or a
   *  busy node causes needless failovers. Time this client's own event loop was blocked does
   *  not count. */
  deadAfter?: number;
  /** How long a server that just failed is avoided (tried only if nothing else is left), ms.
   *  Default 5,000. */
  avoidFor?: number;
  /** Messages sent and not yet acknowledged, at most. Default 256 (well inside the nodes'
   *  reply window of 1,024, so a resend always gets its stored reply back). */
  window?: number;
  outbox?: OutboxOptions;
  /** How long a GOAWAY lets in-flight messages finish before moving, ms. Default 1,000 (also
   *  capped at half the node's drain deadline). */
  goawayGrace?: number;
  /** Interval of PINGs that measure the round trip to the current node, ms. Default 5,000. */
  pingInterval?: number;
  clock?: Clock;
  random?: Random;
  /** The transport (tests use in-memory or faulty ones). Default: TCP. */
  connect?: Connector;
  logger?: Logger;
}

export const CLIENT_DEFAULTS = {
  strategy: "lifeline" as const,
  topology: true,
  connectTimeout: 5000,
  minConnectTimeout: 500,
  raceDelay: 250,
  maxParallel: 3,
  backoffBase: 100,
  backoffCap: 5000,
  classicRetryDelay: 3000,
  heartbeat: 500,
  deadAfter: 2000,
  avoidFor: 5000,
  window: 256,
  goawayGrace: 1000,
  pingInterval: 5000,
  outbox: { maxMessages: 10_000, maxBytes: 16 * 1024 * 1024, overflow: "reject" as OverflowPolicy },
};

export type ResolvedClientOptions = Required<
  Omit<ClientOptions, "outbox" | "clock" | "random" | "connect" | "logger" | "name">
> & {
  outbox: Required<Omit<OutboxOptions, "path">> & { path: string | undefined };
  name: string | undefined;
};

export function resolveClientOptions(o: ClientOptions): ResolvedClientOptions {
  const d = CLIENT_DEFAULTS;
  const r: ResolvedClientOptions = {
    servers: o.servers,
    name: o.name,
    strategy: o.strategy ?? d.strategy,
    topology: o.topology ?? (o.strategy === "classic" ? false : d.topology),
    connectTimeout: o.connectTimeout ?? d.connectTimeout,
    minConnectTimeout: o.minConnectTimeout ?? d.minConnectTimeout,
    raceDelay: o.raceDelay ?? d.raceDelay,
    maxParallel: o.maxParallel ?? d.maxParallel,
    backoffBase: o.backoffBase ?? d.backoffBase,
    backoffCap: o.backoffCap ?? d.backoffCap,
    classicRetryDelay: o.classicRetryDelay ?? d.classicRetryDelay,
    heartbeat: o.heartbeat ?? d.heartbeat,
    deadAfter: o.deadAfter ?? d.deadAfter,
    avoidFor: o.avoidFor ?? d.avoidFor,
    window: o.window ?? d.window,
    goawayGrace: o.goawayGrace ?? d.goawayGrace,
    pingInterval: o.pingInterval ?? d.pingInterval,
    outbox: {
      maxMessages: o.outbox?.maxMessages ?? d.outbox.maxMessages,
      maxBytes: o.outbox?.maxBytes ?? d.outbox.maxBytes,
      overflow: o.outbox?.overflow ?? d.outbox.overflow,
      path: o.outbox?.path,
    },
  };
  const positive: Array<keyof ResolvedClientOptions> = [
    "connectTimeout",
    "minConnectTimeout",
    "maxParallel",
    "window",
  ];
  for (const k of positive) {
    if (!(Number(r[k]) > 0)) throw new RangeError(`client option ${k} must be > 0, not ${String(r[k])}`);
  }
  if (r.servers.length === 0) throw new RangeError("client option servers: give at least one host:port");
  if (r.window > 1024)
    throw new RangeError("client option window must be at most 1024 (the nodes' reply window)");
  if (r.heartbeat > 0 && r.deadAfter < r.heartbeat * 2)
    throw new RangeError("client option deadAfter must be at least twice heartbeat");
  if (r.outbox.maxMessages < r.window) r.window = r.outbox.maxMessages;
  return r;
}
