import net from "node:net";
import { LifelineError, ProtocolError, TimeoutError } from "../errors.ts";
import { classifyError } from "../health/kinds.ts";
import { parseHostPort } from "../health/probes/address.ts";
import { decodeMessage, encodeMessage } from "../protocol/codec.ts";
import { DEFAULT_MAX_FRAME, FrameParser } from "../protocol/frame.ts";
import { type Message, PROTOCOL_VERSION, type Role, type Welcome } from "../protocol/messages.ts";
import type { Clock } from "../util/clock.ts";
import { systemClock } from "../util/clock.ts";
import { TypedEmitter } from "../util/typed-emitter.ts";

/**
 * One connection to a node, after the handshake: the protocol core that the failover
 * client, the heartbeat probe and the tests build on. It does no reconnecting and keeps
 * no session state beyond the WELCOME; it turns bytes into messages and back.
 *
 * Connect failures are LifelineErrors with a stable code and the kind of failure:
 * `LL_CONNECT_TIMEOUT` (a timeout: never reported as a refusal), `LL_CONNECT_FAILED` with
 * `kind` (refused, reset, unreachable, dns...) and the errno, or the node's own ERROR code
 * (`LL_DRAINING`, `LL_SESSION_TOKEN`...) when it answered and said no.
 */
export interface ConnectOptions {
  /** "host:port". */
  address: string;
  role: Role;
  /** Resume this session. */
  session?: { id: string; token: string; epoch?: number };
  /** Highest PUSH sequence received (when resuming). */
  lastPushSeq?: number;
  /** Heartbeat interval to ask for, ms (0 = none). */
  heartbeat?: number;
  name?: string;
  /** Time for the TCP connect and the handshake together, ms. */
  timeout: number;
  maxFrame?: number;
  clock?: Clock;
  /** Aborts the attempt (a racing attempt won, the client is closing). */
  signal?: AbortSignal;
  /** Called when the TCP connection is up (before the handshake). */
  onTcpConnect?: () => void;
}

export class ConnectError extends LifelineError {
  readonly kind: string;
  readonly errno: string | undefined;
  /** LL_SESSION_MOVED at HELLO: the session's current claim epoch (another attempt took it). */
  epoch: number | undefined;

  constructor(code: string, message: string, kind: string, errno?: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = "ConnectError";
    this.kind = kind;
    this.errno = errno;
  }
}

export type ConnectionEvents = {
  message: [Message];
  /** The connection is gone; `error` says why when it was not a deliberate close. */
  close: [{ error?: LifelineError }];
};

export class ProtocolConnection extends TypedEmitter<ConnectionEvents> {
  private closed = false;
  /** Messages (and a close) wait here until the owner has its listeners and calls start(). */
  private started = false;
  private readonly held: Array<() => void> = [];

  private constructor(
    private readonly socket: net.Socket,
    readonly welcome: Welcome,
    readonly address: string,
    /** ms from the start of the connect to the WELCOME. */
    readonly connectTime: number,
  ) {
    super();
  }

  static connect(opts: ConnectOptions): Promise<ProtocolConnection> {
    const clock = opts.clock ?? systemClock;
    const hp = parseHostPort(opts.address);
    if (!hp) return Promise.reject(new LifelineError("LL_USAGE", `not host:port: ${opts.address}`));
    const started = clock.now();
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: hp.host, port: hp.port, noDelay: true });
      const parser = new FrameParser(opts.maxFrame ?? DEFAULT_MAX_FRAME);
      let settled = false;
      const fail = (err: LifelineError) => {
        if (settled) return;
        settled = true;
        timer.cancel();
        opts.signal?.removeEventListener("abort", onAbort);
        // Abandoned after the TCP connect (a lost race, a node that never answered): reset,
        // so a frozen node that wakes up does not act on the HELLO (claim the session) later.
        if (!socket.connecting && typeof socket.resetAndDestroy === "function" && !socket.destroyed)
          socket.resetAndDestroy();
        else socket.destroy();
        reject(err);
      };
      const onAbort = () => fail(new LifelineError("LL_ABORTED", "connect aborted"));
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      const timer = clock.timeout(opts.timeout, () =>
        fail(new TimeoutError(`no WELCOME from ${opts.address} within ${opts.timeout} ms`, opts.timeout)),
      );
      socket.on("error", (err) => {
        const c = classifyError(err);
        fail(
          new ConnectError("LL_CONNECT_FAILED", `${opts.address}: ${err.message}`, c.kind, c.errno, {
            cause: err,
          }),
        );
      });
      socket.once("close", () =>
        fail(new ConnectError("LL_CONNECT_FAILED", `${opts.address} closed the connection`, "closed")),
      );
      socket.once("connect", () => {
        opts.onTcpConnect?.();
        const hello: Message = {
          type: "hello",
          minVersion: PROTOCOL_VERSION.min,
          maxVersion: PROTOCOL_VERSION.max,
          role: opts.role,
          lastPushSeq: opts.lastPushSeq ?? 0,
          heartbeat: opts.heartbeat ?? 0,
        };
        if (opts.session) {
          hello.sessionId = opts.session.id;
          hello.resumeToken = opts.session.token;
          if (opts.session.epoch !== undefined) hello.sessionEpoch = opts.session.epoch;
        }
        if (opts.name) hello.name = opts.name;
        socket.write(encodeMessage(hello));
      });
      let conn: ProtocolConnection | undefined;
      const onData = (chunk: Buffer) => {
        const r = parser.push(chunk);
        for (const f of r.frames) {
          const m = decodeMessage(f);
          if (conn) {
            // Frames after WELCOME in the same chunk (TOPOLOGY, pushes) are kept for start().
            if (m instanceof ProtocolError) return conn.end(m);
            conn.deliver(m);
            continue;
          }
          if (m instanceof ProtocolError) return fail(new ConnectError("LL_PROTOCOL", m.message, "protocol"));
          if (m.type === "welcome" && !settled) {
            settled = true;
            timer.cancel();
            opts.signal?.removeEventListener("abort", onAbort);
            socket.removeAllListeners("error");
            socket.removeAllListeners("close");
            socket.off("data", onData);
            conn = new ProtocolConnection(socket, m, opts.address, clock.now() - started);
            conn.adopt(parser);
            resolve(conn);
            continue;
          }
          if (m.type === "error") {
            const kind = m.code === "LL_OVERLOADED" || m.code === "LL_DRAINING" ? "overloaded" : "protocol";
            const e = new ConnectError(m.code, `${opts.address}: ${m.message}`, kind);
            e.epoch = m.epoch;
            return fail(e);
          }
          return fail(
            new ConnectError("LL_PROTOCOL", `expected WELCOME, got ${m.type.toUpperCase()}`, "protocol"),
          );
        }
        if (r.error) {
          if (conn) conn.end(r.error);
          else fail(new ConnectError("LL_PROTOCOL", r.error.message, "protocol"));
        }
      };
      socket.on("data", onData);
    });
  }

  /** Starts delivering messages (and the close) to listeners; call once they are attached. */
  start(): void {
    if (this.started) return;
    this.started = true;
    for (const f of this.held.splice(0)) f();
  }

  private deliver(m: Message): void {
    if (this.started) this.emit("message", m);
    else this.held.push(() => this.emit("message", m));
  }

  private adopt(parser: FrameParser): void {
    this.socket.on("data", (chunk: Buffer) => {
      const r = parser.push(chunk);
      for (const f of r.frames) {
        const m = decodeMessage(f);
        if (m instanceof ProtocolError) return this.end(m);
        this.deliver(m);
      }
      if (r.error) this.end(r.error);
    });
    this.socket.on("error", (err) => {
      const c = classifyError(err);
      this.end(new ConnectError("LL_CONNECTION_LOST", err.message, c.kind, c.errno, { cause: err }));
    });
    this.socket.on("close", () =>
      this.end(new ConnectError("LL_CONNECTION_LOST", "connection closed", "closed")),
    );
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Bytes queued in the socket, for backpressure. */
  get buffered(): number {
    return this.socket.writableLength;
  }

  send(msg: Message): boolean {
    if (this.closed) return false;
    return this.socket.write(encodeMessage(msg));
  }

  /** Closes politely (FIN). */
  close(): void {
    if (this.closed) return;
    this.socket.end();
    this.end(undefined);
  }

  /** Drops the connection at once (RST). */
  destroy(): void {
    if (this.closed) return;
    if (typeof this.socket.resetAndDestroy === "function") this.socket.resetAndDestroy();
    else this.socket.destroy();
    this.end(undefined);
  }

  private end(error: LifelineError | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    const info = error ? { error } : {};
    if (this.started) this.emit("close", info);
    else this.held.push(() => this.emit("close", info));
  }
}
