import { type ConnectOptions, ProtocolConnection } from "../../src/client/connection.ts";
import type { ErrorMessage, GoAway, Message, Topology } from "../../src/protocol/messages.ts";

/**
 * A bare session client for node tests: numbers messages, matches acknowledgements and
 * replies, collects pushes (acknowledging them unless told not to). No reconnecting: the
 * tests drive resumes themselves with `resume()`.
 */
export class TestClient {
  conn!: ProtocolConnection;
  nextSeq = 1;
  lastPushSeq = 0;
  readonly pushes: Array<{ seq: number; payload: Buffer }> = [];
  readonly errors: ErrorMessage[] = [];
  readonly messages: Message[] = [];
  goaway: GoAway | undefined;
  topology: Topology | undefined;
  closed = false;
  autoAckPushes = true;
  private readonly waiting = new Map<number, { resolve: (reply: Buffer | undefined) => void }>();
  private readonly replies = new Map<number, Buffer>();

  static async connect(address: string, opts: Partial<ConnectOptions> = {}): Promise<TestClient> {
    const c = new TestClient();
    await c.open(address, opts);
    return c;
  }

  get session(): { id: string; token: string } {
    return { id: this.conn.welcome.sessionId, token: this.conn.welcome.resumeToken };
  }

  async open(address: string, opts: Partial<ConnectOptions> = {}): Promise<void> {
    this.conn = await ProtocolConnection.connect({ address, role: "client", timeout: 5000, ...opts });
    this.closed = false;
    this.conn.on("message", (m) => this.onMessage(m));
    this.conn.on("close", () => {
      this.closed = true;
    });
    this.conn.start();
  }

  /** Reconnects (to any node) resuming this session, telling the node which pushes we have. */
  async resume(address: string, opts: Partial<ConnectOptions> = {}): Promise<void> {
    const session = this.session;
    if (this.conn.isOpen) this.conn.destroy();
    await this.open(address, { session, lastPushSeq: this.lastPushSeq, ...opts });
  }

  private onMessage(m: Message): void {
    this.messages.push(m);
    switch (m.type) {
      case "ack":
        for (const r of m.replies) this.replies.set(r.seq, Buffer.from(r.payload));
        for (const [seq, w] of this.waiting) {
          if (seq <= m.upTo || this.replies.has(seq)) {
            this.waiting.delete(seq);
            w.resolve(this.replies.get(seq));
          }
        }
        break;
      case "push":
        if (m.seq <= this.lastPushSeq) break; // a resend we already have
        this.pushes.push({ seq: m.seq, payload: Buffer.from(m.payload) });
        this.lastPushSeq = m.seq;
        if (this.autoAckPushes) this.conn.send({ type: "push-ack", upTo: m.seq });
        break;
      case "error":
        this.errors.push(m);
        break;
      case "goaway":
        this.goaway = m;
        break;
      case "topology":
        this.topology = m;
        break;
      default:
    }
  }

  /** Sends the next message; resolves with its reply when acknowledged. */
  send(payload: string | Uint8Array): Promise<Buffer | undefined> {
    return this.sendAs(this.nextSeq++, payload);
  }

  /** Sends with an explicit sequence (a resend). */
  sendAs(seq: number, payload: string | Uint8Array): Promise<Buffer | undefined> {
    const bytes = typeof payload === "string" ? Buffer.from(payload) : payload;
    const p = new Promise<Buffer | undefined>((resolve) => this.waiting.set(seq, { resolve }));
    this.conn.send({ type: "msg", seq, payload: bytes });
    return p;
  }

  ackPushes(upTo = this.lastPushSeq): void {
    this.conn.send({ type: "push-ack", upTo });
  }

  close(): void {
    this.conn.close();
  }
}

/** Polls until `cond` holds, or throws after `ms`. */
export async function until(cond: () => boolean, ms = 10_000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
