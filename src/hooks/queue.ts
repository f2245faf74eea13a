/**
 * A bounded first-in first-out queue worked one item at a time: items are handled strictly in
 * order (a slow one holds up those behind it, never overtaken by them). At most `capacity`
 * items wait besides the one being handled; pushing onto a full queue drops the oldest
 * waiting item, which is handed to `onDrop`.
 */
export class SerialQueue<T> {
  private readonly items: T[] = [];
  private running = false;
  private controller = new AbortController();
  private idleWaiters: Array<() => void> = [];

  constructor(
    public capacity: number,
    private readonly worker: (item: T, signal: AbortSignal) => Promise<void>,
    private readonly onDrop: (item: T, why: "overflow" | "abort") => void,
  ) {}

  /** Items waiting (the one being handled not included). */
  get waiting(): number {
    return this.items.length;
  }

  /** Nothing waiting and nothing being handled. */
  get idle(): boolean {
    return !this.running && this.items.length === 0;
  }

  push(item: T): void {
    while (this.items.length >= this.capacity) this.onDrop(this.items.shift()!, "overflow");
    this.items.push(item);
    if (!this.running) void this.run();
  }

  /** Resolves when the queue is idle. */
  whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Aborts the item being handled (its worker's signal) and drops every waiting one; the
   *  queue stays usable. Returns how many waiting items were dropped. */
  abort(): number {
    const dropped = this.items.splice(0);
    for (const item of dropped) this.onDrop(item, "abort");
    this.controller.abort();
    this.controller = new AbortController();
    return dropped.length;
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (this.items.length > 0) {
        const item = this.items.shift()!;
        try {
          await this.worker(item, this.controller.signal);
        } catch {
          // The worker reports its own failures; the queue goes on.
        }
      }
    } finally {
      this.running = false;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}
