/**
 * `MemoryStore`: the session store of a single process. Everything lives in Maps, so a
 * session survives a dropped connection but not the process; nodes cannot share it.
 *
 * Costs: `commit` is O(effects), `pushes` O(limit), `ackPushes` O(pushes acknowledged),
 * `deliver` O(limit + subscriptions·log subscriptions); only `sweep` visits every session.
 * Each session keeps its replies, pushes and subscriptions, so deleting one drops them all.
 *
 * Bytes are copied on the way in and on the way out: a caller that reuses or changes its
 * buffers cannot change what is stored, as with a real database.
 */
import { LifelineError } from "../errors.ts";
import {
  checkCommit,
  checkRecord,
  isExpired,
  type StoreBaseOptions,
  type Touched,
  Watchers,
} from "./common.ts";
import { encodeDelivery } from "./delivery.ts";
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

interface MemSession {
  record: SessionRecord;
  /** Client seq → reply; at most REPLY_WINDOW, the latest. */
  replies: Map<number, Uint8Array>;
  /** Push seq → payload, unacknowledged only: seqs ackedPushSeq+1 .. lastPushSeq. */
  pushes: Map<number, Uint8Array>;
  /** Topic → offset of the last entry delivered. */
  subs: Map<string, number>;
}

const copy = (bytes: Uint8Array): Uint8Array => bytes.slice();

export class MemoryStore implements Store {
  readonly kind = "memory";
  readonly description = "memory (this process only)";

  private readonly sessions = new Map<string, MemSession>();
  /** Topic → its entries; the entry with offset n is at index n - 1. */
  private readonly topics = new Map<string, TopicEntry[]>();
  private readonly watchers: Watchers;
  private closed = false;

  constructor(opts: StoreBaseOptions = {}) {
    this.watchers = new Watchers(opts.logger);
  }

  async createSession(record: SessionRecord): Promise<void> {
    this.open();
    checkRecord(record);
    if (this.sessions.has(record.id)) {
      throw new LifelineError("LL_STORE_EXISTS", `session ${record.id} already exists`);
    }
    this.sessions.set(record.id, {
      record: { ...record },
      replies: new Map(),
      pushes: new Map(),
      subs: new Map(),
    });
  }

  async getSession(id: string): Promise<SessionRecord | undefined> {
    const s = this.open().sessions.get(id);
    return s ? { ...s.record } : undefined;
  }

  async claim(
    id: string,
    owner: string,
    now: number,
    expectEpoch?: number,
  ): Promise<SessionRecord | undefined> {
    const s = this.open().sessions.get(id);
    if (!s || isExpired(s.record, now)) return undefined;
    if (expectEpoch !== undefined && s.record.epoch !== expectEpoch) return undefined;
    s.record.epoch += 1;
    s.record.owner = owner;
    s.record.expiresAt = now + s.record.ttl + OWNER_LEASE;
    return { ...s.record };
  }

  async renew(owner: string, now: number): Promise<number> {
    let n = 0;
    for (const s of this.open().sessions.values()) {
      if (s.record.owner !== owner) continue;
      s.record.expiresAt = now + s.record.ttl + OWNER_LEASE;
      n++;
    }
    return n;
  }

  async release(id: string, epoch: number, expiresAt: number): Promise<void> {
    const s = this.open().sessions.get(id);
    if (!s || s.record.epoch !== epoch) return;
    s.record.owner = null;
    s.record.expiresAt = expiresAt;
  }

  async sweep(now: number): Promise<string[]> {
    this.open();
    const gone: string[] = [];
    for (const [id, s] of this.sessions) {
      if (isExpired(s.record, now)) gone.push(id);
    }
    for (const id of gone) this.sessions.delete(id);
    return gone;
  }

  async deleteSession(id: string): Promise<void> {
    this.open().sessions.delete(id);
  }

  async reply(session: string, seq: number): Promise<Uint8Array | undefined> {
    const r = this.open().sessions.get(session)?.replies.get(seq);
    return r ? copy(r) : undefined;
  }

  async commit(req: CommitRequest): Promise<CommitResult> {
    this.open();
    checkCommit(req); // before anything is written: applying the effects below cannot throw
    const s = this.sessions.get(req.session);
    if (!s) return { status: "unknown-session" };
    if (req.epoch !== s.record.epoch) return { status: "fenced" };
    const last = s.record.lastClientSeq;
    if (req.seq <= last) {
      const r = s.replies.get(req.seq);
      return { status: "duplicate", reply: r ? copy(r) : undefined };
    }
    if (req.seq !== last + 1) return { status: "gap", expected: last + 1 };

    const touched: Touched = { sessions: new Set(), topics: new Set() };
    const pushes: PushRecord[] = [];
    const published: Array<{ topic: string; offset: number }> = [];
    const at = Date.now();
    for (const e of req.effects) {
      if (e.kind === "push") {
        const target = this.sessions.get(e.session);
        if (!target) continue; // the session is gone: nobody to deliver to
        const seq = ++target.record.lastPushSeq;
        const payload = copy(e.payload);
        target.pushes.set(seq, payload);
        pushes.push({ session: e.session, seq, payload: copy(payload) });
        touched.sessions.add(e.session);
      } else if (e.kind === "publish") {
        let entries = this.topics.get(e.topic);
        if (!entries) {
          entries = [];
          this.topics.set(e.topic, entries);
        }
        const offset = entries.length + 1;
        entries.push({ topic: e.topic, offset, payload: copy(e.payload), at });
        published.push({ topic: e.topic, offset });
        touched.topics.add(e.topic);
      } else if (e.kind === "subscribe") {
        const after = e.after === "end" ? (this.topics.get(e.topic)?.length ?? 0) : e.after;
        this.sessions.get(e.session)?.subs.set(e.topic, after);
      } else {
        this.sessions.get(e.session)?.subs.delete(e.topic);
      }
    }
    s.record.lastClientSeq = req.seq;
    s.replies.set(req.seq, copy(req.reply));
    s.replies.delete(req.seq - REPLY_WINDOW);
    this.watchers.touched(touched);
    return { status: "committed", pushes, published };
  }

  async pushes(session: string, after: number, limit: number): Promise<PushRecord[]> {
    const s = this.open().sessions.get(session);
    if (!s || limit <= 0) return [];
    const out: PushRecord[] = [];
    const last = s.record.lastPushSeq;
    for (let seq = Math.max(after, s.record.ackedPushSeq) + 1; seq <= last && out.length < limit; seq++) {
      const p = s.pushes.get(seq);
      if (p) out.push({ session, seq, payload: copy(p) });
    }
    return out;
  }

  async ackPushes(session: string, epoch: number, upTo: number): Promise<void> {
    const s = this.open().sessions.get(session);
    if (!s || s.record.epoch !== epoch) return;
    const to = Math.min(upTo, s.record.lastPushSeq);
    for (let seq = s.record.ackedPushSeq + 1; seq <= to; seq++) s.pushes.delete(seq);
    if (to > s.record.ackedPushSeq) s.record.ackedPushSeq = to;
  }

  async pushHeads(sessions: readonly string[]): Promise<Map<string, number>> {
    this.open();
    const heads = new Map<string, number>();
    for (const id of sessions) {
      const s = this.sessions.get(id);
      if (s) heads.set(id, s.record.lastPushSeq);
    }
    return heads;
  }

  async readTopic(topic: string, after: number, limit: number): Promise<TopicEntry[]> {
    const entries = this.open().topics.get(topic);
    if (!entries || limit <= 0) return [];
    return entries
      .slice(Math.max(0, after), Math.max(0, after) + limit)
      .map((e) => ({ ...e, payload: copy(e.payload) }));
  }

  async topicHead(topic: string): Promise<number> {
    return this.open().topics.get(topic)?.length ?? 0;
  }

  async subscriptions(session: string): Promise<Subscription[]> {
    const s = this.open().sessions.get(session);
    if (!s) return [];
    return [...s.subs.keys()].sort().map((topic) => ({ session, topic, offset: s.subs.get(topic)! }));
  }

  /** Each push's payload is `encodeDelivery(entry)`: topic, offset, time and the entry's bytes. */
  async deliver(session: string, epoch: number, limit: number): Promise<PushRecord[]> {
    const s = this.open().sessions.get(session);
    if (!s || s.record.epoch !== epoch || limit <= 0) return [];
    const out: PushRecord[] = [];
    // Topics in name order, as the SQLite store does; each topic's entries in offset order.
    for (const topic of [...s.subs.keys()].sort()) {
      if (out.length >= limit) break;
      const entries = this.topics.get(topic);
      let offset = s.subs.get(topic)!;
      if (!entries) continue;
      while (offset < entries.length && out.length < limit) {
        const payload = encodeDelivery(entries[offset++]!);
        const seq = ++s.record.lastPushSeq;
        s.pushes.set(seq, payload);
        out.push({ session, seq, payload: copy(payload) });
      }
      s.subs.set(topic, offset);
    }
    if (out.length > 0) this.watchers.touched({ sessions: new Set([session]), topics: new Set() });
    return out;
  }

  watch(listener: (change: Change) => void): () => void {
    return this.watchers.add(listener);
  }

  healthy(): boolean {
    return !this.closed;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watchers.clear();
  }

  private open(): this {
    if (this.closed) throw new LifelineError("LL_STORE_CLOSED", "the memory store is closed");
    return this;
  }
}
