/**
 * `RedisStore`: the session store on Redis (ioredis), for nodes on many machines. Redis is
 * the replicated engine we stand on: run it with Sentinel for its own failover
 * (`redis+sentinel://` URLs); needs Redis 7.0 or later (script flags, XTRIM MINID).
 *
 * - Layout: see redis-keys.ts. Every read-check-write (`commit`, `deliver`, `claim`,
 *   `ackPushes`, `sweep`…) is one Lua script (redis-scripts.ts): atomic, fenced by the epoch
 *   inside the script. Plain reads (`getSession`, `pushes`, `readTopic`…) are single commands.
 * - Topics are Redis Streams with explicit entry ids `offset-0` from a per-topic counter, so
 *   offsets are 1, 2, 3… with no gaps; pushes are a stream per session, ids `seq-0`,
 *   trimmed (XTRIM MINID) as they are acknowledged.
 * - `watch`, without polling: every commit or deliver that gave a session pushes or a topic
 *   entries PUBLISHes them on `<prefix>changes` inside its script. A second connection
 *   (created by the first `watch`) subscribes to it and reports other stores' changes as
 *   `sessions`/`topics` changes; this store's own are reported directly, in a microtask after
 *   the write, as MemoryStore does. Pub/sub is fire-and-forget: whenever the subscription is
 *   (re)established, and whenever the store recovers from being unavailable, watchers get
 *   `{ kind: "any" }` to re-read what they may have missed. Acknowledgements announce
 *   nothing (no Change describes them; memory and SQLite report none either).
 * - TTLs: a session's keys expire (PEXPIREAT) `reclaimAfterMs` after its `expiresAt`, so
 *   Redis frees them even if no node is left to `sweep`; `sweep` remains what deletes expired
 *   sessions on time and reports them.
 * - Unavailable Redis: operations fail fast with LL_STORE_UNAVAILABLE (redis-conn.ts), never
 *   queue, never report a write that did not happen. `healthy()` is false while the
 *   connection is down, and after a command timed out or Redis refused a write (out of
 *   memory, read-only replica) until a write succeeds again (redis-link.ts). Reconnection is
 *   automatic.
 * - Redis Cluster is not supported: a session's keys share a hash slot (`{id}` tags), but a
 *   commit's effects on other sessions and topics, `deliver` (topics), `claim`/`release`/
 *   `renew`/`sweep` (the owner and expiry indexes) span slots within one script.
 */
import { randomUUID } from "node:crypto";
import { LifelineError } from "../errors.ts";
import { silentLogger } from "../util/logger.ts";
import { checkCommit, checkRecord, type StoreBaseOptions, type Touched, Watchers } from "./common.ts";
import type { RedisConnectionOptions } from "./redis-conn.ts";
import { asBuffer, entryNumber, pairs, RedisKeys, toRecord } from "./redis-keys.ts";
import { ChangeFeed, RedisLink } from "./redis-link.ts";
import { SCRIPTS, type ScriptCommands } from "./redis-scripts.ts";
import type { RedisTarget } from "./redis-url.ts";
import {
  type Change,
  type CommitRequest,
  type CommitResult,
  OWNER_LEASE,
  type PushRecord,
  REPLY_WINDOW,
  type SessionRecord,
  type Store,
  type Subscription,
  type TopicEntry,
} from "./types.ts";

export interface RedisStoreOptions extends StoreBaseOptions, RedisConnectionOptions {
  /** Key prefix, so that several clusters can share one Redis; default the URL's `?prefix=`,
   *  else `lifeline:`. Stores see each other's sessions only with the same prefix. */
  prefix?: string;
  /** How long after a session's `expiresAt` Redis itself deletes its keys, ms. Default
   *  300000 (5 min). Only matters when no node sweeps (nodes sweep every few seconds); it must
   *  stay well above the clock difference between nodes and Redis, or a session could vanish
   *  while a node with a slow clock still considers it alive. */
  reclaimAfterMs?: number;
}

/** Sessions handled per script call by `renew` and `sweep`: bounds how long one script
 *  keeps Redis busy (other clients wait meanwhile). */
const BATCH = 500;

type Reply = Array<number | Buffer | null>;

export class RedisStore implements Store {
  readonly kind = "redis";
  readonly description: string;
  readonly target: RedisTarget;

  private readonly keys: RedisKeys;
  private readonly link: RedisLink;
  private readonly cmd: ScriptCommands;
  private feed: ChangeFeed | undefined;
  private readonly opts: RedisStoreOptions;
  private readonly watchers: Watchers;
  /** Tags this store's announcements, so that its own feed skips them (already reported). */
  private readonly origin = randomUUID();
  private readonly reclaimAfter: number;

  constructor(target: RedisTarget, opts: RedisStoreOptions = {}) {
    this.target = target;
    this.opts = opts;
    this.watchers = new Watchers(opts.logger);
    this.keys = new RedisKeys(opts.prefix ?? target.prefix);
    this.reclaimAfter = opts.reclaimAfterMs ?? 300_000;
    this.description = `redis ${target.display} (prefix ${this.keys.prefix})`;
    this.link = new RedisLink(target, opts, {
      description: this.description,
      logger: opts.logger ?? silentLogger,
      probeKey: this.keys.probe,
      onRecovered: () => {
        // Whatever others wrote meanwhile was announced while we could not hear it.
        this.watchers.notify({ kind: "any" });
        this.feed?.ping();
      },
    });
    for (const [name, def] of Object.entries(SCRIPTS)) this.link.client.defineCommand(name, def);
    this.cmd = this.link.client as unknown as ScriptCommands;
  }

  /**
   * Resolves once connected; rejects with LL_STORE_UNAVAILABLE after `timeoutMs` (default
   * `connectTimeoutMs`), or LL_STORE_UNSUPPORTED when the server is older than Redis 7.0.
   * The store can be used before: operations fail until it is connected.
   */
  async ready(timeoutMs?: number): Promise<void> {
    await this.link.ready(timeoutMs);
    const info = await this.read(() => this.link.client.info("server"));
    const version = /redis_version:(\d+)\.(\d+)/.exec(info);
    if (version && Number(version[1]) < 7) {
      throw new LifelineError(
        "LL_STORE_UNSUPPORTED",
        `Redis ${this.target.display} is version ${version[1]}.${version[2]}; the store needs 7.0 or later`,
      );
    }
  }

  async createSession(record: SessionRecord): Promise<void> {
    checkRecord(record);
    const created = await this.run(() =>
      this.cmd.llCreate(
        ...this.sessionArgs(record.id),
        record.id,
        record.tokenHash,
        record.createdAt,
        record.lastClientSeq,
        record.lastPushSeq,
        record.ackedPushSeq,
        record.ttl,
        record.expiresAt ?? "",
        record.owner ?? "",
        record.owner === null ? "0" : "1",
        record.epoch,
      ),
    );
    if (created === 0) throw new LifelineError("LL_STORE_EXISTS", `session ${record.id} already exists`);
  }

  async getSession(id: string): Promise<SessionRecord | undefined> {
    return toRecord(id, await this.read(() => this.link.client.hgetall(this.keys.session(id))));
  }

  async claim(
    id: string,
    owner: string,
    now: number,
    expectEpoch?: number,
  ): Promise<SessionRecord | undefined> {
    const flat = await this.run(() =>
      this.cmd.llClaim(...this.sessionArgs(id), id, owner, now, OWNER_LEASE, expectEpoch ?? ""),
    );
    return flat ? toRecord(id, pairs(flat)) : undefined;
  }

  async renew(owner: string, now: number): Promise<number> {
    const key = this.keys.owner(owner);
    const ids = await this.read(() => this.link.client.smembers(key));
    let n = 0;
    for (let i = 0; i < ids.length; i += BATCH) {
      const batch = ids.slice(i, i + BATCH);
      n += Number(
        await this.run(() =>
          this.cmd.llRenew(key, this.keys.expiry, ...this.common(), owner, now, OWNER_LEASE, ...batch),
        ),
      );
    }
    return n;
  }

  async release(id: string, epoch: number, expiresAt: number): Promise<void> {
    await this.run(() => this.cmd.llRelease(...this.sessionArgs(id), id, epoch, expiresAt));
  }

  async sweep(now: number): Promise<string[]> {
    const gone = new Set<string>();
    for (;;) {
      const r = (await this.run(() => this.cmd.llSweep(this.keys.expiry, ...this.common(), now, BATCH))) as [
        number,
        ...string[],
      ];
      for (const id of r.slice(1)) gone.add(String(id));
      if (r[0] < BATCH) break;
    }
    return [...gone].sort();
  }

  async deleteSession(id: string): Promise<void> {
    await this.run(() => this.cmd.llDelete(...this.sessionArgs(id), id));
  }

  async reply(session: string, seq: number): Promise<Uint8Array | undefined> {
    const r = await this.read(() => this.link.client.hgetBuffer(this.keys.replies(session), String(seq)));
    return r ?? undefined;
  }

  async commit(req: CommitRequest): Promise<CommitResult> {
    checkCommit(req);
    const at = Date.now();
    const args: Array<string | number | Buffer> = [
      ...this.keys.sessionKeys(req.session),
      ...this.common(),
      req.epoch,
      req.seq,
      asBuffer(req.reply),
      at,
      REPLY_WINDOW,
    ];
    // Push payloads are copied now: what the caller does with its buffers afterwards changes
    // neither what is stored nor the pushes returned.
    const payloads = new Map<number, Buffer>();
    req.effects.forEach((e, i) => {
      if (e.kind === "push") {
        payloads.set(i, Buffer.from(e.payload));
        args.push("p", e.session, payloads.get(i)!, "");
      } else if (e.kind === "publish") args.push("b", e.topic, asBuffer(e.payload), "");
      else if (e.kind === "subscribe") args.push("s", e.session, e.topic, String(e.after));
      else args.push("u", e.session, e.topic, "");
    });
    const r = (await this.run(() => this.cmd.llCommitBuffer(...args))) as Reply;
    switch (r[0]) {
      case 5:
        return { status: "unknown-session" };
      case 4:
        return { status: "fenced" };
      case 3:
        return { status: "gap", expected: Number(r[1]) };
      case 2:
        return { status: "duplicate", reply: (r[1] as Buffer | null) ?? undefined };
    }
    const touched: Touched = { sessions: new Set(), topics: new Set() };
    const pushes: PushRecord[] = [];
    const pushCount = Number(r[1]);
    for (let k = 0; k < pushCount; k++) {
      const index = Number(r[2 + 2 * k]);
      const effect = req.effects[index] as Extract<CommitRequest["effects"][number], { kind: "push" }>;
      pushes.push({ session: effect.session, seq: Number(r[3 + 2 * k]), payload: payloads.get(index)! });
      touched.sessions.add(effect.session);
    }
    const offsets = r.slice(2 + 2 * pushCount).map(Number);
    const published = req.effects.flatMap((e) => (e.kind === "publish" ? [e.topic] : []));
    for (const topic of published) touched.topics.add(topic);
    this.watchers.touched(touched);
    return {
      status: "committed",
      pushes,
      published: published.map((topic, i) => ({ topic, offset: offsets[i]! })),
    };
  }

  async pushes(session: string, after: number, limit: number): Promise<PushRecord[]> {
    if (limit <= 0) return [];
    const entries = await this.read(() =>
      this.link.client.xrangeBuffer(this.keys.pushes(session), from(after), "+", "COUNT", count(limit)),
    );
    return entries.map(([id, fields]) => ({ session, seq: entryNumber(id), payload: field(fields, "p") }));
  }

  async ackPushes(session: string, epoch: number, upTo: number): Promise<void> {
    await this.run(() => this.cmd.llAck(...this.keys.sessionKeys(session), ...this.common(), epoch, upTo));
  }

  async pushHeads(sessions: readonly string[]): Promise<Map<string, number>> {
    const heads = new Map<string, number>();
    if (sessions.length === 0) return heads;
    const values = await this.read(() =>
      Promise.all(sessions.map((id) => this.link.client.hget(this.keys.session(id), "pseq"))),
    );
    sessions.forEach((id, i) => {
      if (values[i] !== null && values[i] !== undefined) heads.set(id, Number(values[i]));
    });
    return heads;
  }

  async readTopic(topic: string, after: number, limit: number): Promise<TopicEntry[]> {
    if (limit <= 0) return [];
    const entries = await this.read(() =>
      this.link.client.xrangeBuffer(this.keys.topic(topic), from(after), "+", "COUNT", count(limit)),
    );
    return entries.map(([id, fields]) => ({
      topic,
      offset: entryNumber(id),
      payload: field(fields, "p"),
      at: Number(field(fields, "at").toString()),
    }));
  }

  async topicHead(topic: string): Promise<number> {
    return Number((await this.read(() => this.link.client.get(this.keys.topicHead(topic)))) ?? 0);
  }

  async subscriptions(session: string): Promise<Subscription[]> {
    const subs = await this.read(() => this.link.client.hgetall(this.keys.subs(session)));
    return Object.keys(subs)
      .sort()
      .map((topic) => ({ session, topic, offset: Number(subs[topic]) }));
  }

  async deliver(session: string, epoch: number, limit: number): Promise<PushRecord[]> {
    if (limit <= 0) return [];
    const r = (await this.run(() =>
      this.cmd.llDeliverBuffer(
        ...this.keys.sessionKeys(session),
        ...this.common(),
        epoch,
        count(limit),
        session,
      ),
    )) as Reply;
    const out: PushRecord[] = [];
    for (let i = 0; i + 1 < r.length; i += 2) {
      out.push({ session, seq: Number(r[i]), payload: r[i + 1] as Buffer });
    }
    if (out.length > 0) this.watchers.touched({ sessions: new Set([session]), topics: new Set() });
    return out;
  }

  watch(listener: (change: Change) => void): () => void {
    const remove = this.watchers.add(listener);
    if (!this.feed && !this.link.isClosed) {
      this.feed = new ChangeFeed(this.target, this.opts, this.keys.channel, this.origin, this.watchers);
    }
    return remove;
  }

  healthy(): boolean {
    return this.link.healthy();
  }

  /** Closes both connections (operations already sent finish first); later calls reject
   *  with LL_STORE_CLOSED. */
  async close(): Promise<void> {
    this.watchers.clear();
    await Promise.all([this.link.close(), this.feed?.close()]);
  }

  /** KEYS (the session's four and the expiry index) and the common ARGV of a session script. */
  private sessionArgs(id: string): Array<string | number> {
    return [...this.keys.sessionKeys(id), this.keys.expiry, ...this.common()];
  }

  /** ARGV[1..3] of every script. */
  private common(): [string, number, string] {
    return [this.keys.prefix, this.reclaimAfter, this.origin];
  }

  /** An operation that only reads (its success says nothing about whether Redis takes writes). */
  private read<T>(fn: () => Promise<T>): Promise<T> {
    return this.link.run(fn, false);
  }

  /** An operation that writes (or a script: Redis treats every one of ours as a write). */
  private run<T>(fn: () => Promise<T>): Promise<T> {
    return this.link.run(fn, true);
  }
}

/** The first stream entry id after sequence or offset `after`. */
const from = (after: number): string => `${Math.floor(Math.max(0, after)) + 1}-0`;
/** A `limit` as a COUNT Redis accepts (an integer; Infinity means "all"). */
const count = (limit: number): number =>
  Number.isFinite(limit) ? Math.max(1, Math.floor(limit)) : 2 ** 31 - 1;

/** A field of a stream entry (`[name, value, name, value…]`), empty when missing. */
function field(fields: Buffer[], name: string): Buffer {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i]!.toString() === name) return fields[i + 1]!;
  }
  return Buffer.alloc(0);
}
