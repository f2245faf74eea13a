import type { Store } from "../store/types.ts";
import type { Clock } from "../util/clock.ts";
import type { Logger } from "../util/logger.ts";
import type { App } from "./app.ts";

/**
 * Options of a Lifeline node. Every duration is in milliseconds; each default has its
 * reason beside it in NODE_DEFAULTS.
 */
export interface NodeLimits {
  /** Open connections accepted at once; more are answered ERROR LL_OVERLOADED and closed.
   *  Bounds descriptors and memory. */
  maxConnections: number;
  /** Sessions held in memory (attached or draining) at once; new sessions beyond it are refused. */
  maxSessions: number;
  /** Largest frame accepted, bytes (also announced in WELCOME). */
  maxFrame: number;
  /** Time a new connection has to send HELLO; slow or idle handshakes are dropped. */
  handshakeTimeout: number;
  /** Client messages queued for the handler per connection before the node stops reading
   *  from it (backpressure: the client's own buffer fills instead of the node's memory). */
  maxQueue: number;
  /** Bytes waiting to be written to a connection before the node stops reading from it. */
  maxWriteBuffer: number;
  /** PUSH messages sent and not yet acknowledged per session; more wait in the store. */
  pushWindow: number;
}

export interface NodeOptions {
  /** Node id, unique in the cluster (shown to clients and in TOPOLOGY). */
  id: string;
  /** Address to listen on. Default 127.0.0.1. */
  host?: string;
  /** Port; 0 picks a free one. */
  port: number;
  /** "host:port" clients should use to reach this node. Default: the listening address. */
  advertise?: string;
  store: Store;
  app: App;
  limits?: Partial<NodeLimits>;
  /** How long a session survives without a connection. */
  sessionTtl?: number;
  /** Bounds of the heartbeat interval a connection may ask for. */
  heartbeat?: { min: number; max: number };
  /** Longest wait, on drain, for clients to move and acknowledgements to be flushed. */
  drainDeadline?: number;
  /** How often expired sessions are swept from the store. */
  sweepInterval?: number;
  /**
   * How often the node asks its store whether it can write now (a Redis store that lost its
   * server cannot), ms. Default 250. While it cannot, the node reports itself `degraded`
   * with the reason (heartbeats, TOPOLOGY, /readyz), so monitors and clients prefer other
   * nodes; it never acknowledges a message it could not store. The check reads a flag the
   * store keeps, so a shorter interval costs nothing but timer wake-ups and notices an
   * outage (and the recovery) sooner; the first failed write notices it at once anyway.
   */
  storeCheckInterval?: number;
  clock?: Clock;
  logger?: Logger;
}

export const NODE_DEFAULTS = {
  host: "127.0.0.1",
  limits: {
    maxConnections: 10_000, // well under the usual 20k–1M descriptor limits; 1,000 idle ones cost ~10 MB
    maxSessions: 100_000,
    maxFrame: 1024 * 1024, // 1 MiB: payloads are messages, not files
    handshakeTimeout: 5000, // a real client sends HELLO in its first round trip
    maxQueue: 1024,
    maxWriteBuffer: 4 * 1024 * 1024,
    pushWindow: 1024,
  } satisfies NodeLimits,
  sessionTtl: 60_000, // a client has a minute to come back (to any node) and resume
  heartbeat: { min: 100, max: 60_000 },
  drainDeadline: 10_000, // clients move within a few round trips; this bounds a stuck one
  sweepInterval: 5000,
  storeCheckInterval: 250,
} as const;
