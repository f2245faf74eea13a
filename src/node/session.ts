import type { CommitResult, PushRecord, Store } from "../store/types.ts";
import type { Logger } from "../util/logger.ts";
import { type App, EffectRecorder, toBytes } from "./app.ts";
import type { NodeCounters } from "./counters.ts";

/**
 * A session while a connection on this node holds it: the in-order queue of client
 * messages waiting for the handler, and the window of pushes sent but not yet acknowledged.
 * The store holds the truth; this is the working copy of one claim (one `epoch`).
 */
export interface SessionOutput {
  /** A message was committed (or found committed): acknowledge it with its reply. */
  ack(seq: number, reply: Uint8Array | undefined): void;
  push(record: PushRecord): void;
  /** The handler failed on `seq`; it counts as processed (with an empty reply). */
  appError(seq: number, message: string): void;
  /** The session cannot go on here (fenced by another claim, or the store failed). */
  abort(code: "LL_SESSION_MOVED" | "LL_STORE", message: string): void;
  /** Connection-level buffer pressure, for backpressure on reading. */
  queueChanged(depth: number): void;
}

export interface SessionDeps {
  nodeId: string;
  store: Store;
  app: App;
  logger: Logger;
  pushWindow: number;
  counters: NodeCounters;
}

export class LiveSession {
  /** Highest client sequence committed. */
  lastClientSeq: number;
  /** Highest client sequence accepted into the queue. */
  private lastQueuedSeq: number;
  private readonly queue: Array<{ seq: number; payload: Uint8Array }> = [];
  private processing: Promise<void> | undefined;
  /** Highest push sequence known to exist in the store. */
  private pushHead: number;
  private sentPushSeq: number;
  private ackedPushSeq: number;
  private pulling = false;
  private repull = false;
  /** Topics this session subscribes to (so publishes can be routed to it). */
  readonly topics = new Set<string>();
  private output: SessionOutput | undefined;
  private stopped = false;
  /** Pushes up to here existed before this claim: sending them is a replay. */
  private readonly replayUpTo: number;

  constructor(
    readonly id: string,
    readonly epoch: number,
    record: { lastClientSeq: number; lastPushSeq: number; ackedPushSeq: number },
    private readonly deps: SessionDeps,
  ) {
    this.lastClientSeq = record.lastClientSeq;
    this.lastQueuedSeq = record.lastClientSeq;
    this.pushHead = record.lastPushSeq;
    this.ackedPushSeq = record.ackedPushSeq;
    this.sentPushSeq = record.ackedPushSeq;
    this.replayUpTo = record.lastPushSeq;
  }

  get queueDepth(): number {
    return this.queue.length;
  }

  /** Attaches a connection; pushes the client has not acknowledged are sent again. */
  attach(output: SessionOutput, clientHasPushes: number): void {
    this.output = output;
    if (clientHasPushes > this.ackedPushSeq) void this.ackPushes(clientHasPushes);
    this.sentPushSeq = Math.max(this.ackedPushSeq, clientHasPushes);
    void this.pump();
  }

  /**
   * A client message. Resent ones (already committed) are answered from the stored reply;
   * the next one in sequence is queued; one that skips ahead is a client bug (returns false).
   */
  receive(seq: number, payload: Uint8Array): boolean {
    this.deps.counters.messagesIn++;
    if (seq <= this.lastQueuedSeq) {
      if (seq <= this.lastClientSeq) {
        this.deps.counters.duplicates++;
        void this.deps.store.reply(this.id, seq).then(
          (reply) => this.ack(seq, reply),
          (err: unknown) => this.output?.abort("LL_STORE", `reading a stored reply failed: ${String(err)}`),
        );
      }
      // Queued and not yet committed: its acknowledgement is on the way.
      return true;
    }
    if (seq !== this.lastQueuedSeq + 1) return false;
    this.lastQueuedSeq = seq;
    this.queue.push({ seq, payload });
    this.output?.queueChanged(this.queue.length);
    if (!this.processing) this.processing = this.drain();
    return true;
  }

  /** Resolves when every queued message has been handled and committed. */
  async settled(): Promise<void> {
    while (this.processing) await this.processing;
  }

  /** Stops processing after the current message; queued ones are dropped (the client will
   *  resend them, unacknowledged, wherever it reconnects). */
  stop(): void {
    this.stopped = true;
    this.queue.length = 0;
    this.output = undefined;
  }

  private async drain(): Promise<void> {
    try {
      while (!this.stopped && this.queue.length > 0) {
        const { seq, payload } = this.queue.shift()!;
        this.output?.queueChanged(this.queue.length);
        await this.process(seq, payload);
      }
    } finally {
      this.processing = undefined;
    }
  }

  private async process(seq: number, payload: Uint8Array): Promise<void> {
    const { store, app, nodeId } = this.deps;
    const ctx = new EffectRecorder({ id: this.id, nodeId }, store);
    let reply: Uint8Array;
    let failure: string | undefined;
    try {
      reply = toBytes(await app.handle(payload, ctx));
    } catch (err) {
      // The message is processed, with no effects: running it again would fail again.
      failure = err instanceof Error ? err.message : String(err);
      reply = new Uint8Array(0);
      ctx.effects.length = 0;
    }
    let result: CommitResult;
    try {
      result = await store.commit({ session: this.id, epoch: this.epoch, seq, reply, effects: ctx.effects });
    } catch (err) {
      // Never acknowledge what could not be stored.
      this.deps.logger.error(
        { event: "store-error", session: this.id, seq, err: String(err) },
        "commit failed",
      );
      this.output?.abort("LL_STORE", `the store could not commit message ${seq}`);
      this.stop();
      return;
    }
    switch (result.status) {
      case "committed": {
        this.deps.counters.processed++;
        if (failure !== undefined) this.deps.counters.appErrors++;
        this.lastClientSeq = seq;
        if (failure !== undefined) this.output?.appError(seq, failure);
        this.ack(seq, reply);
        // Pushes to other sessions and publishes reach their sessions through the store's
        // change notifications (the node routes them), on this node and on the others.
        for (const p of result.pushes) if (p.session === this.id) this.notePush(p.seq);
        for (const e of ctx.effects) {
          if (e.kind === "subscribe") this.topics.add(e.topic);
          else if (e.kind === "unsubscribe") this.topics.delete(e.topic);
        }
        if (ctx.effects.some((e) => e.kind === "subscribe")) void this.deliver();
        break;
      }
      case "duplicate":
        this.deps.counters.duplicates++;
        this.lastClientSeq = Math.max(this.lastClientSeq, seq);
        this.ack(seq, result.reply);
        break;
      case "fenced":
      case "unknown-session":
        this.deps.counters.sessionsMoved++;
        this.output?.abort("LL_SESSION_MOVED", "the session was taken over by another connection");
        this.stop();
        break;
      case "gap":
        this.output?.abort("LL_STORE", `the store expected message ${result.expected}, not ${seq}`);
        this.stop();
        break;
    }
  }

  private ack(seq: number, reply: Uint8Array | undefined): void {
    if (!this.output) return;
    this.deps.counters.repliesOut++;
    this.output.ack(seq, reply);
  }

  /** A push to this session exists in the store up to `seq`. */
  notePush(seq: number): void {
    if (seq > this.pushHead) this.pushHead = seq;
    void this.pump();
  }

  /** The client has every push up to `upTo`. */
  async ackPushes(upTo: number): Promise<void> {
    if (upTo <= this.ackedPushSeq) return;
    this.deps.counters.pushAcks += upTo - this.ackedPushSeq;
    this.ackedPushSeq = upTo;
    try {
      await this.deps.store.ackPushes(this.id, this.epoch, upTo);
    } catch (err) {
      this.deps.logger.warn({ event: "store-error", session: this.id, err: String(err) }, "ackPushes failed");
    }
    void this.pump();
  }

  /** Moves new entries of subscribed topics into this session's pushes, then sends them. */
  async deliver(): Promise<void> {
    if (this.stopped || this.topics.size === 0) return;
    try {
      for (;;) {
        const delivered = await this.deps.store.deliver(this.id, this.epoch, this.deps.pushWindow);
        for (const p of delivered) this.notePush(p.seq);
        if (delivered.length < this.deps.pushWindow) break;
      }
    } catch (err) {
      this.deps.logger.warn({ event: "store-error", session: this.id, err: String(err) }, "deliver failed");
    }
  }

  /** Sends stored pushes the client has not had, within the window. */
  private async pump(): Promise<void> {
    if (this.pulling) {
      this.repull = true;
      return;
    }
    this.pulling = true;
    try {
      do {
        this.repull = false;
        const room = this.deps.pushWindow - (this.sentPushSeq - this.ackedPushSeq);
        if (!this.output || this.stopped || room <= 0 || this.sentPushSeq >= this.pushHead) continue;
        const records = await this.deps.store.pushes(this.id, this.sentPushSeq, room);
        for (const r of records) {
          if (!this.output || r.seq <= this.sentPushSeq) continue;
          this.output.push(r);
          this.deps.counters.pushesOut++;
          if (r.seq <= this.replayUpTo) this.deps.counters.pushesReplayed++;
          this.sentPushSeq = r.seq;
        }
        if (records.length === room) this.repull = true;
      } while (this.repull);
    } catch (err) {
      this.deps.logger.warn(
        { event: "store-error", session: this.id, err: String(err) },
        "reading pushes failed",
      );
    } finally {
      this.pulling = false;
    }
  }
}
