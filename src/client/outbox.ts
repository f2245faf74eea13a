import { LifelineError } from "../errors.ts";
import type { OverflowPolicy } from "./options.ts";
import type { OutboxFile } from "./outbox-file.ts";

/**
 * A message the client holds until the cluster acknowledges it. `seq` is assigned when it is
 * first sent (so that dropping an unsent message never leaves a gap in the sequence); from
 * then on it is resent with the same `seq` until acknowledged, on whichever node.
 */
export interface OutboxEntry {
  /** Local id, increasing in send() order. */
  id: number;
  seq: number | undefined;
  payload: Uint8Array;
  /** Restored from the outbox file: no caller waits for its reply. */
  recovered?: boolean;
}

export interface OutboxLimits {
  maxMessages: number;
  maxBytes: number;
  overflow: OverflowPolicy;
}

/**
 * The client's outbox: messages waiting to be sent and messages sent but not yet
 * acknowledged, bounded by count and bytes. With a file (`OutboxFile`) every change is also
 * written to SQLite, so a restarted client finds them again.
 */
export class Outbox {
  private readonly entries: OutboxEntry[] = [];
  /** Index in `entries` of the first message not yet sent. */
  private firstUnsent = 0;
  private bytesHeld = 0;
  private nextId = 1;

  constructor(
    private readonly limits: OutboxLimits,
    private readonly file?: OutboxFile,
  ) {
    if (file) {
      for (const e of file.load()) {
        this.entries.push({ ...e, recovered: true });
        this.bytesHeld += e.payload.length;
        this.nextId = Math.max(this.nextId, e.id + 1);
        if (e.seq !== undefined) this.firstUnsent = this.entries.length;
      }
    }
  }

  get size(): number {
    return this.entries.length;
  }

  get bytes(): number {
    return this.bytesHeld;
  }

  /** Messages sent and not yet acknowledged. */
  get inflightCount(): number {
    return this.firstUnsent;
  }

  get unsentCount(): number {
    return this.entries.length - this.firstUnsent;
  }

  /**
   * Adds a message. Full: with `reject`, throws `LL_OUTBOX_FULL`; with `drop-oldest`, drops
   * unsent messages from the front (returned, so their senders can be told) until it fits,
   * or throws when only sent ones are left.
   */
  add(payload: Uint8Array): { entry: OutboxEntry; dropped: OutboxEntry[] } {
    const fits = () =>
      this.entries.length + 1 <= this.limits.maxMessages &&
      this.bytesHeld + payload.length <= this.limits.maxBytes;
    if (payload.length > this.limits.maxBytes) {
      throw new LifelineError(
        "LL_OUTBOX_FULL",
        `message of ${payload.length} bytes is larger than the outbox (${this.limits.maxBytes} bytes)`,
      );
    }
    // How many of the oldest unsent messages must go to make room (drop-oldest only).
    let drop = 0;
    if (this.limits.overflow === "drop-oldest") {
      let count = this.entries.length;
      let bytes = this.bytesHeld;
      while (
        (count + 1 > this.limits.maxMessages || bytes + payload.length > this.limits.maxBytes) &&
        drop < this.unsentCount
      ) {
        bytes -= this.entries[this.firstUnsent + drop]!.payload.length;
        count--;
        drop++;
      }
      if (count + 1 > this.limits.maxMessages || bytes + payload.length > this.limits.maxBytes) drop = 0;
    }
    if (!fits() && drop === 0) {
      throw new LifelineError(
        "LL_OUTBOX_FULL",
        `outbox full: ${this.entries.length} messages, ${this.bytesHeld} bytes (limits ${this.limits.maxMessages}, ${this.limits.maxBytes})`,
      );
    }
    const dropped = this.entries.splice(this.firstUnsent, drop);
    for (const d of dropped) this.bytesHeld -= d.payload.length;
    const entry: OutboxEntry = { id: this.nextId++, seq: undefined, payload };
    this.entries.push(entry);
    this.bytesHeld += payload.length;
    this.file?.write(() => {
      for (const d of dropped) this.file!.remove(d.id);
      this.file!.add(entry);
    });
    return { entry, dropped };
  }

  /** The next message to send, given its sequence number now. */
  takeNext(seq: number): OutboxEntry | undefined {
    const e = this.entries[this.firstUnsent];
    if (!e) return undefined;
    e.seq = seq;
    this.firstUnsent++;
    this.file?.write(() => this.file!.assign(e.id, seq));
    return e;
  }

  /** Sent messages, oldest first (to resend after a reconnect). */
  inflight(): OutboxEntry[] {
    return this.entries.slice(0, this.firstUnsent);
  }

  /** Every message held, oldest first. */
  all(): OutboxEntry[] {
    return [...this.entries];
  }

  /** The cluster processed every message up to `upTo`: they leave the outbox. */
  acknowledge(upTo: number): OutboxEntry[] {
    let n = 0;
    while (n < this.firstUnsent && this.entries[n]!.seq! <= upTo) n++;
    if (n === 0) return [];
    const done = this.entries.splice(0, n);
    this.firstUnsent -= n;
    for (const e of done) this.bytesHeld -= e.payload.length;
    this.file?.write(() => this.file!.removeUpTo(upTo));
    return done;
  }

  /** The cluster answered message `seq`: it leaves the outbox (undefined if not held). */
  complete(seq: number): OutboxEntry | undefined {
    let i = 0;
    while (i < this.firstUnsent && this.entries[i]!.seq !== seq) i++;
    if (i === this.firstUnsent) return undefined;
    const [e] = this.entries.splice(i, 1);
    this.firstUnsent--;
    this.bytesHeld -= e!.payload.length;
    this.file?.write(() => this.file!.remove(e!.id));
    return e;
  }

  /** The session was lost: sent messages leave (returned); unsent ones stay for the next. */
  dropInflight(): OutboxEntry[] {
    const lost = this.entries.splice(0, this.firstUnsent);
    this.firstUnsent = 0;
    for (const e of lost) this.bytesHeld -= e.payload.length;
    this.file?.write(() => {
      for (const e of lost) this.file!.remove(e.id);
    });
    return lost;
  }

  /** Removes everything (close without flushing); returns what was held. */
  clear(): OutboxEntry[] {
    const all = this.entries.splice(0);
    this.firstUnsent = 0;
    this.bytesHeld = 0;
    return all;
  }
}
