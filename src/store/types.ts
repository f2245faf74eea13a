/**
 * The session store: everything a session needs to survive the node it was on. Nodes that
 * share a store (one SQLite file on one machine; Redis across machines) can resume each
 * other's sessions.
 *
 * Guarantees every implementation gives (the contract suite in test/store/contract.ts
 * checks them):
 * - `commit` is atomic: the de-duplication record (last processed client sequence and the
 *   reply) and the handler's effects (pushes, publishes, subscriptions) are written together
 *   or not at all. A sequence that was already committed is answered from the stored reply
 *   and changes nothing: each client message takes effect once.
 * - Fencing: every `claim` of a session raises its epoch; writes made with an older epoch
 *   are refused (`fenced`). A node that froze and wakes up after its session moved cannot
 *   write over the new owner's work.
 * - Pushes to a session get consecutive sequence numbers, are kept until acknowledged, and
 *   are returned in order.
 * - Topic entries get consecutive offsets per topic and are never rewritten; `deliver`
 *   moves a session's subscribed entries into its pushes and advances its offsets in one
 *   step, so each entry reaches each subscriber once, in order.
 *
 * All methods are asynchronous so that network stores (Redis) fit the same interface.
 */
export interface SessionRecord {
  id: string;
  /** SHA-256 of the resume token, hex. The token itself is never stored. */
  tokenHash: string;
  /** Wall-clock ms. */
  createdAt: number;
  /** Highest client MSG sequence committed. */
  lastClientSeq: number;
  /** Highest PUSH sequence assigned. */
  lastPushSeq: number;
  /** Highest PUSH sequence the client acknowledged. */
  ackedPushSeq: number;
  /** How long the session survives without a connection, ms. */
  ttl: number;
  /** Wall-clock ms after which it may be swept; null while a node holds it. */
  expiresAt: number | null;
  /** Node holding it, if any. */
  owner: string | null;
  /** Fencing epoch: raised by every claim. */
  epoch: number;
}

/** What a handler asks the store to do, committed together with the message's reply. */
export type Effect =
  /** A message to a session (this one or another), delivered as PUSH. Skipped if that
   *  session does not exist (any more). */
  | { kind: "push"; session: string; payload: Uint8Array }
  /** Appends an entry to a durable topic. */
  | { kind: "publish"; topic: string; payload: Uint8Array }
  /** Subscribes a session to a topic, from an offset: entries after it are delivered.
   *  `"end"` means from the current end (only new entries). Subscribing again moves the
   *  offset; skipped if the session does not exist. */
  | { kind: "subscribe"; session: string; topic: string; after: number | "end" }
  | { kind: "unsubscribe"; session: string; topic: string };

export interface CommitRequest {
  session: string;
  /** The epoch of the claim the committing node holds. */
  epoch: number;
  /** Client sequence of the message; must be `lastClientSeq + 1`. */
  seq: number;
  reply: Uint8Array;
  effects: Effect[];
}

export interface PushRecord {
  session: string;
  seq: number;
  payload: Uint8Array;
}

export interface TopicEntry {
  topic: string;
  /** 1, 2, 3... per topic. */
  offset: number;
  payload: Uint8Array;
  /** Wall-clock ms of the publish. */
  at: number;
}

export interface Subscription {
  session: string;
  topic: string;
  /** Offset of the last entry delivered to the session (0 = none). */
  offset: number;
}

export type CommitResult =
  | {
      status: "committed";
      /** Pushes created by the effects, with their sequence numbers. */
      pushes: PushRecord[];
      /** Offsets given to published entries, in effect order. */
      published: Array<{ topic: string; offset: number }>;
    }
  /** Already committed earlier: the stored reply (undefined if it is no longer kept). */
  | { status: "duplicate"; reply: Uint8Array | undefined }
  /** The sequence skips ahead of `lastClientSeq + 1`. */
  | { status: "gap"; expected: number }
  /** Another claim has taken the session. */
  | { status: "fenced" }
  | { status: "unknown-session" };

/** What changed in a store shared with other processes, as far as it can tell. */
export type Change =
  | { kind: "any" }
  | { kind: "sessions"; ids: string[] }
  | { kind: "topics"; topics: string[] };

export interface Store {
  /** `memory`, `sqlite`, `redis`. */
  readonly kind: string;
  /** A description for logs and the admin API, without secrets. */
  readonly description: string;

  createSession(record: SessionRecord): Promise<void>;
  getSession(id: string): Promise<SessionRecord | undefined>;
  /**
   * Takes a session for `owner`: raises its epoch, sets its expiry to the owner's lease
   * (`now + ttl + OWNER_LEASE`) and returns it. Undefined when it does not exist, expired
   * before `now`, or — with `expectEpoch` — its epoch is no longer `expectEpoch` (someone
   * else claimed it since: nothing changes).
   */
  claim(id: string, owner: string, now: number, expectEpoch?: number): Promise<SessionRecord | undefined>;
  /**
   * The owner is alive: every session it holds now expires at `now + ttl + OWNER_LEASE`.
   * Nodes call it every OWNER_LEASE / 3; the sessions of a node that died (and so stopped
   * renewing) expire a TTL after its last renewal plus the lease, like released ones.
   * Returns how many sessions it renewed.
   */
  renew(owner: string, now: number): Promise<number>;
  /** A connection let go: the TTL starts, if `epoch` is still the current claim. */
  release(id: string, epoch: number, expiresAt: number): Promise<void>;
  /** Deletes sessions that expired before `now`, with everything they own; returns their ids. */
  sweep(now: number): Promise<string[]>;
  deleteSession(id: string): Promise<void>;

  /** The stored reply of a committed message, while it is kept (the last REPLY_WINDOW). */
  reply(session: string, seq: number): Promise<Uint8Array | undefined>;
  commit(request: CommitRequest): Promise<CommitResult>;

  /** Unacknowledged pushes after `after`, in order, at most `limit`. */
  pushes(session: string, after: number, limit: number): Promise<PushRecord[]>;
  /** The client has every push up to `upTo`: they are deleted. Fenced writes are ignored. */
  ackPushes(session: string, epoch: number, upTo: number): Promise<void>;
  /** Last assigned push sequence of each of these sessions (to notice pushes made by other nodes). */
  pushHeads(sessions: readonly string[]): Promise<Map<string, number>>;

  /** Topic entries after `after`, in order, at most `limit`. */
  readTopic(topic: string, after: number, limit: number): Promise<TopicEntry[]>;
  /** Offset of the last entry of a topic (0 when empty). */
  topicHead(topic: string): Promise<number>;
  subscriptions(session: string): Promise<Subscription[]>;
  /**
   * Moves entries of the session's subscriptions into its pushes (up to `limit` in all)
   * and advances the subscriptions, atomically, if `epoch` is still current. Returns the
   * new pushes (empty when there was nothing, or when fenced). Each push's payload is
   * `encodeDelivery(entry)` (src/store/delivery.ts): topic, offset, time and the entry's bytes.
   */
  deliver(session: string, epoch: number, limit: number): Promise<PushRecord[]>;

  /** Calls `listener` when the store may have changed outside this process too. */
  watch(listener: (change: Change) => void): () => void;
  /** Whether the store can be written now (Redis may be unreachable). */
  healthy(): boolean;
  close(): Promise<void>;
}

/** How many replies per session are kept for resent messages. A client resends at most
 *  its unacknowledged window, so this bounds the window a client may have in flight. */
export const REPLY_WINDOW = 1024;

/**
 * How long an owned session outlives its owner's last renewal, on top of its TTL, ms.
 * Owners renew every third of it, so a live owner's sessions never expire, and a crashed
 * owner's sessions expire at most TTL + OWNER_LEASE after the crash (never silently kept
 * forever). Longer tolerates a node stalled for longer (a GC pause, a frozen VM).
 */
export const OWNER_LEASE = 30_000;
