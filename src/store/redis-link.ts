/**
 * The Redis store's two connections and what they know about Redis's health.
 *
 * `RedisLink` — the command connection. `run` turns ioredis errors into LifelineErrors
 * (redis-conn.ts) and keeps `healthy()`: false while the connection is down, and after a
 * command timed out or Redis refused a write for its own sake (out of memory, read-only
 * replica), until a write succeeds again — the caller's, or the link's own probe (a tiny SET
 * every PROBE_MS; a PING would succeed on a Redis that cannot write). ioredis reconnects by
 * itself; each return (reconnected, or answering again) calls `onRecovered`.
 *
 * `ChangeFeed` — the subscriber connection behind `watch`: it subscribes to the changes
 * channel every time it (re)connects, and once the subscription is confirmed tells watchers
 * `{ kind: "any" }` (pub/sub keeps nothing for an absent subscriber: what was announced
 * meanwhile must be re-read). Announcements tagged with this store's own origin are skipped:
 * the store reported them when it wrote them.
 */

import { Redis } from "ioredis";
import { LifelineError } from "../errors.ts";
import type { Logger } from "../util/logger.ts";
import type { Watchers } from "./common.ts";
import { CONNECTION_DEFAULTS, clientOptions, type RedisConnectionOptions, storeError } from "./redis-conn.ts";
import type { RedisTarget } from "./redis-url.ts";

/** How often an unhealthy link tries a write to find out that Redis takes them again, ms. */
const PROBE_MS = 500;

export interface LinkContext {
  /** The store's description, for logs. */
  description: string;
  logger: Logger;
  /** The key the probe writes (expires by itself after a minute). */
  probeKey: string;
  /** Called when Redis is back after an outage (never for the first connection). */
  onRecovered(): void;
}

export class RedisLink {
  readonly client: Redis;
  /** Why the link is unhealthy although connected (a command timed out…), if it is. */
  private trouble: string | undefined;
  private everReady = false;
  private lost = false;
  private lastError = "";
  private probeTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly target: RedisTarget,
    private readonly opts: RedisConnectionOptions,
    private readonly ctx: LinkContext,
  ) {
    this.client = new Redis(clientOptions(target, opts, "commands"));
    this.client.on("error", (err: Error) => {
      this.lastError = err.message;
    });
    this.client.on("close", () => {
      if (this.closed || this.lost || !this.everReady) return;
      this.lost = true;
      ctx.logger.warn(
        { event: "store-connection-lost", store: ctx.description, err: this.lastError },
        "lost the connection to Redis; reconnecting",
      );
    });
    this.client.on("ready", () => {
      this.everReady = true;
      if (!this.lost) return;
      this.lost = false;
      this.trouble = undefined;
      ctx.logger.info({ event: "store-reconnected", store: ctx.description }, "reconnected to Redis");
      ctx.onRecovered();
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  healthy(): boolean {
    return !this.closed && this.client.status === "ready" && this.trouble === undefined;
  }

  /** Resolves once connected; rejects with LL_STORE_UNAVAILABLE after `timeoutMs`. */
  async ready(timeoutMs = this.opts.connectTimeoutMs ?? CONNECTION_DEFAULTS.connectTimeoutMs): Promise<void> {
    if (this.closed) throw this.closedError();
    if (this.client.status === "ready") return;
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        this.client.off("ready", onReady);
        if (err) reject(err);
        else resolve();
      };
      const onReady = () => done();
      const timer = setTimeout(() => {
        const why = this.lastError ? `: ${this.lastError}` : "";
        done(new LifelineError("LL_STORE_UNAVAILABLE", `cannot reach Redis ${this.target.display}${why}`));
      }, timeoutMs);
      this.client.on("ready", onReady);
    });
  }

  /**
   * Runs one operation: LL_STORE_CLOSED after close; errors become LifelineErrors; a failure
   * for Redis's sake makes the link unhealthy (and starts the probe). A successful `write`
   * makes it healthy again (every script counts: Redis refuses a writing script before it
   * starts when it cannot write); a read does not (reads still work on a Redis out of memory).
   */
  async run<T>(fn: () => Promise<T>, write: boolean): Promise<T> {
    if (this.closed) throw this.closedError();
    let out: T;
    try {
      out = await fn();
    } catch (err) {
      if (this.closed) throw this.closedError();
      const e = storeError(err, this.target.display);
      if (e.code === "LL_STORE_UNAVAILABLE")
        this.unavailable(err instanceof Error ? err.message : String(err));
      throw e;
    }
    if (write && this.trouble !== undefined) this.back();
    return out;
  }

  /** QUITs (operations already sent finish first) and stops reconnecting. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.probeTimer);
    await quit(this.client);
  }

  closedError(): LifelineError {
    return new LifelineError("LL_STORE_CLOSED", `the Redis store ${this.target.display} is closed`);
  }

  private unavailable(why: string): void {
    if (this.trouble === undefined && this.client.status === "ready") {
      this.ctx.logger.warn(
        { event: "store-unavailable", store: this.ctx.description, err: why },
        "Redis refused or did not answer; the store is unhealthy until a write succeeds",
      );
    }
    this.trouble = why;
    this.probe();
  }

  private back(): void {
    this.trouble = undefined;
    this.ctx.logger.info(
      { event: "store-recovered", store: this.ctx.description },
      "Redis takes writes again",
    );
    this.ctx.onRecovered();
  }

  /** While unhealthy, every PROBE_MS: a tiny write when connected (else ioredis reconnects). */
  private probe(): void {
    if (this.probeTimer !== undefined || this.closed) return;
    this.probeTimer = setTimeout(() => {
      this.probeTimer = undefined;
      if (this.closed || this.trouble === undefined) return;
      if (this.client.status !== "ready") return this.probe();
      this.client.set(this.ctx.probeKey, "1", "PX", 60_000).then(
        () => {
          if (!this.closed && this.trouble !== undefined) this.back();
        },
        () => this.probe(),
      );
    }, PROBE_MS);
    this.probeTimer.unref();
  }
}

export class ChangeFeed {
  private readonly sub: Redis;
  private closed = false;

  constructor(
    target: RedisTarget,
    opts: RedisConnectionOptions,
    channel: string,
    private readonly origin: string,
    private readonly watchers: Watchers,
  ) {
    const sub = new Redis(clientOptions(target, opts, "subscriber"));
    this.sub = sub;
    sub.on("error", () => {}); // the command connection reports outages
    sub.on("ready", () => {
      sub.subscribe(channel).then(
        () => {
          if (!this.closed) watchers.notify({ kind: "any" });
        },
        () => {
          // Lost again before the subscription was confirmed: reconnect, and try again.
          if (sub.status === "ready") sub.disconnect(true);
        },
      );
    });
    sub.on("message", (_channel: string, message: string) => this.onAnnouncement(message));
  }

  /** Checks the connection after an outage: a PING that times out makes ioredis replace it. */
  ping(): void {
    if (this.sub.status === "ready") this.sub.ping().catch(() => {});
  }

  async close(): Promise<void> {
    this.closed = true;
    await quit(this.sub);
  }

  private onAnnouncement(message: string): void {
    let m: { o?: unknown; s?: unknown; t?: unknown };
    try {
      m = JSON.parse(message);
    } catch {
      return;
    }
    if (this.closed || m.o === this.origin) return; // our own: reported when it was written
    // Lua's cjson encodes an empty list as {}: anything but an array means none.
    const names = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x) => typeof x === "string") : []);
    const ids = names(m.s);
    const topics = names(m.t);
    if (ids.length > 0) this.watchers.notify({ kind: "sessions", ids });
    if (topics.length > 0) this.watchers.notify({ kind: "topics", topics });
  }
}

/** QUIT (when connected, so replies to what was sent before arrive first), then stop reconnecting. */
async function quit(client: Redis): Promise<void> {
  if (client.status === "ready") await client.quit().catch(() => {});
  client.disconnect();
}
