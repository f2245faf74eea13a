import { LifelineError, TimeoutError } from "../errors.ts";
import type { Clock, Random } from "../util/clock.ts";
import type { PacketHandler, ReliableHandler, Transport } from "./transport.ts";

/**
 * An in-memory network for tests and simulations: every delivery is a timer on the injected
 * clock and every random choice comes from the injected seeded random source, so a run is
 * deterministic. Faults it models:
 * - latency (+ uniform jitter) and packet loss, globally or per directed link;
 * - partitions between groups of addresses (packets lost, reliable requests time out);
 * - a killed member (its endpoint closed: packets vanish, reliable requests are refused);
 * - a frozen member (as SIGSTOP): nothing it sends leaves and nothing sent to it is handled
 *   until it thaws, then everything queued is processed at once (up to a socket-buffer bound);
 * - a slowed member: extra latency on everything it sends and receives.
 * The reliable channel does not lose data, but each segment lost to the link's loss costs a
 * retransmission timeout (1 s, as a lost SYN does; up to 5 in a row), and it is cut by
 * partitions and by a link that loses every packet (loss 1) in either direction.
 */
export interface LinkConditions {
  /** One-way delay, ms. */
  latency: number;
  /** Extra delay drawn uniformly in [0, jitter), ms. */
  jitter: number;
  /** Probability in [0, 1] that a packet is lost. */
  loss: number;
}

export interface MemoryNetworkOptions extends Partial<LinkConditions> {
  clock: Clock;
  random: Random;
  /** Datagrams queued for a frozen member before more are dropped (a socket buffer). Default 1000. */
  frozenBuffer?: number;
}

export interface NetworkStats {
  packetsSent: number;
  packetsDelivered: number;
  packetsLost: number;
  bytesSent: number;
  reliableRequests: number;
}

export class MemoryNetwork {
  readonly clock: Clock;
  readonly random: Random;
  private defaults: LinkConditions;
  private readonly links = new Map<string, Partial<LinkConditions>>();
  private readonly endpoints = new Map<string, MemoryTransport>();
  private readonly groups = new Map<string, number>();
  private readonly frozen = new Map<string, { inbox: Array<() => void>; outbox: Array<() => void> }>();
  private readonly slowed = new Map<string, number>();
  private readonly frozenBuffer: number;
  readonly stats: NetworkStats = {
    packetsSent: 0,
    packetsDelivered: 0,
    packetsLost: 0,
    bytesSent: 0,
    reliableRequests: 0,
  };
  /** Packets sent by each address. */
  readonly sentBy = new Map<string, number>();

  constructor(opts: MemoryNetworkOptions) {
    this.clock = opts.clock;
    this.random = opts.random;
    this.defaults = { latency: opts.latency ?? 1, jitter: opts.jitter ?? 0, loss: opts.loss ?? 0 };
    this.frozenBuffer = opts.frozenBuffer ?? 1000;
  }

  /** A transport listening at `address` (any unique string; "host:port" reads best). */
  endpoint(address: string): MemoryTransport {
    if (this.endpoints.has(address))
      throw new LifelineError("LL_ADDRESS_IN_USE", `${address} is already in use`);
    const t = new MemoryTransport(this, address);
    this.endpoints.set(address, t);
    return t;
  }

  /** Changes the conditions of every link without its own. */
  setDefaults(c: Partial<LinkConditions>): void {
    this.defaults = { ...this.defaults, ...c };
  }

  /** Conditions of the directed link from → to (both directions with `symmetric`). */
  setLink(from: string, to: string, c: Partial<LinkConditions>, symmetric = true): void {
    this.links.set(`${from}>${to}`, { ...this.links.get(`${from}>${to}`), ...c });
    if (symmetric) this.links.set(`${to}>${from}`, { ...this.links.get(`${to}>${from}`), ...c });
  }

  /** Splits the network: members of different groups cannot reach each other. */
  partition(...groups: string[][]): void {
    this.groups.clear();
    groups.forEach((g, i) => {
      for (const a of g) this.groups.set(a, i);
    });
  }

  heal(): void {
    this.groups.clear();
  }

  /** Stops `address` as SIGSTOP would; `thaw` resumes it. */
  freeze(address: string): void {
    if (!this.frozen.has(address)) this.frozen.set(address, { inbox: [], outbox: [] });
  }

  thaw(address: string): void {
    const f = this.frozen.get(address);
    if (!f) return;
    this.frozen.delete(address);
    for (const fn of f.inbox) fn();
    for (const fn of f.outbox) fn();
  }

  /** Adds `extraMs` to every delivery from or to `address` (0 to undo). */
  slow(address: string, extraMs: number): void {
    if (extraMs > 0) this.slowed.set(address, extraMs);
    else this.slowed.delete(address);
  }

  /** Closes `address`'s endpoint, as a crash would. */
  kill(address: string): void {
    void this.endpoints.get(address)?.close();
  }

  isFrozen(address: string): boolean {
    return this.frozen.has(address);
  }

  /** @internal */
  detach(address: string): void {
    this.endpoints.delete(address);
    this.frozen.delete(address);
  }

  private conditions(from: string, to: string): LinkConditions {
    return { ...this.defaults, ...this.links.get(`${from}>${to}`) };
  }

  /** For the reliable channel: no partition and no black-holed direction. */
  private streamable(from: string, to: string): boolean {
    return (
      this.reachable(from, to) && this.conditions(from, to).loss < 1 && this.conditions(to, from).loss < 1
    );
  }

  private reachable(from: string, to: string): boolean {
    const a = this.groups.get(from);
    const b = this.groups.get(to);
    return a === undefined || b === undefined || a === b;
  }

  private delay(from: string, to: string): number {
    const c = this.conditions(from, to);
    return (
      c.latency +
      (c.jitter > 0 ? this.random() * c.jitter : 0) +
      (this.slowed.get(from) ?? 0) +
      (this.slowed.get(to) ?? 0)
    );
  }

  /** One way over the reliable channel: latency plus a 1 s timeout per lost transmission. */
  private streamDelay(from: string, to: string): number {
    const loss = this.conditions(from, to).loss;
    let d = this.delay(from, to);
    for (let i = 0; i < 5 && loss > 0 && this.random() < loss; i++) d += 1000;
    return d;
  }

  /** Runs `fn` now, or when `address` thaws. Returns false when the queue is full. */
  private whenRunning(address: string, box: "inbox" | "outbox", fn: () => void): boolean {
    const f = this.frozen.get(address);
    if (!f) {
      fn();
      return true;
    }
    if (f[box].length >= this.frozenBuffer) return false;
    f[box].push(fn);
    return true;
  }

  /** @internal */
  sendPacket(from: string, to: string, bytes: Uint8Array): void {
    this.whenRunning(from, "outbox", () => {
      this.stats.packetsSent++;
      this.stats.bytesSent += bytes.length;
      this.sentBy.set(from, (this.sentBy.get(from) ?? 0) + 1);
      const c = this.conditions(from, to);
      if (!this.reachable(from, to) || (c.loss > 0 && this.random() < c.loss)) {
        this.stats.packetsLost++;
        return;
      }
      this.clock.timeout(this.delay(from, to), () => {
        const dest = this.endpoints.get(to);
        if (!dest || !this.reachable(from, to)) {
          this.stats.packetsLost++;
          return;
        }
        const queued = this.whenRunning(to, "inbox", () => {
          this.stats.packetsDelivered++;
          dest.deliverPacket(bytes, from);
        });
        if (!queued) this.stats.packetsLost++;
      });
    });
  }

  /** @internal */
  sendReliable(from: string, to: string, bytes: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    this.stats.reliableRequests++;
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (fn: () => void) => {
        if (done) return;
        done = true;
        timer.cancel();
        fn();
      };
      const timer = this.clock.timeout(timeoutMs, () =>
        finish(() => reject(new TimeoutError(`no response from ${to} within ${timeoutMs} ms`, timeoutMs))),
      );
      this.whenRunning(from, "outbox", () => {
        this.clock.timeout(this.streamDelay(from, to), () => {
          if (!this.streamable(from, to)) return; // a partition: the caller times out
          const dest = this.endpoints.get(to);
          if (!dest) {
            finish(() => reject(new LifelineError("LL_CONNECT_FAILED", `connection to ${to} refused`)));
            return;
          }
          this.whenRunning(to, "inbox", () => {
            dest.handleReliable(bytes, from).then(
              (resp) => {
                this.clock.timeout(this.streamDelay(to, from), () => {
                  if (!this.streamable(from, to) || !this.endpoints.has(from)) return;
                  if (resp) finish(() => resolve(resp));
                  else finish(() => reject(new LifelineError("LL_CLOSED", `${to} closed the stream`)));
                });
              },
              (err: unknown) => finish(() => reject(err)),
            );
          });
        });
      });
    });
  }
}

export class MemoryTransport implements Transport {
  private packetHandler: PacketHandler = () => {};
  private reliableHandler: ReliableHandler = async () => undefined;
  private closed = false;

  constructor(
    private readonly network: MemoryNetwork,
    readonly address: string,
  ) {}

  sendPacket(to: string, bytes: Uint8Array): void {
    if (!this.closed) this.network.sendPacket(this.address, to, bytes);
  }

  sendReliable(to: string, bytes: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new LifelineError("LL_CLOSED", "transport closed"));
    return this.network.sendReliable(this.address, to, bytes, timeoutMs);
  }

  onPacket(handler: PacketHandler): void {
    this.packetHandler = handler;
  }

  onReliable(handler: ReliableHandler): void {
    this.reliableHandler = handler;
  }

  /** @internal */
  deliverPacket(bytes: Uint8Array, from: string): void {
    if (!this.closed) this.packetHandler(bytes, from);
  }

  /** @internal */
  handleReliable(bytes: Uint8Array, from: string): Promise<Uint8Array | undefined> {
    if (this.closed) return Promise.resolve(undefined);
    return this.reliableHandler(bytes, from);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.network.detach(this.address);
  }
}
