/**
 * Updates waiting to be piggybacked on outgoing packets (memberlist's TransmitLimitedQueue):
 * - each packet takes the updates sent the fewest times first (newest first among equals),
 *   as many as fit its remaining bytes;
 * - an update is dropped after the retransmit limit (which grows with log N);
 * - a newer update about the same member replaces the older one, which is never sent again;
 * - the queue is bounded: past `maxItems`, the most-sent (then oldest) are dropped.
 * `onDone` tells the enqueuer when its update has gone out the limit or was replaced (a
 * graceful leave waits on it).
 *
 * Costs: enqueue O(1) amortized (replacement marks the old item, pruning runs in batches),
 * take O(q log q) for q queued updates; q stays small except while a large cluster joins.
 */
interface Item {
  key: string;
  /** Worth sending to the member it is about (a suspicion is; its own alive is not). */
  toSubject: boolean;
  bytes: Uint8Array;
  transmits: number;
  seq: number;
  onDone: (() => void) | undefined;
  /** Replaced, dropped or finished: skipped, and removed at the next compaction. */
  gone: boolean;
}

export class BroadcastQueue {
  private items: Item[] = [];
  private readonly byKey = new Map<string, Item>();
  private seq = 0;

  constructor(
    /** The current retransmit limit (it follows the cluster size). */
    private readonly limit: () => number,
    private readonly maxItems = 1024,
  ) {}

  get length(): number {
    return this.byKey.size;
  }

  /**
   * Queues `bytes` about `key` (a member id), replacing what was queued about it. With
   * `toSubject` false the update never rides a packet to that member itself (it knows).
   */
  enqueue(key: string, bytes: Uint8Array, onDone?: () => void, toSubject = true): void {
    const old = this.byKey.get(key);
    if (old) this.finish(old);
    const item: Item = { key, toSubject, bytes, transmits: 0, seq: this.seq++, onDone, gone: false };
    this.items.push(item);
    this.byKey.set(key, item);
    if (this.items.length > this.maxItems + (this.maxItems >> 1)) this.compact();
  }

  /**
   * Up to `budget` bytes of updates (each costing its length + `overhead`), counted as sent
   * once more; those that reach the limit leave the queue. Updates about `dest` (the member
   * the packet goes to) that are not news to it are left for other packets.
   */
  take(budget: number, overhead = 0, maxCount = 254, dest?: string): Uint8Array[] {
    if (this.byKey.size === 0) return [];
    this.compact();
    const limit = this.limit();
    const out: Uint8Array[] = [];
    let left = budget;
    let finished = false;
    for (const item of this.items) {
      if (out.length >= maxCount || left <= overhead) break;
      if (item.key === dest && !item.toSubject) continue;
      const cost = item.bytes.length + overhead;
      if (cost > left) continue;
      left -= cost;
      out.push(item.bytes);
      item.transmits++;
      if (item.transmits >= limit) {
        this.finish(item);
        finished = true;
      }
    }
    if (finished) this.items = this.items.filter((i) => !i.gone);
    return out;
  }

  /** Drops everything (calling each `onDone`). */
  clear(): void {
    const items = this.items;
    this.items = [];
    this.byKey.clear();
    for (const i of items) if (!i.gone) i.onDone?.();
  }

  /** Removes finished items, sorts, and drops the excess over maxItems. */
  private compact(): void {
    this.items = this.items.filter((i) => !i.gone);
    this.items.sort((a, b) => a.transmits - b.transmits || b.seq - a.seq);
    if (this.items.length > this.maxItems) {
      for (const dropped of this.items.splice(this.maxItems)) this.finish(dropped);
    }
  }

  private finish(item: Item): void {
    if (item.gone) return;
    item.gone = true;
    if (this.byKey.get(item.key) === item) this.byKey.delete(item.key);
    item.onDone?.();
  }
}
