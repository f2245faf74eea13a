/**
 * The Redis store's key layout, and the session record as a Redis hash.
 *
 * Every key starts with the store's prefix P (default `lifeline:`), so several clusters
 * can share one Redis. Names (session ids, topics, owners) are written between `{…}` with
 * `%`, `{` and `}` escaped as `%25`, `%7B`, `%7D`: the escaping is reversible (two names never
 * share a key) and the braces are always a hash tag, so all keys of one session, and all keys
 * of one topic, fall in one Redis Cluster hash slot whatever the name contains.
 *
 * | key                  | type   | holds                                                       |
 * |----------------------|--------|-------------------------------------------------------------|
 * | `P s:{id}`           | hash   | the session record (fields below)                           |
 * | `P s:{id}:r`         | hash   | client seq → stored reply, the last REPLY_WINDOW            |
 * | `P s:{id}:p`         | stream | unacknowledged pushes, entry id `seq-0`, field `p` = bytes  |
 * | `P s:{id}:sub`       | hash   | topic → offset of the last entry delivered                  |
 * | `P t:{topic}`        | stream | topic entries, entry id `offset-0`, fields `p`, `at`        |
 * | `P t:{topic}:head`   | string | the topic's last offset (INCR), never reused                |
 * | `P o:{owner}`        | set    | ids of the sessions an owner (node) claimed, for `renew`    |
 * | `P expiry`           | zset   | session id scored by `expiresAt`, for `sweep`               |
 * | `P probe`            | string | written by an unhealthy store to learn it can write again   |
 * | `P changes`          | pubsub | the channel commits and deliveries are announced on         |
 *
 * The four `s:` keys of a session expire (PEXPIREAT) at its `reclaim` time, so Redis frees
 * them itself even when no node is left to sweep; topics, indexes and the channel do not
 * expire. The Lua scripts (redis-scripts.ts) build the same names with the same escaping.
 */
import type { SessionRecord } from "./types.ts";

/** The prefix used when none is given. */
export const DEFAULT_PREFIX = "lifeline:";

/** Escapes a name for use inside a `{…}` hash tag (the Lua `enc` does the same). */
export function escapeName(name: string): string {
  return name.replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`);
}

export class RedisKeys {
  constructor(readonly prefix: string) {}

  /** The session record hash. */
  session(id: string): string {
    return `${this.prefix}s:{${escapeName(id)}}`;
  }
  replies(id: string): string {
    return `${this.session(id)}:r`;
  }
  pushes(id: string): string {
    return `${this.session(id)}:p`;
  }
  subs(id: string): string {
    return `${this.session(id)}:sub`;
  }
  /** The four keys of a session, in the order every session-scoped script takes them as KEYS. */
  sessionKeys(id: string): [string, string, string, string] {
    return [this.session(id), this.replies(id), this.pushes(id), this.subs(id)];
  }
  topic(topic: string): string {
    return `${this.prefix}t:{${escapeName(topic)}}`;
  }
  topicHead(topic: string): string {
    return `${this.topic(topic)}:head`;
  }
  owner(owner: string): string {
    return `${this.prefix}o:{${escapeName(owner)}}`;
  }
  get expiry(): string {
    return `${this.prefix}expiry`;
  }
  get probe(): string {
    return `${this.prefix}probe`;
  }
  get channel(): string {
    return `${this.prefix}changes`;
  }
}

/**
 * The session hash's fields: `tok` token hash, `created`, `cseq` lastClientSeq, `pseq`
 * lastPushSeq, `aseq` ackedPushSeq, `ttl`, `epoch`; `exp` expiresAt and `owner` are absent
 * when null; `reclaim` (internal) is the wall-clock ms at which Redis expires the session's keys.
 */
export function toRecord(id: string, hash: Record<string, string>): SessionRecord | undefined {
  if (hash.epoch === undefined) return undefined; // HGETALL of a missing key is {}
  return {
    id,
    tokenHash: hash.tok ?? "",
    createdAt: Number(hash.created),
    lastClientSeq: Number(hash.cseq),
    lastPushSeq: Number(hash.pseq),
    ackedPushSeq: Number(hash.aseq),
    ttl: Number(hash.ttl),
    expiresAt: hash.exp === undefined ? null : Number(hash.exp),
    owner: hash.owner ?? null,
    epoch: Number(hash.epoch),
  };
}

/** A flat `[field, value, field, value…]` reply (HGETALL in a Lua script) as an object. */
export function pairs(flat: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!Array.isArray(flat)) return out;
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = String(flat[i + 1]);
  return out;
}

/** A Uint8Array as a Buffer over the same bytes (no copy): what ioredis sends as a bulk string. */
export const asBuffer = (b: Uint8Array): Buffer =>
  Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/** The offset or sequence of a stream entry id `n-0`. */
export const entryNumber = (id: Buffer | string): number => Number(String(id).split("-", 1)[0]);
