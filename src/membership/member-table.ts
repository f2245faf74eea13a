import type { Clock } from "../util/clock.ts";
import type { Logger } from "../util/logger.ts";
import type { Awareness } from "./awareness.ts";
import type { BroadcastQueue } from "./broadcast-queue.ts";
import { encodeMessage } from "./codec.ts";
import type { MembershipConfig } from "./config.ts";
import { expectedConfirmations, suspicionTimeout } from "./math.ts";
import type { Alive, Dead, PushPullEntry, Suspect, Update } from "./messages.ts";
import { Suspicion } from "./suspicion.ts";
import type { Member, MemberEvent, MemberMeta, MemberState, MembershipCounters } from "./types.ts";

/**
 * The local node's view of the cluster and SWIM's precedence rules over it. Each update is
 * about one member at one incarnation (only that member raises its own incarnation):
 *
 *   alive(i)   overrides alive(j) and suspect(j) when i > j, and dead/left(j) when i > j
 *   suspect(i) overrides alive(j) when i ≥ j; a suspect(i) about a suspect member is a
 *              confirmation (Lifeguard) and shortens the suspicion
 *   dead(i)    overrides alive(j) and suspect(j) when i ≥ j (left: dead sent by the member)
 *
 * An update about the local node that would make it suspect or dead is refuted: the node
 * raises its incarnation above the one heard and gossips alive. Every accepted update is
 * queued to be gossiped on; every state change is emitted with its reason.
 */
export interface MemberTableDeps {
  selfId: string;
  address: string;
  meta: MemberMeta;
  clock: Clock;
  config: MembershipConfig;
  queue: BroadcastQueue;
  awareness: Awareness;
  counters: MembershipCounters;
  logger: Logger;
  /** A state change ("member") or an address/metadata change ("update"). */
  emit(kind: "member" | "update", event: MemberEvent): void;
  /** A member learned for the first time (the prober inserts it in its round). */
  onNew(id: string): void;
}

interface Entry extends Member {
  suspicion: Suspicion | undefined;
  /** When we last reminded this (suspect or dead) member of our verdict (see remind()). */
  remindedAt?: number;
}

export class MemberTable {
  private readonly map = new Map<string, Entry>();
  /** Every known id but the local node's, for probe order and random picks. */
  private peerIds: string[] = [];
  private readonly self: Entry;
  /** Set once leave() began: suspicions and deaths of ourselves are no longer refuted. */
  private leaving = false;

  constructor(private readonly d: MemberTableDeps) {
    this.self = {
      id: d.selfId,
      address: d.address,
      meta: d.meta,
      incarnation: 0,
      state: "alive",
      since: d.clock.now(),
      suspicion: undefined,
    };
    this.map.set(d.selfId, this.self);
  }

  get selfId(): string {
    return this.self.id;
  }

  get incarnation(): number {
    return this.self.incarnation;
  }

  get size(): number {
    return this.map.size;
  }

  /** Members not known to be dead or gone (the local node included): N in the formulas. */
  liveCount(): number {
    let n = 0;
    for (const m of this.map.values()) if (m.state === "alive" || m.state === "suspect") n++;
    return n;
  }

  peers(): readonly string[] {
    return this.peerIds;
  }

  get(id: string): Member | undefined {
    const e = this.map.get(id);
    return e && snapshot(e);
  }

  state(id: string): MemberState | undefined {
    return this.map.get(id)?.state;
  }

  all(): Member[] {
    return [...this.map.values()].map(snapshot);
  }

  /** The local node's own alive message (gossiped at start and after every refutation). */
  localAlive(): Alive {
    const s = this.self;
    return { type: "alive", id: s.id, incarnation: s.incarnation, address: s.address, meta: s.meta };
  }

  /** Announces new metadata under a new incarnation. */
  updateMeta(meta: MemberMeta): void {
    this.self.meta = meta;
    this.self.incarnation++;
    this.broadcast(this.localAlive());
    this.d.emit("update", {
      member: snapshot(this.self),
      previous: "alive",
      reason: "local metadata updated",
    });
  }

  /** Marks the local node left and queues the announcement; `onSent` when it has gone out. */
  leave(onSent: () => void): void {
    this.leaving = true;
    const dead: Dead = {
      type: "dead",
      id: this.self.id,
      incarnation: this.self.incarnation,
      from: this.self.id,
    };
    this.change(this.self, "left", "leaving the cluster");
    this.broadcast(dead, onSent);
  }

  applyAlive(a: Alive, reason = "alive"): void {
    if (a.id === this.self.id) {
      if (this.leaving || a.incarnation < this.self.incarnation) return;
      const same = a.address === this.self.address && sameMeta(a.meta, this.self.meta);
      if (a.incarnation === this.self.incarnation && same) return;
      // Someone holds an alive of ours we did not send (an older life of this id): outbid it.
      this.refute(a.incarnation, `alive of ours at incarnation ${a.incarnation} with other data`, false);
      return;
    }
    const e = this.map.get(a.id);
    if (!e) {
      const entry: Entry = {
        id: a.id,
        address: a.address,
        meta: a.meta,
        incarnation: a.incarnation,
        state: "alive",
        since: this.d.clock.now(),
        suspicion: undefined,
      };
      this.map.set(a.id, entry);
      this.peerIds.push(a.id);
      this.d.onNew(a.id);
      this.broadcast(a);
      this.d.emit("member", { member: snapshot(entry), previous: undefined, reason: `joined (${reason})` });
      return;
    }
    if (a.incarnation <= e.incarnation) return;
    const changedData = a.address !== e.address || !sameMeta(a.meta, e.meta);
    e.incarnation = a.incarnation;
    e.address = a.address;
    e.meta = a.meta;
    this.broadcast(a);
    if (e.state === "alive") {
      if (changedData)
        this.d.emit("update", { member: snapshot(e), previous: "alive", reason: "metadata updated" });
      return;
    }
    const why =
      e.state === "suspect"
        ? "refuted the suspicion"
        : `rejoined after ${e.state === "left" ? "leaving" : "being declared dead"}`;
    this.change(e, "alive", `${why} (incarnation ${a.incarnation})`);
  }

  applySuspect(s: Suspect): void {
    const e = this.map.get(s.id);
    if (!e) return;
    if (e === this.self) {
      if (this.leaving) return;
      if (s.incarnation < e.incarnation) this.reassert(`suspected by ${s.from}`);
      else this.refute(s.incarnation, `suspected by ${s.from}`, true);
      return;
    }
    if (s.incarnation < e.incarnation) return;
    if (e.state === "dead" || e.state === "left") return;
    if (e.state === "suspect") {
      if (e.suspicion?.confirm(s.from)) this.broadcast(s);
      return;
    }
    e.incarnation = s.incarnation;
    const n = this.liveCount();
    const min = suspicionTimeout(this.d.config.suspicionMult, n, this.d.config.probeInterval);
    const max = this.d.config.suspicionMaxTimeoutMult * min;
    const k = expectedConfirmations(this.d.config.suspicionMult, n);
    e.suspicion = new Suspicion(this.d.clock, s.from, k, min, max, (sus) => {
      const dead: Dead = { type: "dead", id: e.id, incarnation: e.incarnation, from: this.self.id };
      this.applyDead(
        dead,
        `suspicion timed out after ${(sus.elapsed / 1000).toFixed(1)} s (${sus.confirmations} of ${k} confirmations)`,
      );
    });
    if (s.from === this.self.id) this.d.counters.suspicionsRaised++;
    this.broadcast(s);
    this.change(e, "suspect", `suspected by ${s.from}`);
  }

  applyDead(d: Dead, reason?: string): void {
    const e = this.map.get(d.id);
    if (!e) return;
    if (e === this.self) {
      if (this.leaving) return;
      if (d.incarnation < e.incarnation) this.reassert(`declared dead by ${d.from}`);
      else this.refute(d.incarnation, `declared dead by ${d.from}`, true);
      return;
    }
    if (d.incarnation < e.incarnation) return;
    if (e.state === "dead" || e.state === "left") return;
    e.suspicion?.cancel();
    e.suspicion = undefined;
    e.incarnation = d.incarnation;
    this.broadcast(d);
    const left = d.from === d.id;
    this.change(
      e,
      left ? "left" : "dead",
      left ? "left the cluster" : (reason ?? `declared dead by ${d.from}`),
    );
  }

  /** Our state for a push-pull exchange. */
  entries(): PushPullEntry[] {
    return [...this.map.values()].map((e) => ({
      id: e.id,
      address: e.address,
      meta: e.meta,
      incarnation: e.incarnation,
      state: e.state,
    }));
  }

  /**
   * Merges a remote state. A member the remote side holds dead is only suspected here (as
   * memberlist): our own probes get the chance to see it alive before we declare it dead.
   */
  merge(entries: readonly PushPullEntry[], from: string): void {
    for (const r of entries) {
      if (r.state === "alive") {
        this.applyAlive(
          { type: "alive", id: r.id, incarnation: r.incarnation, address: r.address, meta: r.meta },
          "push-pull",
        );
      } else if (r.state === "left") {
        this.applyDead({ type: "dead", id: r.id, incarnation: r.incarnation, from: r.id });
      } else {
        this.applySuspect({ type: "suspect", id: r.id, incarnation: r.incarnation, from });
      }
    }
  }

  /** Forgets members that left over gossipToTheDeadTime ago, and dead ones after reconnectTimeout. */
  reap(): void {
    const now = this.d.clock.now();
    let removed = false;
    for (const e of this.map.values()) {
      const keep = e.state === "left" ? this.d.config.gossipToTheDeadTime : this.d.config.reconnectTimeout;
      if ((e.state === "dead" || e.state === "left") && now - e.since > keep && e !== this.self) {
        this.map.delete(e.id);
        removed = true;
      }
    }
    if (removed) this.peerIds = this.peerIds.filter((id) => this.map.has(id));
  }

  /** Dead members still worth gossiping to (so they learn of it and refute). */
  recentlyDead(id: string): boolean {
    const e = this.map.get(id);
    return e?.state === "dead" && this.d.clock.now() - e.since < this.d.config.gossipToTheDeadTime;
  }

  /** Cancels every suspicion timer. */
  close(): void {
    for (const e of this.map.values()) e.suspicion?.cancel();
  }

  private refute(heard: number, why: string, unhealthy: boolean): void {
    this.self.incarnation = Math.max(this.self.incarnation, heard) + 1;
    this.d.counters.refutations++;
    if (unhealthy) this.d.awareness.apply(1);
    this.d.logger.info(
      { member: this.self.id, incarnation: this.self.incarnation },
      `membership: refuting (${why}) with incarnation ${this.self.incarnation}`,
    );
    this.broadcast(this.localAlive());
  }

  /**
   * A packet came from `id`, which we hold suspect or dead: it is up. Gossip our verdict again
   * (at most once a protocol period), so that it rides our answer to it: if it has not heard
   * of the suspicion, it refutes; if it refuted and we missed the refutation, it gossips its
   * newer alive again (reassert) and our view is corrected — rather than at the next push-pull.
   */
  remind(id: string): void {
    const e = this.map.get(id);
    if (!e || e === this.self || (e.state !== "suspect" && e.state !== "dead")) return;
    const now = this.d.clock.now();
    if (e.remindedAt !== undefined && now - e.remindedAt < this.d.config.probeInterval) return;
    e.remindedAt = now;
    this.broadcast({ type: e.state, id, incarnation: e.incarnation, from: this.self.id });
  }

  /**
   * A suspicion or death of us at an incarnation we already refuted: someone missed the
   * refutation (it was lost, or they were cut off when it spread) and will convict us when
   * their suspicion times out. Gossip our current alive again — no new incarnation, since the
   * one we have already beats theirs — so it reaches them.
   */
  private reassert(why: string): void {
    this.d.counters.reassertions++;
    this.d.logger.debug(
      { member: this.self.id, incarnation: this.self.incarnation },
      `membership: stale verdict (${why}): gossiping alive at incarnation ${this.self.incarnation} again`,
    );
    this.broadcast(this.localAlive());
  }

  private change(e: Entry, state: MemberState, reason: string): void {
    const previous = e.state;
    if (state !== "suspect") {
      e.suspicion?.cancel();
      e.suspicion = undefined;
    }
    e.state = state;
    e.since = this.d.clock.now();
    this.d.emit("member", { member: snapshot(e), previous, reason });
  }

  private broadcast(u: Update, onSent?: () => void): void {
    // A member's own alive is no news to it; a suspicion or death of it is (it refutes).
    this.d.queue.enqueue(u.id, encodeMessage(u), onSent, u.type !== "alive");
  }
}

function snapshot(e: Entry): Member {
  return {
    id: e.id,
    address: e.address,
    meta: e.meta,
    incarnation: e.incarnation,
    state: e.state,
    since: e.since,
  };
}

function sameMeta(a: MemberMeta, b: MemberMeta): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => a[k] === b[k]);
}
