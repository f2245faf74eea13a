import { ConnectError, type ConnectOptions } from "../../src/client/connection.ts";
import type { Connector, Link } from "../../src/client/link.ts";
import { LifelineError, TimeoutError } from "../../src/errors.ts";
import type { Message, NodeInfo, Welcome } from "../../src/protocol/messages.ts";
import type { Timer } from "../../src/util/clock.ts";
import type { FakeClock } from "../../src/util/fake-clock.ts";

/**
 * An in-memory cluster for state-machine tests of the failover client on fake time: fake
 * nodes that answer HELLO with WELCOME, process MSGs once per session (a resend gets the
 * stored reply), send heartbeats on the FakeClock, push, and can be made to refuse, hang,
 * go silent or forget sessions. The client talks to them through `cluster.connector`.
 */

type Listener<T> = (v: T) => void;

/** One connection, as the client sees it (the `Link` interface), plus the node's controls. */
export class FakeLink implements Link {
  /** What the client sent on this link, in order. */
  readonly sent: Message[] = [];
  /** How it ended: the client closed it politely, reset it, or the node dropped it. */
  endedBy: "close" | "destroy" | "node" | undefined;
  private open = true;
  private started = false;
  private readonly held: Array<() => void> = [];
  private readonly messageFns: Array<Listener<Message>> = [];
  private readonly closeFns: Array<Listener<{ error?: LifelineError }>> = [];
  /** Node side: gets every message the client sends; called when the link ends. */
  onClientMessage: (m: Message) => void = () => {};
  onEnd: () => void = () => {};

  constructor(
    readonly welcome: Welcome,
    readonly address: string,
    readonly connectTime: number,
  ) {}

  get isOpen(): boolean {
    return this.open;
  }

  send(msg: Message): boolean {
    if (!this.open) return false;
    this.sent.push(msg);
    this.onClientMessage(msg);
    return true;
  }

  close(): void {
    this.end("close", undefined);
  }

  destroy(): void {
    this.end("destroy", undefined);
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    for (const f of this.held.splice(0)) f();
  }

  on(event: "message", fn: (m: Message) => void): this;
  on(event: "close", fn: (info: { error?: LifelineError }) => void): this;
  on(event: "message" | "close", fn: Listener<never>): this {
    if (event === "message") this.messageFns.push(fn as Listener<Message>);
    else this.closeFns.push(fn as Listener<{ error?: LifelineError }>);
    return this;
  }

  /** Node → client (held until `start()`, as ProtocolConnection does). */
  deliver(m: Message): void {
    if (!this.open) return;
    const emit = () => {
      for (const f of [...this.messageFns]) f(m);
    };
    if (this.started) emit();
    else this.held.push(emit);
  }

  /** The node drops the connection (a reset, a crash). */
  drop(error: LifelineError = new LifelineError("LL_CONNECTION_LOST", "connection closed")): void {
    this.end("node", error);
  }

  private end(by: "close" | "destroy" | "node", error: LifelineError | undefined): void {
    if (!this.open) return;
    this.open = false;
    this.endedBy = by;
    this.onEnd();
    const info = error ? { error } : {};
    const emit = () => {
      for (const f of [...this.closeFns]) f(info);
    };
    if (this.started) emit();
    else this.held.push(emit);
  }

  /** Client MSGs sent on this link: [seq, payload text]. */
  msgs(): Array<[number, string]> {
    return this.sent.flatMap((m) => (m.type === "msg" ? [[m.seq, Buffer.from(m.payload).toString()]] : []));
  }

  pushAcks(): number[] {
    return this.sent.flatMap((m) => (m.type === "push-ack" ? [m.upTo] : []));
  }
}

export interface FakeSession {
  id: string;
  token: string;
  /** Highest client seq processed. */
  lastClientSeq: number;
  replies: Map<number, Uint8Array>;
  /** Pushes generated for the session; seq = index + 1. */
  pushes: Uint8Array[];
  ackedPushSeq: number;
  link: FakeLink | undefined;
  /** Claim epoch: raised by every resume; a HELLO presenting another one is refused. */
  epoch: number;
}

export type NodeMode = "up" | "refuse" | "hang" | "draining";

export class FakeNode {
  /** `up` answers; `refuse` rejects at once; `hang` never answers (the attempt times out);
   *  `draining` answers HELLO with LL_DRAINING. */
  mode: NodeMode = "up";
  /** Sends nothing at all: no heartbeats, acks, pongs or pushes (a frozen process). */
  silent = false;
  /** Processes MSGs even while silent (its ACKs are what is lost). Default: a silent node
   *  reads nothing either. */
  processWhileSilent = false;
  /** Resume known sessions (false: every HELLO gets a new session, as if they expired). */
  resume = true;
  /** ms from the connect to the WELCOME. */
  acceptDelay = 1;
  /** Overrides the heartbeat interval the client asked for (undefined: as asked). */
  heartbeat: number | undefined;
  /** Payloads whose handler "fails": non-fatal LL_APP about the seq, then an empty reply. */
  readonly failOn = new Set<string>();
  /** Called with each new link after its WELCOME was queued (e.g. to queue a GOAWAY). */
  onWelcome: ((link: FakeLink) => void) | undefined;
  readonly links: FakeLink[] = [];
  readonly hellos: ConnectOptions[] = [];

  constructor(
    readonly cluster: FakeCluster,
    readonly id: string,
    readonly address: string,
  ) {}

  get link(): FakeLink | undefined {
    return this.links.findLast((l) => l.isOpen);
  }

  /** Accepts a connect: WELCOME or an error, after `acceptDelay`. */
  accept(o: ConnectOptions): Promise<Link> {
    const clock = this.cluster.clock;
    this.hellos.push(o);
    if (this.mode === "refuse")
      return Promise.reject(new LifelineError("LL_CONNECT_FAILED", `${o.address}: connect ECONNREFUSED`));
    return new Promise<Link>((resolve, reject) => {
      let settled = false;
      const timers: Timer[] = [];
      const fail = (err: LifelineError) => {
        if (settled) return;
        settled = true;
        for (const t of timers) t.cancel();
        reject(err);
      };
      if (o.signal?.aborted) return fail(new LifelineError("LL_ABORTED", "connect aborted"));
      o.signal?.addEventListener("abort", () => fail(new LifelineError("LL_ABORTED", "connect aborted")), {
        once: true,
      });
      timers.push(
        clock.timeout(o.timeout, () =>
          fail(new TimeoutError(`no WELCOME from ${o.address} within ${o.timeout} ms`, o.timeout)),
        ),
      );
      if (this.mode === "hang") return;
      o.onTcpConnect?.();
      timers.push(
        clock.timeout(this.acceptDelay, () => {
          if (settled) return;
          if (this.mode === "draining")
            return fail(new LifelineError("LL_DRAINING", `${o.address}: this node is draining`));
          const r = this.handshake(o);
          if (r instanceof LifelineError) return fail(r);
          settled = true;
          for (const t of timers) t.cancel();
          resolve(r);
        }),
      );
    });
  }

  private handshake(o: ConnectOptions): FakeLink | LifelineError {
    const c = this.cluster;
    let session: FakeSession | undefined;
    let resumed = false;
    if (o.session && this.resume) {
      const known = c.sessions.get(o.session.id);
      if (known) {
        if (known.token !== o.session.token)
          return new LifelineError("LL_SESSION_TOKEN", "wrong resume token");
        if (o.session.epoch !== undefined && o.session.epoch !== known.epoch) {
          const e = new ConnectError("LL_SESSION_MOVED", "claimed by another connection", "protocol");
          e.epoch = known.epoch;
          return e;
        }
        session = known;
        known.epoch++;
        resumed = true;
        const previous = known.link;
        if (previous?.isOpen) {
          previous.deliver({
            type: "error",
            code: "LL_SESSION_MOVED",
            message: "the session was resumed on another connection",
            fatal: true,
          });
          previous.drop(new LifelineError("LL_SESSION_MOVED", "moved"));
        }
      }
    }
    if (!session) {
      const id = `s${++c.sessionCount}`;
      session = {
        id,
        token: `t-${id}`,
        lastClientSeq: 0,
        replies: new Map(),
        pushes: [],
        ackedPushSeq: 0,
        link: undefined,
        epoch: 1,
      };
      c.sessions.set(id, session);
    }
    const hb = o.heartbeat && o.heartbeat > 0 ? (this.heartbeat ?? o.heartbeat) : 0;
    const welcome: Welcome = {
      type: "welcome",
      version: 1,
      nodeId: this.id,
      sessionId: session.id,
      resumeToken: session.token,
      resumed,
      lastClientSeq: session.lastClientSeq,
      epoch: session.epoch,
      heartbeat: hb,
      maxFrame: 1 << 20,
      sessionTtl: 60_000,
    };
    const link = new FakeLink(welcome, o.address, this.acceptDelay);
    this.links.push(link);
    session.link = link;
    const s = session;
    link.onClientMessage = (m) => this.receive(link, s, m);
    let beat: Timer | undefined;
    link.onEnd = () => {
      beat?.cancel();
      if (s.link === link) s.link = undefined;
    };
    if (hb > 0) {
      const tick = () => {
        if (!link.isOpen) return;
        this.say(link, this.heartbeatFrame());
        beat = c.clock.timeout(hb, tick);
      };
      tick();
    }
    // Pushes the client has not had yet (a resume).
    for (let seq = (o.lastPushSeq ?? 0) + 1; seq <= s.pushes.length; seq++)
      this.say(link, { type: "push", seq, payload: s.pushes[seq - 1]! });
    this.onWelcome?.(link);
    return link;
  }

  heartbeatFrame(state: "healthy" | "degraded" | "draining" = "healthy"): Message {
    return {
      type: "heartbeat",
      seq: 0,
      sentAt: 0,
      state,
      load: { connections: 1, sessions: 1, lag: 0, queue: 0, cpu: 0 },
    };
  }

  /** Sends to the client unless silent. */
  say(link: FakeLink, m: Message): void {
    if (!this.silent) link.deliver(m);
  }

  private receive(link: FakeLink, s: FakeSession, m: Message): void {
    if (this.silent && !this.processWhileSilent) return;
    const clock = this.cluster.clock;
    // Answer after the client's current turn, as a remote node would.
    clock.immediate(() => {
      if (!link.isOpen) return;
      switch (m.type) {
        case "msg": {
          if (m.seq <= s.lastClientSeq) {
            const reply = s.replies.get(m.seq);
            if (!reply) {
              this.say(link, {
                type: "error",
                code: "LL_REPLY_EXPIRED",
                message: `message ${m.seq} was processed; its reply is no longer kept`,
                fatal: false,
                seq: m.seq,
              });
            }
            this.say(link, {
              type: "ack",
              upTo: s.lastClientSeq,
              replies: [{ seq: m.seq, payload: reply ?? new Uint8Array(0) }],
            });
            return;
          }
          if (m.seq !== s.lastClientSeq + 1) {
            this.say(link, {
              type: "error",
              code: "LL_SEQUENCE",
              message: `message ${m.seq} skips ahead of ${s.lastClientSeq + 1}`,
              fatal: true,
            });
            link.drop(new LifelineError("LL_SEQUENCE", "sequence"));
            return;
          }
          s.lastClientSeq = m.seq;
          const text = Buffer.from(m.payload).toString();
          this.cluster.handled.push({ node: this.id, session: s.id, seq: m.seq, payload: text });
          const failed = this.failOn.has(text);
          const reply = failed ? Buffer.alloc(0) : Buffer.from(`re:${text}`);
          s.replies.set(m.seq, reply);
          if (failed)
            this.say(link, {
              type: "error",
              code: "LL_APP",
              message: "handler failed",
              fatal: false,
              seq: m.seq,
            });
          this.say(link, { type: "ack", upTo: m.seq, replies: [{ seq: m.seq, payload: reply }] });
          return;
        }
        case "ping":
          this.say(link, { type: "pong", id: m.id, sentAt: m.sentAt, answeredAt: clock.wall() });
          return;
        case "push-ack":
          s.ackedPushSeq = Math.max(s.ackedPushSeq, m.upTo);
          return;
        default:
      }
    });
  }

  /** The application pushes to a session: stored, and sent if it is connected here. */
  push(sessionId: string, payload: string | Uint8Array): number {
    const s = this.cluster.sessions.get(sessionId);
    if (!s) throw new Error(`no session ${sessionId}`);
    s.pushes.push(typeof payload === "string" ? Buffer.from(payload) : payload);
    const seq = s.pushes.length;
    if (s.link && this.links.includes(s.link))
      this.say(s.link, { type: "push", seq, payload: s.pushes[seq - 1]! });
    return seq;
  }

  goaway(link: FakeLink, deadline: number, nodes: NodeInfo[] = [], reason = "drain"): void {
    this.say(link, { type: "goaway", reason, deadline, nodes });
  }

  info(state = "healthy"): NodeInfo {
    return { id: this.id, address: this.address, state };
  }
}

export class FakeCluster {
  readonly sessions = new Map<string, FakeSession>();
  readonly nodes = new Map<string, FakeNode>();
  /** Every message an app handler ran for, in order (exactly-once checks). */
  readonly handled: Array<{ node: string; session: string; seq: number; payload: string }> = [];
  /** Every connect attempt, by address. */
  readonly attempts: string[] = [];
  sessionCount = 0;

  constructor(readonly clock: FakeClock) {}

  add(id: string, address = `${id}.test:7000`): FakeNode {
    const n = new FakeNode(this, id, address);
    this.nodes.set(address, n);
    return n;
  }

  node(id: string): FakeNode {
    for (const n of this.nodes.values()) if (n.id === id) return n;
    throw new Error(`no fake node ${id}`);
  }

  get addresses(): string[] {
    return [...this.nodes.keys()];
  }

  readonly connector: Connector = (o) => {
    this.attempts.push(o.address);
    const n = this.nodes.get(o.address);
    if (!n)
      return Promise.reject(new LifelineError("LL_CONNECT_FAILED", `${o.address}: connect ECONNREFUSED`));
    return n.accept(o);
  };

  /** Links open right now, on any node. */
  openLinks(): FakeLink[] {
    return [...this.nodes.values()].flatMap((n) => n.links.filter((l) => l.isOpen));
  }
}
