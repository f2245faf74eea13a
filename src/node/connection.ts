import type net from "node:net";
import { ProtocolError } from "../errors.ts";
import { decodeMessage, encodeMessage } from "../protocol/codec.ts";
import { type Frame, FrameParser } from "../protocol/frame.ts";
import {
  type ErrorCode,
  type Hello,
  type Message,
  type NodeInfo,
  PROTOCOL_VERSION,
  type Reply,
  type Role,
} from "../protocol/messages.ts";
import type { PushRecord } from "../store/types.ts";
import type { Clock, Timer } from "../util/clock.ts";
import type { NodeLimits } from "./options.ts";
import type { LiveSession, SessionOutput } from "./session.ts";

/**
 * One TCP connection to a node: the handshake (HELLO within `handshakeTimeout`, version
 * negotiation), then the message loop, heartbeats, acknowledgements batched per event-loop
 * turn, and backpressure — the node stops reading from a connection whose handler queue or
 * write buffer is full, so a fast or hostile client fills its own buffers, not the node's.
 *
 * Anything malformed gets an ERROR with a stable code and the connection is closed; it
 * never throws into the node.
 */
export interface ConnectionHost {
  readonly nodeId: string;
  readonly clock: Clock;
  readonly limits: NodeLimits;
  /** HELLO received: open or resume a session (clients) or just register (monitors, peers).
   *  Returns the WELCOME fields, or an error to send before closing. */
  hello(
    conn: NodeConnection,
    hello: Hello,
  ): Promise<
    | {
        ok: true;
        session: LiveSession | undefined;
        sessionId: string;
        token: string;
        resumed: boolean;
        heartbeat: number;
        sessionTtl: number;
      }
    | {
        ok: false;
        code: ErrorCode;
        message: string;
        /** LL_SESSION_MOVED: the session's current claim epoch, for the client to present. */
        epoch?: number;
      }
  >;
  heartbeatFrame(): Message;
  topology(): { epoch: number; nodes: NodeInfo[] };
  /** WELCOME has just been sent (a node draining by now says GOAWAY at once). */
  welcomed(conn: NodeConnection): void;
  closed(conn: NodeConnection): void;
  log(level: "debug" | "info" | "warn", obj: object, msg: string): void;
}

let nextId = 1;

export class NodeConnection implements SessionOutput {
  readonly id = nextId++;
  role: Role | undefined;
  session: LiveSession | undefined;
  private readonly parser: FrameParser;
  private handshakeTimer: Timer | undefined;
  private heartbeatTimer: Timer | undefined;
  private heartbeatEvery = 0;
  private pendingAcks: Reply[] = [];
  private ackUpTo = 0;
  private sentAckUpTo = 0;
  private ackScheduled = false;
  private closing = false;
  private pausedForQueue = false;
  /** HELLO is being answered: later frames wait until the session is ready. */
  private handshaking = false;
  private readonly backlog: Frame[] = [];
  private pausedForWrites = false;
  private topologyEpoch = -1;
  /** WELCOME has been sent: only then may other messages follow (TOPOLOGY, GOAWAY...). */
  welcomed = false;

  constructor(
    readonly socket: net.Socket,
    private readonly host: ConnectionHost,
  ) {
    this.parser = new FrameParser(host.limits.maxFrame);
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", () => {});
    socket.on("close", () => this.onClose());
    socket.on("drain", () => {
      if (this.pausedForWrites) {
        this.pausedForWrites = false;
        this.updateReading();
      }
    });
    this.handshakeTimer = host.clock.timeout(host.limits.handshakeTimeout, () => {
      if (this.role === undefined) this.fail("LL_HANDSHAKE_TIMEOUT", "no HELLO in time");
    });
  }

  get remote(): string {
    return `${this.socket.remoteAddress}:${this.socket.remotePort}`;
  }

  get open(): boolean {
    return !this.closing && !this.socket.destroyed;
  }

  send(msg: Message): void {
    if (!this.open) return;
    const ok = this.socket.write(encodeMessage(msg));
    if (!ok && this.socket.writableLength > this.host.limits.maxWriteBuffer && !this.pausedForWrites) {
      this.pausedForWrites = true;
      this.updateReading();
    }
  }

  /** Sends ERROR and closes. */
  fail(code: ErrorCode, message: string, extra?: { epoch?: number }): void {
    if (!this.open) return;
    this.host.log("debug", { event: "connection-error", conn: this.id, remote: this.remote, code }, message);
    this.send({ type: "error", code, message, fatal: true, ...extra });
    this.close();
  }

  /** Flushes pending acknowledgements and closes the socket gracefully. */
  close(): void {
    if (this.closing) return;
    this.flushAcks();
    this.closing = true;
    this.socket.end();
    // A peer that never reads its half must not keep the socket forever.
    const t = setTimeout(() => this.socket.destroy(), 2000);
    t.unref();
  }

  private onData(chunk: Buffer): void {
    if (this.closing) return;
    const r = this.parser.push(chunk);
    for (const f of r.frames) this.backlog.push(f);
    this.dispatchBacklog();
    if (r.error) {
      this.fail(
        r.error.code === "LL_FRAME_TOO_LARGE" ? "LL_FRAME_TOO_LARGE" : "LL_PROTOCOL",
        r.error.message,
      );
    }
  }

  /**
   * Dispatches parsed frames until the handler queue is full or the handshake is in
   * progress; the rest wait here (at most one socket read of frames, as reading pauses).
   */
  private dispatchBacklog(): void {
    while (this.backlog.length > 0 && !this.closing && !this.handshaking && !this.pausedForQueue) {
      const msg = decodeMessage(this.backlog.shift()!);
      if (msg instanceof ProtocolError) {
        this.fail(msg.code === "LL_UNKNOWN_TYPE" ? "LL_UNKNOWN_TYPE" : "LL_PROTOCOL", msg.message);
        return;
      }
      this.dispatch(msg);
    }
  }

  private dispatch(msg: Message): void {
    if (this.role === undefined) {
      if (msg.type !== "hello") {
        this.fail("LL_HANDSHAKE_REQUIRED", `expected HELLO, got ${msg.type.toUpperCase()}`);
        return;
      }
      this.role = msg.role;
      this.handshakeTimer?.cancel();
      this.handshaking = true;
      this.socket.pause(); // nothing else until the session is ready
      void this.onHello(msg).finally(() => {
        this.handshaking = false;
        this.dispatchBacklog();
      });
      return;
    }
    switch (msg.type) {
      case "msg":
        if (!this.session) {
          this.fail("LL_PROTOCOL", "MSG without a session (role is not client)");
          return;
        }
        if (!this.session.receive(msg.seq, msg.payload)) {
          this.fail("LL_SEQUENCE", `message ${msg.seq} skips ahead of ${this.session.lastClientSeq + 1}`);
        }
        return;
      case "push-ack":
        if (this.session) void this.session.ackPushes(msg.upTo);
        return;
      case "ping":
        this.send({ type: "pong", id: msg.id, sentAt: msg.sentAt, answeredAt: this.host.clock.wall() });
        return;
      case "pong":
      case "error":
        return;
      default:
        this.fail("LL_PROTOCOL", `unexpected ${msg.type.toUpperCase()} from a ${this.role}`);
    }
  }

  private async onHello(hello: Hello): Promise<void> {
    const version = Math.min(hello.maxVersion, PROTOCOL_VERSION.max);
    if (version < Math.max(hello.minVersion, PROTOCOL_VERSION.min)) {
      this.fail(
        "LL_VERSION",
        `no common protocol version: you speak ${hello.minVersion}-${hello.maxVersion}, this node ${PROTOCOL_VERSION.min}-${PROTOCOL_VERSION.max}`,
      );
      return;
    }
    let r: Awaited<ReturnType<ConnectionHost["hello"]>>;
    try {
      r = await this.host.hello(this, hello);
    } catch (err) {
      this.fail("LL_STORE", `cannot open the session: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    if (!this.open) {
      // Closed while the store answered: what the answer holds is let go like any session
      // whose connection closed (closed() ran before, when there was none).
      if (r.ok && r.session) {
        this.session = r.session;
        this.host.closed(this);
      }
      return;
    }
    if (!r.ok) {
      this.fail(r.code, r.message, r.epoch === undefined ? undefined : { epoch: r.epoch });
      return;
    }
    this.session = r.session;
    this.send({
      type: "welcome",
      version,
      nodeId: this.host.nodeId,
      sessionId: r.sessionId,
      resumeToken: r.token,
      resumed: r.resumed,
      lastClientSeq: r.session?.lastClientSeq ?? 0,
      epoch: r.session?.epoch ?? 0,
      heartbeat: r.heartbeat,
      maxFrame: this.host.limits.maxFrame,
      sessionTtl: r.sessionTtl,
    });
    this.welcomed = true;
    this.ackUpTo = r.session?.lastClientSeq ?? 0;
    this.sentAckUpTo = this.ackUpTo;
    this.sendTopology();
    if (r.heartbeat > 0) this.startHeartbeats(r.heartbeat);
    this.session?.attach(this, hello.lastPushSeq);
    this.host.welcomed(this);
    this.socket.resume();
  }

  /** Sends TOPOLOGY if it changed since the last one this connection got. */
  sendTopology(): void {
    const t = this.host.topology();
    // Not before WELCOME: a peer change during the handshake (the store is slow) must not
    // put a TOPOLOGY ahead of the WELCOME the client is waiting for.
    if (t.epoch === this.topologyEpoch || !this.welcomed) return;
    this.topologyEpoch = t.epoch;
    this.send({ type: "topology", epoch: t.epoch, nodes: t.nodes });
  }

  private startHeartbeats(every: number): void {
    this.heartbeatEvery = every;
    const beat = () => {
      if (!this.open) return;
      this.send(this.host.heartbeatFrame());
      this.heartbeatTimer = this.host.clock.timeout(this.heartbeatEvery, beat);
    };
    beat();
  }

  /** Sends a heartbeat now (a state change such as draining should not wait a period). */
  heartbeatNow(): void {
    if (this.heartbeatEvery > 0 && this.open) this.send(this.host.heartbeatFrame());
  }

  // SessionOutput

  ack(seq: number, reply: Uint8Array | undefined): void {
    if (reply === undefined) {
      // A resent message committed so long ago that its reply is gone: say so, then answer
      // with an empty reply, so that every message still gets exactly one reply entry.
      this.send({
        type: "error",
        code: "LL_REPLY_EXPIRED",
        message: `message ${seq} was processed; its reply is no longer kept`,
        fatal: false,
        seq,
      });
    }
    this.pendingAcks.push({ seq, payload: reply ?? new Uint8Array(0) });
    if (seq > this.ackUpTo) this.ackUpTo = seq;
    if (!this.ackScheduled) {
      this.ackScheduled = true;
      setImmediate(() => this.flushAcks());
    }
  }

  private flushAcks(): void {
    this.ackScheduled = false;
    if (this.pendingAcks.length === 0 && this.ackUpTo <= this.sentAckUpTo) return;
    const replies = this.pendingAcks;
    this.pendingAcks = [];
    this.sentAckUpTo = this.ackUpTo;
    this.send({ type: "ack", upTo: this.ackUpTo, replies });
  }

  push(record: PushRecord): void {
    this.send({ type: "push", seq: record.seq, payload: record.payload });
  }

  appError(seq: number, message: string): void {
    this.send({ type: "error", code: "LL_APP", message, fatal: false, seq });
  }

  abort(code: "LL_SESSION_MOVED" | "LL_STORE", message: string): void {
    this.fail(code, message);
  }

  queueChanged(depth: number): void {
    const full = depth >= this.host.limits.maxQueue;
    if (full !== this.pausedForQueue && (full || depth <= this.host.limits.maxQueue / 2)) {
      this.pausedForQueue = full;
      this.updateReading();
      if (!full) queueMicrotask(() => this.dispatchBacklog());
    }
  }

  private updateReading(): void {
    if (this.closing || this.role === undefined) return;
    if (this.pausedForQueue || this.pausedForWrites) this.socket.pause();
    else this.socket.resume();
  }

  private onClose(): void {
    this.closing = true;
    this.handshakeTimer?.cancel();
    this.heartbeatTimer?.cancel();
    this.host.closed(this);
  }
}
