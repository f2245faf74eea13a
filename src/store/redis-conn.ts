/**
 * The Redis store's connections: the ioredis options that make a lost Redis fail fast
 * instead of queueing, and which errors mean "Redis is unavailable" rather than "this
 * request was refused".
 *
 * What ioredis would do by default, and why the store does otherwise:
 * - It queues commands while disconnected (`enableOfflineQueue`) and resends them after a
 *   reconnect (`autoResendUnfulfilledCommands`, `maxRetriesPerRequest` 20): a write could
 *   wait for minutes and then happen long after its caller gave up — a claim taking a session
 *   back from the node that claimed it meanwhile. Here a command sent while Redis is away
 *   fails at once, one lost with its connection fails then, and nothing is ever resent.
 * - It has no command timeout: against a frozen Redis (SIGSTOP, a VM pause, a network that
 *   drops packets) a command would wait for TCP to give up, many minutes. Here it fails after
 *   `commandTimeoutMs`, and the connection it waited on is dropped (`socketTimeout`) and made
 *   again, so a Redis that came back elsewhere (a Sentinel failover) is found.
 * A command that failed may still have been carried out (its reply was what got lost); the
 * store then reports a failure for a write that happened, never the reverse, and the node's
 * de-duplication answers the client's resend from the stored reply.
 */
import type { ConnectionOptions } from "node:tls";
import type { RedisOptions } from "ioredis";
import { LifelineError } from "../errors.ts";
import type { RedisTarget } from "./redis-url.ts";

/** Connection settings of a RedisStore (the rest of its options are in redis.ts). */
export interface RedisConnectionOptions {
  /** How long one command may take before it fails with LL_STORE_UNAVAILABLE and the store
   *  turns unhealthy, ms. Default 2000. Shorter notices a frozen or cut-off Redis sooner (the
   *  node turns `degraded` and stops acknowledging sooner); too short fails commands of a
   *  Redis that is only busy (a slow disk fsync, a large sweep). */
  commandTimeoutMs?: number;
  /** How long one attempt to connect (TCP, TLS, AUTH, ready check) may take, ms; also how
   *  long `openStore` waits for the first connection. Default 5000. */
  connectTimeoutMs?: number;
  /** Longest pause between reconnection attempts, ms. Default 1000. Attempts back off from
   *  ~25 ms, doubling, with jitter so that many nodes do not reconnect in lockstep; a lower
   *  cap finds a restarted Redis sooner at the cost of more attempts while it is down. */
  maxReconnectDelayMs?: number;
  /** TLS settings (a CA, client certificates) for `rediss://`; merged over the defaults. */
  tls?: ConnectionOptions;
}

export const CONNECTION_DEFAULTS = {
  commandTimeoutMs: 2000,
  connectTimeoutMs: 5000,
  maxReconnectDelayMs: 1000,
} as const;

/** Reconnection delay for attempt `times` (1-based): 25 ms doubling up to `cap`, 50–100 % of it. */
export function reconnectDelay(times: number, cap: number): number {
  const base = Math.min(cap, 25 * 2 ** Math.min(times - 1, 16));
  return Math.round(base * (0.5 + Math.random() / 2));
}

/** Redis errors that say the server cannot take writes now, not that the request was bad. */
const UNAVAILABLE_REPLIES = /^(OOM|READONLY|LOADING|MASTERDOWN|BUSY|NOREPLICAS|CLUSTERDOWN|TRYAGAIN)\b/;

/** The ioredis options of one of the store's connections. */
export function clientOptions(
  target: RedisTarget,
  opts: RedisConnectionOptions,
  role: "commands" | "subscriber",
): RedisOptions {
  const commandTimeout = opts.commandTimeoutMs ?? CONNECTION_DEFAULTS.commandTimeoutMs;
  const cap = opts.maxReconnectDelayMs ?? CONNECTION_DEFAULTS.maxReconnectDelayMs;
  const options: RedisOptions = {
    db: target.db,
    connectionName: role === "commands" ? "lifeline" : "lifeline-watch",
    disableClientInfo: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    autoResubscribe: false, // the store subscribes again itself, then tells watchers to re-read
    commandTimeout,
    socketTimeout: commandTimeout,
    connectTimeout: opts.connectTimeoutMs ?? CONNECTION_DEFAULTS.connectTimeoutMs,
    keepAlive: 10_000,
    retryStrategy: (times) => reconnectDelay(times, cap),
    // A master demoted by a Sentinel failover answers READONLY: reconnect, asking the
    // sentinels for the new master.
    reconnectOnError: (err) => /^READONLY\b/.test(err.message),
  };
  if (target.username !== undefined) options.username = target.username;
  if (target.password !== undefined) options.password = target.password;
  if (target.tls) options.tls = { ...opts.tls };
  if (target.sentinelMaster !== undefined) {
    options.sentinels = target.addresses.map((a) => ({ host: a.host, port: a.port }));
    options.name = target.sentinelMaster;
    options.sentinelCommandTimeout = commandTimeout;
    if (target.tls) options.enableTLSForSentinelMode = true;
  } else {
    options.host = target.addresses[0]!.host;
    options.port = target.addresses[0]!.port;
  }
  return options;
}

/** Whether an error means Redis cannot serve us now (rather than that it refused this request). */
export function isUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return true;
  if (err.name === "ReplyError") return UNAVAILABLE_REPLIES.test(err.message);
  return true; // timeouts, closed or unwritable connections, socket errors
}

/** An ioredis error as a LifelineError: LL_STORE_UNAVAILABLE or LL_STORE_FAILED. */
export function storeError(err: unknown, display: string): LifelineError {
  if (err instanceof LifelineError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  if (isUnavailable(err)) {
    return new LifelineError("LL_STORE_UNAVAILABLE", `Redis ${display} is unavailable: ${msg}`, {
      cause: err,
    });
  }
  return new LifelineError("LL_STORE_FAILED", `Redis ${display}: ${msg}`, { cause: err });
}
