import { decodeDelivery } from "../store/delivery.ts";

/** A message pushed by the cluster to this client. */
export interface Incoming {
  /** The session's push sequence: 1, 2, 3... once each, in order. */
  seq: number;
  payload: Uint8Array;
  /** Set when the push delivers an entry of a subscribed topic (pubsub). */
  topic?: string;
  /** The entry's offset in its topic. */
  offset?: number;
  /** When it was published (wall-clock ms). */
  at?: number;
}

/**
 * Fans pushed messages out to the application's iterators, losslessly. When an iterator
 * falls `highWater` messages behind, the client stops acknowledging pushes (`backedUp`), so
 * the node's push window stops the flow: memory stays bounded and nothing is dropped.
 */
export class Inbox {
  private readonly streams = new Set<Stream>();
  private closed = false;

  constructor(
    /** Called when a backed-up iterator has caught up (acknowledge again). */
    private readonly onDrain: () => void,
    private readonly highWater = 1000,
  ) {}

  /** A topic delivery when the client subscribed to that topic; otherwise raw. */
  decode(seq: number, payload: Uint8Array, topics: ReadonlySet<string>): Incoming {
    if (topics.size > 0) {
      try {
        const d = decodeDelivery(payload);
        if (topics.has(d.topic))
          return { seq, payload: d.payload, topic: d.topic, offset: d.offset, at: d.at };
      } catch {
        // not a delivery: an app push
      }
    }
    return { seq, payload };
  }

  push(m: Incoming): void {
    for (const s of this.streams) s.push(m);
  }

  get backedUp(): boolean {
    for (const s of this.streams) if (s.length >= this.highWater) return true;
    return false;
  }

  iterator(): AsyncIterableIterator<Incoming> {
    const s = new Stream(
      () => {
        // A consumer that leaves while backed up must not keep the push flow stopped.
        const wasBackedUp = this.backedUp;
        this.streams.delete(s);
        if (wasBackedUp && !this.backedUp) this.onDrain();
      },
      () => {
        if (s.length === Math.floor(this.highWater / 2)) this.onDrain();
      },
    );
    if (this.closed) s.end();
    else this.streams.add(s);
    return s;
  }

  close(): void {
    this.closed = true;
    for (const s of this.streams) s.end();
    this.streams.clear();
  }
}

class Stream implements AsyncIterableIterator<Incoming> {
  private readonly buffer: Incoming[] = [];
  /** Pending next() calls, oldest first (the iterator protocol allows several at once). */
  private readonly waiters: Array<(r: IteratorResult<Incoming>) => void> = [];
  private done = false;

  constructor(
    private readonly onReturn: () => void,
    private readonly onTake: () => void,
  ) {}

  get length(): number {
    return this.buffer.length;
  }

  push(m: Incoming): void {
    if (this.done) return;
    const w = this.waiters.shift();
    if (w) w({ value: m, done: false });
    else this.buffer.push(m);
  }

  next(): Promise<IteratorResult<Incoming>> {
    const m = this.buffer.shift();
    if (m) {
      this.onTake();
      return Promise.resolve({ value: m, done: false });
    }
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiters.push(resolve);
    });
  }

  return(): Promise<IteratorResult<Incoming>> {
    this.end();
    this.onReturn(); // first: it needs to know whether this stream was the one backed up
    this.buffer.length = 0;
    return Promise.resolve({ value: undefined, done: true });
  }

  end(): void {
    if (this.done) return;
    this.done = true;
    for (const w of this.waiters.splice(0)) w({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Incoming> {
    return this;
  }
}
