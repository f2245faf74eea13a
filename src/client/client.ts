import { LifelineError, TimeoutError } from "../errors.ts";
import type { Message } from "../protocol/messages.ts";
import { backoffDelay } from "../util/backoff.ts";
import { type Clock, type Random, systemClock, type Timer } from "../util/clock.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import { TypedEmitter } from "../util/typed-emitter.ts";
import { ConnectTimeouts, dial, NoServerError } from "./dialer.ts";
import { AppError, DroppedError, SessionLostError } from "./errors.ts";
import { Inbox, type Incoming } from "./inbox.ts";
import { type Connector, type Link, tcpConnector } from "./link.ts";
import { type ClientOptions, type ResolvedClientOptions, resolveClientOptions } from "./options.ts";
import { Outbox, type OutboxEntry } from "./outbox.ts";
import { OutboxFile, type SavedSession } from "./outbox-file.ts";
import { ServerPicker } from "./picker.ts";

export type ClientState = "idle" | "connecting" | "connected" | "reconnecting" | "closing" | "closed";

export type ClientEvents = {
  connected: [{ node: string; address: string; resumed: boolean; took: number }];
  disconnected: [{ node: string; address: string; error?: LifelineError }];
  reconnecting: [{ attempt: number; delay: number; error?: LifelineError }];
  /** Now on another node than before; `took` runs from the loss of the old connection. */
  failover: [{ from: string; to: string; took: number }];
  /** The session carried on: what the node had processed, what was resent. */
  resumed: [{ node: string; sessionId: string; lastClientSeq: number; resent: number }];
  /** The session expired: these messages were unacknowledged and may not have been processed. */
  "session-lost": [{ sessionId: string; reason: string; unacknowledged: Uint8Array[] }];
  goaway: [{ node: string; reason: string; deadline: number }];
  /** A message pushed by the cluster, once each, in order. */
  message: [Incoming];
  /** A reply to a message restored from the outbox file (no caller waits for it). */
  reply: [{ seq: number; payload: Uint8Array; request: Uint8Array }];
  /** Dropped from a full outbox (overflow: drop-oldest). */
  dropped: [{ payload: Uint8Array }];
  /** A message restored from the outbox file failed (LL_APP...): no caller waits for it. */
  error: [LifelineError];
};

export interface ClientStatus {
  state: ClientState;
  node: string | undefined;
  address: string | undefined;
  sessionId: string | undefined;
  queue: { unsent: number; inflight: number; bytes: number };
  counters: {
    sent: number;
    resent: number;
    acknowledged: number;
    received: number;
    connects: number;
    failovers: number;
    dropped: number;
    lost: number;
  };
  lastError: { code: string; message: string; at: number } | undefined;
  /** Smoothed round trip to the current node (PING), ms. */
  rtt: number | undefined;
}

/**
 * A link must live this long, ms, for the next reconnect to be immediate; one that dies
 * sooner counts as a failed attempt (backoff). 1 s: longer than any handshake-and-drop loop,
 * shorter than a real session with a node that then fails.
 */
const STABLE_LINK = 1000;

/** What `close()` left behind: messages never sent, and sent but not acknowledged. */
export interface CloseReport {
  unsent: number;
  unacknowledged: number;
  /** True when they are kept in the outbox file for the next start. */
  kept: boolean;
}

type Waiter = { resolve: (reply: Uint8Array) => void; reject: (err: Error) => void };

/**
 * The failover client. It keeps one connection to one node of the cluster and moves to
 * another when that one fails (refused, reset, silent past `deadAfter`, GOAWAY), resuming
 * its session there: messages the cluster has not processed are resent, messages it has
 * processed are answered from the stored reply, pushes arrive once and in order.
 * See `ClientOptions` for every knob.
 */
export class LifelineClient extends TypedEmitter<ClientEvents> {
  readonly options: ResolvedClientOptions;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly connector: Connector;
  private readonly logger: Logger;
  private readonly picker: ServerPicker;
  private readonly timeouts: ConnectTimeouts;
  private readonly file: OutboxFile | undefined;
  private readonly outbox: Outbox;
  private readonly inbox = new Inbox(() => this.flushPushAcks());
  private readonly waiters = new Map<number, Waiter>();
  /** Non-fatal errors about a message (LL_APP, LL_REPLY_EXPIRED), until its reply comes. */
  private readonly errorsFor = new Map<number, { code: string; message: string }>();
  private state: ClientState = "idle";
  private link: Link | undefined;
  private session: SavedSession | undefined;
  private readonly topics = new Set<string>();
  private lastNode: { id: string; address: string } | undefined;
  private lostAt: number | undefined;
  private lastFailed: string | undefined;
  private lastFrameAt = 0;
  /** Time our own event loop was blocked since `lastFrameAt` (not the node's silence). */
  private stalledSinceFrame = 0;
  private watchTimer: Timer | undefined;
  private pingTimer: Timer | undefined;
  private sleepTimer: Timer | undefined;
  private wake: (() => void) | undefined;
  private moving = false;
  private pushAckScheduled = false;
  private sentPushAck = 0;
  private pingId = 0;
  private rtt: number | undefined;
  private lastError: ClientStatus["lastError"];
  private readonly counters: ClientStatus["counters"] = {
    sent: 0,
    resent: 0,
    acknowledged: 0,
    received: 0,
    connects: 0,
    failovers: 0,
    dropped: 0,
    lost: 0,
  };
  private readonly connectedWaiters = new Set<() => void>();
  private dialAbort: AbortController | undefined;
  private loop: Promise<void> | undefined;
  private linkClosed: (() => void) | undefined;
  private closing: Promise<CloseReport> | undefined;

  constructor(opts: ClientOptions) {
    super();
    this.options = resolveClientOptions(opts);
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.connector = opts.connect ?? tcpConnector;
    this.logger = opts.logger ?? silentLogger;
    this.picker = new ServerPicker(this.options.servers, this.options.avoidFor);
    this.timeouts = new ConnectTimeouts(this.options.connectTimeout, this.options.minConnectTimeout);
    this.file = this.options.outbox.path ? new OutboxFile(this.options.outbox.path) : undefined;
    this.outbox = new Outbox(this.options.outbox, this.file);
    this.session = this.file?.session();
    for (const t of this.session?.topics ?? []) this.topics.add(t);
  }

  // ---------------------------------------------------------------- public API

  /**
   * Starts connecting (and staying connected). Resolves once connected; with `timeout`
   * (ms), rejects with `LL_TIMEOUT` if that takes longer — the client keeps trying, and
   * messages sent meanwhile wait in the outbox.
   */
  connect(opts: { timeout?: number } = {}): Promise<void> {
    if (this.state === "closing" || this.state === "closed")
      return Promise.reject(new LifelineError("LL_CLOSED", "the client is closed"));
    if (!this.loop) {
      this.state = "connecting";
      this.loop = this.run();
    }
    if (this.state === "connected") return Promise.resolve();
    return new Promise((resolve, reject) => {
      let timer: Timer | undefined;
      const done = () => {
        timer?.cancel();
        this.connectedWaiters.delete(done);
        if (this.state === "connected") resolve();
        else reject(new LifelineError("LL_CLOSED", "the client was closed before it connected"));
      };
      this.connectedWaiters.add(done);
      if (opts.timeout !== undefined) {
        timer = this.clock.timeout(opts.timeout, () => {
          this.connectedWaiters.delete(done);
          reject(new TimeoutError(`not connected within ${opts.timeout} ms; still trying`, opts.timeout!));
        });
      }
    });
  }

  /**
   * Sends a message; resolves with the reply once the cluster has processed it (exactly
   * once, on whichever node). Rejects with `LL_OUTBOX_FULL` (the outbox is full),
   * `LL_OUTBOX_DROPPED` (dropped for a newer one), `LL_SESSION_LOST`, `LL_APP` (the handler
   * failed) or `LL_CLOSED`.
   */
  send(payload: Uint8Array | string): Promise<Uint8Array> {
    if (this.state === "closing" || this.state === "closed")
      return Promise.reject(new LifelineError("LL_CLOSED", "the client is closed"));
    const bytes = typeof payload === "string" ? Buffer.from(payload) : payload;
    let added: ReturnType<Outbox["add"]>;
    try {
      added = this.outbox.add(bytes);
    } catch (err) {
      return Promise.reject(err);
    }
    for (const d of added.dropped) {
      this.counters.dropped++;
      this.settle(d, undefined, new DroppedError(d.payload));
      this.emit("dropped", { payload: d.payload });
    }
    const p = new Promise<Uint8Array>((resolve, reject) =>
      this.waiters.set(added.entry.id, { resolve, reject }),
    );
    this.pump();
    return p;
  }

  /** Publishes to a topic (the node must run the `pubsub` app). */
  async publish(topic: string, data: Uint8Array | string): Promise<void> {
    const cmd =
      typeof data === "string"
        ? { op: "publish", topic, data }
        : { op: "publish", topic, data64: Buffer.from(data).toString("base64") };
    await this.command(cmd);
  }

  /**
   * Subscribes to a topic (the node must run the `pubsub` app): its entries arrive as
   * messages with `topic` and `offset` set. `after`: the offset to continue after, or "end"
   * (default) for only what is published from now on. Resolves with the topic's head.
   */
  async subscribe(topic: string, after: number | "end" = "end"): Promise<number> {
    if (this.isClosed) throw new LifelineError("LL_CLOSED", "the client is closed");
    this.topics.add(topic);
    this.saveSession();
    const r = await this.command({ op: "subscribe", topic, after });
    return Number(r.head ?? 0);
  }

  async unsubscribe(topic: string): Promise<void> {
    await this.command({ op: "unsubscribe", topic });
    this.topics.delete(topic);
    this.saveSession();
  }

  private async command(cmd: object): Promise<Record<string, unknown>> {
    const reply = await this.send(JSON.stringify(cmd));
    let r: Record<string, unknown>;
    try {
      r = JSON.parse(Buffer.from(reply).toString("utf8"));
    } catch {
      throw new LifelineError(
        "LL_APP",
        "the node's app did not answer a pubsub command (is it running pubsub?)",
      );
    }
    if (r.ok !== true) throw new LifelineError("LL_APP", String(r.error ?? "command failed"));
    return r;
  }

  /** Messages pushed by the cluster, as an async iterator (each iterator sees every message). */
  messages(): AsyncIterableIterator<Incoming> {
    return this.inbox.iterator();
  }

  /**
   * Events never break the client: a listener that throws is logged and the state machine
   * carries on; an `error` nobody listens to is logged instead of thrown.
   */
  protected override emit<K extends keyof ClientEvents & string>(name: K, ...args: ClientEvents[K]): void {
    if (name === "error" && this.listenerCount("error") === 0) {
      const e = args[0] as LifelineError;
      this.logger.warn({ event: "client-error", code: e.code }, `unhandled client error: ${e.message}`);
      return;
    }
    try {
      super.emit(name, ...args);
    } catch (err) {
      this.logger.error(
        {
          event: "listener-error",
          on: name,
          err: err instanceof Error ? (err.stack ?? err.message) : String(err),
        },
        `a "${name}" listener threw; the client carries on`,
      );
    }
  }

  /** The `name` option: shown in the nodes' logs, and the `client` label of its metrics. */
  get name(): string | undefined {
    return this.options.name;
  }

  status(): ClientStatus {
    return {
      state: this.state,
      node: this.link?.welcome.nodeId,
      address: this.link?.address,
      sessionId: this.session?.id,
      queue: {
        unsent: this.outbox.unsentCount,
        inflight: this.outbox.inflightCount,
        bytes: this.outbox.bytes,
      },
      counters: { ...this.counters },
      lastError: this.lastError ? { ...this.lastError } : undefined,
      rtt: this.rtt,
    };
  }

  /**
   * Stops: waits up to `timeout` ms (default 5,000) for the outbox to empty, then closes the
   * connection. What is still held is reported (and, with an outbox file, kept there for the
   * next start); the senders of those messages get `LL_CLOSED`.
   */
  close(opts: { timeout?: number } = {}): Promise<CloseReport> {
    this.closing ??= this.shutdown(opts.timeout ?? 5000);
    return this.closing;
  }

  private async shutdown(timeout: number): Promise<CloseReport> {
    const running = this.loop !== undefined;
    this.state = "closing";
    if (running && this.outbox.size > 0) {
      // Flush: through the current connection, or the next one if it is being replaced.
      const end = this.clock.now() + timeout;
      while (this.outbox.size > 0 && this.clock.now() < end) {
        await new Promise<void>((r) => this.clock.timeout(10, r));
      }
    }
    this.state = "closed";
    this.flushPushAcks();
    this.dialAbort?.abort();
    this.wake?.();
    this.stopTimers();
    const link = this.link;
    this.link = undefined;
    link?.close();
    this.linkClosed?.();
    await this.loop;
    const report = {
      unsent: this.outbox.unsentCount,
      unacknowledged: this.outbox.inflightCount,
      kept: !!this.file,
    };
    const held = this.file ? this.outbox.all() : this.outbox.clear();
    for (const e of held)
      this.settle(
        e,
        undefined,
        new LifelineError("LL_CLOSED", "the client was closed before the cluster acknowledged this message"),
      );
    for (const w of [...this.connectedWaiters]) w();
    this.inbox.close();
    this.file?.close();
    return report;
  }

  // ---------------------------------------------------------------- connection loop

  private get isClosed(): boolean {
    return this.state === "closed";
  }

  private async run(): Promise<void> {
    let attempt = 0;
    /** Links in a row that died within STABLE_LINK of being adopted. */
    let youngDeaths = 0;
    while (this.state !== "closed") {
      let error: LifelineError | undefined;
      try {
        await this.establish();
        const adoptedAt = this.clock.now();
        // Connected: wait for the link to go (it may already have).
        if (this.link) {
          await new Promise<void>((resolve) => {
            this.linkClosed = resolve;
          });
          this.linkClosed = undefined;
        }
        if (this.isClosed) break;
        // The first try after losing a node is immediate: the others are most likely fine.
        // Links that die young twice in a row (a node that accepts and then drops every
        // connection: a crash loop, an error right after the handshake) count as failed
        // attempts instead, so such a node gets backoff, not a reconnect storm.
        youngDeaths = this.clock.now() - adoptedAt >= STABLE_LINK ? 0 : youngDeaths + 1;
        if (youngDeaths < 2) {
          attempt = 0;
          continue;
        }
      } catch (err) {
        if (this.isClosed) break;
        error =
          err instanceof LifelineError ? err : new LifelineError("LL_INTERNAL", String(err), { cause: err });
      }
      if (error) this.noteError(error);
      attempt++;
      const delay =
        this.options.strategy === "classic"
          ? this.options.classicRetryDelay
          : backoffDelay(
              attempt - 1,
              { base: this.options.backoffBase, cap: this.options.backoffCap },
              this.random,
            );
      if (this.state !== "closing") this.state = "reconnecting";
      // The sleep is set up before the event, so a close() from a listener ends it at once.
      const slept = new Promise<void>((resolve) => {
        this.wake = resolve;
        this.sleepTimer = this.clock.timeout(delay, resolve);
      });
      this.emit("reconnecting", { attempt, delay, error });
      await slept;
      this.wake = undefined;
    }
  }

  private candidates(): string[] {
    if (this.options.strategy === "classic") return [...this.options.servers];
    return this.picker.order(this.clock.now(), this.random, this.lastFailed);
  }

  private async establish(): Promise<void> {
    const classic = this.options.strategy === "classic";
    this.dialAbort = new AbortController();
    const started = this.clock.now();
    const hello: Parameters<typeof dial>[0]["hello"] = {
      role: "client",
      heartbeat: classic ? 0 : this.options.heartbeat,
      lastPushSeq: this.session?.lastPushSeq ?? 0,
    };
    if (this.session)
      hello.session = { id: this.session.id, token: this.session.token, epoch: this.session.epoch };
    if (this.options.name) hello.name = this.options.name;
    let tokenRefused = false;
    let link: Link;
    try {
      ({ link } = await dial(
        {
          candidates: this.candidates(),
          hello,
          timeoutFor: (a) => (classic ? this.options.connectTimeout : this.timeouts.timeoutFor(a)),
          mode: classic ? "sequential" : "race",
          raceDelay: this.options.raceDelay,
          maxParallel: this.options.maxParallel,
          signal: this.dialAbort.signal,
          onFailure: (f) => {
            if (f.error.code === "LL_ABORTED") return;
            if (f.error instanceof TimeoutError) this.timeouts.timedOut(f.address);
            if (f.error.code === "LL_SESSION_TOKEN") tokenRefused = true;
            if (f.error.code === "LL_SESSION_MOVED") {
              // Another attempt (of this race, or one whose WELCOME was lost) claimed the
              // session: the node is fine; present the newer epoch next time.
              const epoch = (f.error as { epoch?: number }).epoch;
              if (this.session && epoch !== undefined && epoch > (this.session.epoch ?? 0))
                this.session.epoch = epoch;
              return;
            }
            this.picker.failed(
              f.address,
              this.clock.now(),
              f.error.code === "LL_DRAINING" ? "draining" : undefined,
            );
            this.logger.debug(
              { event: "connect-failed", address: f.address, code: f.error.code, took: f.took },
              f.error.message,
            );
          },
        },
        this.connector,
        this.clock,
      ));
    } catch (err) {
      if (tokenRefused && this.session) this.loseSession("the nodes refused its resume token");
      throw err;
    } finally {
      this.dialAbort = undefined;
    }
    if (this.state === "closed") {
      link.destroy();
      return;
    }
    this.adopt(link, started);
  }

  private adopt(link: Link, started: number): void {
    const w = link.welcome;
    this.picker.succeeded(link.address);
    this.picker.latency(link.address, link.connectTime);
    this.timeouts.sample(link.address, link.connectTime);
    this.counters.connects++;
    const had = this.session;
    if (had && (!w.resumed || w.sessionId !== had.id))
      this.loseSession("it expired (the node started a new one)");
    const resumed = !!had && w.resumed && w.sessionId === had.id;
    // Never reuse a sequence number: the file may lag behind what was sent (a crash between
    // writes, a power loss rolling back the last commits), the node knows what it processed.
    let lastSeq = resumed ? Math.max(had!.lastSeq, w.lastClientSeq) : 0;
    for (const e of this.outbox.inflight()) lastSeq = Math.max(lastSeq, e.seq ?? 0);
    this.session = {
      id: w.sessionId,
      token: w.resumeToken,
      epoch: w.epoch,
      lastPushSeq: resumed ? had!.lastPushSeq : 0,
      lastSeq,
      topics: [...this.topics],
    };
    this.sentPushAck = this.session.lastPushSeq;
    this.saveSession();
    this.link = link;
    this.moving = false;
    this.errorsFor.clear();
    link.on("message", (m) => this.onMessage(link, m));
    link.on("close", (info) => this.onClose(link, info.error));
    link.start();
    if (this.link !== link) return; // it closed while its first frames were replayed: dial again
    this.lastFrameAt = this.clock.now();
    this.stalledSinceFrame = 0;
    // Resend everything sent and not answered, in order, with the same sequence numbers:
    // the node runs what it has not processed and answers the rest from stored replies.
    const resend = this.outbox.inflight();
    for (const e of resend) {
      link.send({ type: "msg", seq: e.seq!, payload: e.payload });
      this.counters.resent++;
    }
    const took = this.lostAt !== undefined ? this.clock.now() - this.lostAt : this.clock.now() - started;
    const prev = this.lastNode;
    this.lastNode = { id: w.nodeId, address: link.address };
    if (this.state !== "closing") this.state = "connected";
    this.lastFailed = undefined;
    this.emit("connected", { node: w.nodeId, address: link.address, resumed, took });
    if (resumed) {
      this.emit("resumed", {
        node: w.nodeId,
        sessionId: w.sessionId,
        lastClientSeq: w.lastClientSeq,
        resent: resend.length,
      });
    }
    if (prev && prev.id !== w.nodeId) {
      this.counters.failovers++;
      this.emit("failover", { from: prev.id, to: w.nodeId, took });
    }
    this.lostAt = undefined;
    for (const f of [...this.connectedWaiters]) f();
    this.startTimers(link);
    this.pump();
  }

  private onClose(link: Link, error: LifelineError | undefined): void {
    if (this.link !== link) return;
    this.link = undefined;
    this.stopTimers();
    this.lostAt ??= this.clock.now();
    const node = link.welcome.nodeId;
    if (this.state !== "closed") {
      if (error) {
        this.noteError(error);
        // A session taken over elsewhere says nothing about this node's health.
        if (error.code !== "LL_SESSION_MOVED") {
          this.picker.failed(link.address, this.clock.now());
          this.lastFailed = link.address;
        }
      }
      if (this.state !== "closing") this.state = "reconnecting";
      this.emit(
        "disconnected",
        error ? { node, address: link.address, error } : { node, address: link.address },
      );
    }
    this.linkClosed?.();
  }

  /** Drops the current connection (it is dead or unusable) and reconnects. */
  private abandon(link: Link, error: LifelineError): void {
    if (this.link !== link) return;
    this.onClose(link, error); // first: destroying emits a close of its own, without the error
    link.destroy();
  }

  private loseSession(reason: string): void {
    const s = this.session;
    if (!s) return;
    const lost = this.outbox.dropInflight();
    this.counters.lost += lost.length;
    for (const e of lost) this.settle(e, undefined, new SessionLostError(s.id, e.payload, reason));
    this.session = undefined;
    this.saveSession();
    this.logger.warn(
      { event: "session-lost", session: s.id, unacknowledged: lost.length },
      `session lost: ${reason}`,
    );
    this.emit("session-lost", { sessionId: s.id, reason, unacknowledged: lost.map((e) => e.payload) });
  }

  // ---------------------------------------------------------------- messages

  private onMessage(link: Link, m: Message): void {
    if (this.link !== link) return;
    this.lastFrameAt = this.clock.now();
    this.stalledSinceFrame = 0;
    switch (m.type) {
      case "ack":
        for (const r of m.replies) this.complete(r.seq, r.payload);
        this.pump();
        return;
      case "push":
        this.onPush(link, m.seq, m.payload);
        return;
      case "error":
        if (!m.fatal && m.seq !== undefined) {
          this.errorsFor.set(m.seq, { code: m.code, message: m.message });
          return;
        }
        this.noteError(new LifelineError(m.code, m.message));
        if (m.fatal) this.abandon(link, new LifelineError(m.code, `${link.welcome.nodeId}: ${m.message}`));
        return;
      case "heartbeat":
        this.picker.report(link.address, m.state, m.load);
        if (m.state === "draining" && !this.moving)
          this.logger.debug({ event: "node-draining", node: link.welcome.nodeId }, "node draining");
        return;
      case "topology":
        if (this.options.topology) this.picker.topology(m.nodes);
        return;
      case "pong": {
        const sample = this.clock.now() - m.sentAt;
        this.rtt = this.rtt === undefined ? sample : this.rtt * 0.875 + sample * 0.125;
        this.picker.latency(link.address, sample);
        return;
      }
      case "goaway":
        this.onGoaway(link, m.reason, m.deadline, m.nodes);
        return;
      default:
    }
  }

  private complete(seq: number, reply: Uint8Array): void {
    const entry = this.outbox.complete(seq);
    if (!entry) return; // an answer to a resend we already had
    this.counters.acknowledged++;
    const err = this.errorsFor.get(seq);
    this.errorsFor.delete(seq);
    if (err?.code === "LL_APP") this.settle(entry, undefined, new AppError(err.message, seq));
    else this.settle(entry, reply);
  }

  private settle(e: OutboxEntry, reply: Uint8Array | undefined, error?: Error): void {
    const w = this.waiters.get(e.id);
    this.waiters.delete(e.id);
    if (w) {
      if (error) w.reject(error);
      else w.resolve(reply!);
    } else if (e.recovered && e.seq !== undefined) {
      // Restored from the outbox file: nobody waits, so the application hears by event.
      if (!error) this.emit("reply", { seq: e.seq, payload: reply!, request: e.payload });
      else
        this.emit(
          "error",
          error instanceof LifelineError
            ? error
            : new LifelineError("LL_INTERNAL", String(error), { cause: error }),
        );
    }
  }

  private onPush(link: Link, seq: number, payload: Uint8Array): void {
    const s = this.session!;
    if (seq <= s.lastPushSeq) return; // resent, and we have it
    if (seq !== s.lastPushSeq + 1) {
      this.abandon(link, new LifelineError("LL_PROTOCOL", `push ${seq} skips ahead of ${s.lastPushSeq + 1}`));
      return;
    }
    s.lastPushSeq = seq;
    this.file?.saveSession(s);
    this.counters.received++;
    const msg = this.inbox.decode(seq, payload, this.topics);
    this.emit("message", msg);
    this.inbox.push(msg);
    this.schedulePushAck();
  }

  private schedulePushAck(): void {
    if (this.pushAckScheduled) return;
    this.pushAckScheduled = true;
    this.clock.immediate(() => this.flushPushAcks());
  }

  /** Acknowledges pushes handed to the application, unless its iterators are backed up (then
   *  the node's push window stops the flow until they catch up). */
  private flushPushAcks(): void {
    this.pushAckScheduled = false;
    const upTo = this.session?.lastPushSeq ?? 0;
    if (!this.link || upTo <= this.sentPushAck || this.inbox.backedUp) return;
    this.sentPushAck = upTo;
    this.link.send({ type: "push-ack", upTo });
  }

  private onGoaway(
    link: Link,
    reason: string,
    deadline: number,
    nodes: Parameters<ServerPicker["topology"]>[0],
  ): void {
    const node = link.welcome.nodeId;
    this.emit("goaway", { node, reason, deadline });
    this.picker.failed(link.address, this.clock.now(), "draining");
    if (this.options.topology)
      for (const n of nodes)
        this.picker.report(
          n.address,
          n.state,
          n.load ?? { connections: 0, sessions: 0, lag: 0, queue: 0, cpu: 0 },
        );
    this.lastFailed = link.address;
    this.moving = true;
    // Let what is in flight finish here (up to the grace), then move; new messages wait.
    const end = this.clock.now() + Math.min(this.options.goawayGrace, deadline / 2);
    const check = () => {
      if (this.link !== link) return;
      if (this.outbox.inflightCount === 0 || this.clock.now() >= end) {
        this.flushPushAcks();
        this.onClose(link, undefined);
        link.close();
        return;
      }
      this.clock.timeout(5, check);
    };
    check();
  }

  /** Sends what the outbox holds, within the window. */
  private pump(): void {
    const link = this.link;
    if (!link || this.moving || (this.state !== "connected" && this.state !== "closing")) return;
    while (this.outbox.inflightCount < this.options.window) {
      const s = this.session!;
      const e = this.outbox.takeNext(s.lastSeq + 1);
      if (!e) break;
      s.lastSeq = e.seq!;
      link.send({ type: "msg", seq: e.seq!, payload: e.payload });
      this.counters.sent++;
    }
    if (this.file && this.session) this.file.saveSession(this.session);
  }

  // ---------------------------------------------------------------- liveness

  private startTimers(link: Link): void {
    this.stopTimers();
    const hb = link.welcome.heartbeat;
    if (this.options.strategy !== "classic" && hb > 0) {
      const deadAfter = Math.max(this.options.deadAfter, hb * 2);
      const every = Math.min(hb, deadAfter / 4);
      let scheduledFor = this.clock.now() + every;
      const check = () => {
        if (this.link !== link) return;
        const now = this.clock.now();
        // Our own event loop was blocked for as long as this check is late: frames that
        // arrived meanwhile are not read yet, and that part of the silence is ours, not the
        // node's. Only the blocked time is forgiven — the silence before and after it counts.
        const late = now - scheduledFor;
        if (late > 0) this.stalledSinceFrame += late;
        this.clock.immediate(() => {
          if (this.link !== link) return;
          const silent = this.clock.now() - this.lastFrameAt - this.stalledSinceFrame;
          if (silent > deadAfter) {
            this.abandon(
              link,
              new TimeoutError(
                `${link.welcome.nodeId} silent for ${Math.round(silent)} ms (dead after ${deadAfter} ms)`,
                deadAfter,
              ),
            );
            return;
          }
          scheduledFor = this.clock.now() + every;
          this.watchTimer = this.clock.timeout(every, check);
        });
      };
      this.watchTimer = this.clock.timeout(every, check);
    }
    if (this.options.pingInterval > 0) {
      const ping = () => {
        if (this.link !== link) return;
        link.send({ type: "ping", id: ++this.pingId, sentAt: this.clock.now() });
        this.pingTimer = this.clock.timeout(this.options.pingInterval, ping);
      };
      ping();
    }
  }

  private stopTimers(): void {
    this.watchTimer?.cancel();
    this.pingTimer?.cancel();
    this.sleepTimer?.cancel();
    this.watchTimer = undefined;
    this.pingTimer = undefined;
  }

  private noteError(err: LifelineError): void {
    this.lastError = { code: err.code, message: err.message, at: this.clock.wall() };
    if (err instanceof NoServerError)
      this.logger.debug({ event: "no-server", failures: err.failures.length }, err.message);
  }

  private saveSession(): void {
    if (this.session) this.session.topics = [...this.topics];
    this.file?.saveSession(this.session);
  }
}

/** Creates a failover client; call `connect()` on it. */
export function createClient(opts: ClientOptions): LifelineClient {
  return new LifelineClient(opts);
}
