import net from "node:net";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

/**
 * A loopback TCP proxy that shapes the traffic to one target, both ways: latency (a base
 * delay, jitter around it, and spikes on a schedule), a bandwidth limit, and faults (freeze,
 * reset). Every knob can be changed while it runs. The benchmarks use it for latency spikes
 * (bench/false-positives.ts); the tests use it, without delay, for freezes and resets
 * (test/support/proxy.ts).
 *
 * Order is kept: a chunk is never delivered before one that arrived earlier on the same
 * connection and direction, so the end of a spike delivers what it held back as a burst, as a
 * real queue would.
 *
 * It delays bytes, not handshakes: the proxy's own kernel accepts connections at once, so a
 * connect check sees the proxy, not the latency behind it (a userspace proxy cannot delay a
 * SYN-ACK). What goes over an established connection — a protocol handshake, heartbeats,
 * replies — is delayed, jittered and throttled.
 *
 * As a library: `latencyProxy(target, options)`. As a child process (bench/false-positives.ts
 * runs it inside its network namespace):
 *
 *   node --import tsx bench/lib/latency-proxy.ts --targets 127.0.0.1:4001,127.0.0.1:4002
 *                                                [--jitter MS] [--bandwidth BYTES_PER_S]
 *
 * prints {"type":"listening","proxies":[{"target","port"}]}, then takes commands on stdin,
 * one JSON object a line, each for every proxy (or, with "port", the one listening there):
 *   {"cmd":"start"}                                        starts the spikes; it prints
 *       {"type":"spike","port","delayMs","start","end"} at the start of each (wall-clock ms)
 *   {"cmd":"set","baseMs":5,"jitterMs":2,"bandwidth":100000}  changes knobs (any of them)
 *   {"cmd":"mode","mode":"freeze"}                          pass, freeze or reset
 * and exits when stdin closes or on SIGTERM/SIGINT.
 */

export interface SpikeSchedule {
  /** Delay outside spikes, ms, each direction (the proxy's `baseMs` unless that is given). */
  baseMs: number;
  /** Time from the end of one spike to the start of the next, ms: [min, max]. */
  everyMs: [number, number];
  /** Delay during a spike, ms, each direction: [min, max]. */
  spikeMs: [number, number];
  /** How long a spike lasts, ms: [min, max]. */
  lastsMs: [number, number];
}

export const DEFAULT_SPIKES: SpikeSchedule = {
  baseMs: 1,
  everyMs: [5000, 15_000],
  spikeMs: [300, 1500],
  lastsMs: [2000, 5000],
};

/**
 * What the proxy does with traffic:
 * - `pass`: forwards both ways (with the delay, jitter and bandwidth limit).
 * - `freeze`: stops forwarding in both directions but keeps every socket open (a frozen
 *   process, a half-open path): it stops reading, and what it holds stays held; new
 *   connections are accepted and held, without a connection to the target, until `pass`.
 * - `reset`: resets every open connection and every new one as soon as it is accepted (a
 *   process that is dying while its port still accepts).
 */
export type ProxyMode = "pass" | "freeze" | "reset";

/** The knobs that shape the traffic. All can be changed while the proxy runs (`set`). */
export interface ProxyKnobs {
  /**
   * Delay added to every chunk, each direction, ms (outside spikes; a spike replaces it while
   * it lasts). Default: the spike schedule's `baseMs` (DEFAULT_SPIKES: 1 ms). A change applies
   * to the bytes that arrive from then on.
   */
  baseMs: number;
  /**
   * Jitter, ms: each chunk's delay is the base (or spike) delay plus a uniform random offset in
   * [-jitterMs, +jitterMs], and never below 0. Default 0. Bytes are never reordered: a chunk
   * whose delay would let it leave before the chunk ahead of it leaves right after that one
   * instead. So when chunks come closer together than the jitter, a connection sees a queue —
   * the later chunks wait for the slow ones — and its mean delay is above the base (by up to
   * about jitterMs), as on a real path with variable delay. Jitter is drawn per chunk as it
   * arrives, so its effect depends on how the sender's writes are cut into chunks. A change
   * applies to the bytes that arrive from then on.
   */
  jitterMs: number;
  /**
   * Bandwidth in each direction, bytes per second, shared by all the proxy's connections (the
   * target's link, as it were); 0 (the default) is unlimited. A token bucket that holds at
   * most BURST_SECONDS worth: bytes leave as a smooth stream rather than in bursts, at the cost
   * of a timer every few ms at low rates; a chunk larger than the bucket leaves in pieces.
   * The limit applies after the delay (the delay is the path, the limit its narrowest link),
   * and at once to the bytes already waiting. While more than QUEUE_LIMIT bytes wait in a
   * connection's direction, the proxy stops reading from that sender, which then slows down as
   * it would on a slow link (instead of the proxy buffering without end).
   */
  bandwidth: number;
}

/** How long the token bucket can save up for, s: the largest burst at full rate. */
export const BURST_SECONDS = 0.05;
/** Bytes one direction of a connection may hold before the proxy stops reading its sender. */
export const QUEUE_LIMIT = 1 << 20;

export interface LatencyProxyOptions extends Partial<ProxyKnobs> {
  /** The spike schedule that startSpikes() follows (default DEFAULT_SPIKES). */
  spikes?: SpikeSchedule;
  /** Initial mode (default `pass`). */
  mode?: ProxyMode;
  /** Random numbers in [0, 1), for the jitter and the spikes (default Math.random). */
  random?: () => number;
}

export interface Spike {
  /** Wall-clock ms. */
  start: number;
  end: number;
  delayMs: number;
}

export interface LatencyProxy {
  target: string;
  port: number;
  address: string;
  /** The delay now (the base, or a spike's), ms, before jitter. */
  readonly delayMs: number;
  /** The knobs now. */
  readonly knobs: Readonly<ProxyKnobs>;
  readonly mode: ProxyMode;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Spikes so far (bounded by the run's length: one per ≥ everyMs[0]). */
  readonly spikes: Spike[];
  /** Changes knobs; throws a RangeError for a negative or non-finite value. */
  set(knobs: Partial<ProxyKnobs>): void;
  setMode(mode: ProxyMode): void;
  /** Starts the spike schedule; `onSpike` is told at the start of each. */
  startSpikes(onSpike?: (s: Spike) => void): void;
  close(): Promise<void>;
}

const between = ([lo, hi]: [number, number], random: () => number) => lo + (hi - lo) * random();

/** A token bucket for one direction of the proxy (all its connections). */
class Bucket {
  private tokens = 0;
  private at = performance.now();

  constructor(private readonly rate: () => number) {}

  private capacity(): number {
    return Math.max(1, this.rate() * BURST_SECONDS);
  }

  private refill(now: number): void {
    this.tokens = Math.min(this.capacity(), this.tokens + ((now - this.at) / 1000) * this.rate());
    this.at = now;
  }

  /**
   * Takes up to `want` bytes' worth, once there are at least as many tokens as `want` or as the
   * bucket holds: the bytes that may leave now (0: none yet, retry after `waitMs`).
   */
  take(want: number, now: number): { bytes: number; waitMs: number } {
    if (this.rate() <= 0) return { bytes: want, waitMs: 0 };
    this.refill(now);
    const need = Math.min(want, this.capacity());
    if (this.tokens < need)
      return { bytes: 0, waitMs: Math.max(1, ((need - this.tokens) / this.rate()) * 1000) };
    const bytes = Math.min(want, Math.floor(this.tokens));
    this.tokens -= bytes;
    return { bytes, waitMs: 0 };
  }
}

interface Shaping {
  /** This chunk's delay, ms (base or spike, with jitter). */
  delay(): number;
  bucket: Bucket;
  /** False while frozen. */
  flowing(): boolean;
}

/** One direction of one connection: chunks delivered in order, each at its due time, as the
 *  bucket allows. */
class DelayedPipe {
  private readonly queue: Array<{ at: number; chunk: Buffer | null }> = [];
  private timer: NodeJS.Timeout | undefined;
  private last = 0;
  private bytes = 0;
  /** More than QUEUE_LIMIT bytes held: the sender is not read (until half of it is out). */
  full = false;

  constructor(
    private readonly dst: () => net.Socket | undefined,
    private readonly shaping: Shaping,
    /** Told when `full` changes, and when the queue becomes empty. */
    private readonly onChange: () => void,
  ) {}

  get empty(): boolean {
    return this.queue.length === 0;
  }

  /** `null` ends the stream (after everything before it). */
  push(chunk: Buffer | null): void {
    const at = Math.max(performance.now() + this.shaping.delay(), this.last);
    this.last = at;
    this.queue.push({ at, chunk });
    if (chunk) this.bytes += chunk.length;
    if (!this.full && this.bytes > QUEUE_LIMIT) {
      this.full = true;
      this.onChange();
    }
    if (this.queue.length === 1) this.kick();
  }

  /** Delivers what is due, and sets a timer for what is not (again after a change of knobs). */
  kick(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.shaping.flowing()) return;
    let waitMs = 0;
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const now = performance.now();
      if (head.at > now + 0.5) {
        waitMs = head.at - now;
        break;
      }
      const dst = this.dst();
      if (head.chunk === null) {
        this.queue.shift();
        if (dst && !dst.destroyed) dst.end();
        continue;
      }
      const { bytes, waitMs: wait } = this.shaping.bucket.take(head.chunk.length, now);
      if (bytes === 0) {
        waitMs = wait;
        break;
      }
      const out = bytes === head.chunk.length ? head.chunk : head.chunk.subarray(0, bytes);
      if (bytes === head.chunk.length) this.queue.shift();
      else head.chunk = head.chunk.subarray(bytes);
      this.bytes -= bytes;
      if (dst && !dst.destroyed) dst.write(out);
    }
    if (this.queue.length > 0) this.timer = setTimeout(() => this.kick(), waitMs);
    if (this.full && this.bytes <= QUEUE_LIMIT / 2) {
      this.full = false;
      this.onChange();
    } else if (this.queue.length === 0) this.onChange();
  }

  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
    this.bytes = 0;
  }
}

function checkKnobs(knobs: Partial<ProxyKnobs>): void {
  for (const [name, v] of Object.entries(knobs))
    if (v !== undefined && !(Number.isFinite(v) && v >= 0))
      throw new RangeError(`latency proxy: ${name} must be a number >= 0, not ${String(v)}`);
}

/** A shaping proxy on 127.0.0.1, port 0, in front of `target` (host:port). */
export async function latencyProxy(target: string, options: LatencyProxyOptions = {}): Promise<LatencyProxy> {
  const i = target.lastIndexOf(":");
  const host = target.slice(0, i).replace(/^\[|\]$/g, "");
  const port = Number(target.slice(i + 1));
  const schedule = options.spikes ?? DEFAULT_SPIKES;
  const random = options.random ?? Math.random;
  const knobs: ProxyKnobs = {
    baseMs: options.baseMs ?? schedule.baseMs,
    jitterMs: options.jitterMs ?? 0,
    bandwidth: options.bandwidth ?? 0,
  };
  checkKnobs(knobs);
  let mode: ProxyMode = options.mode ?? "pass";
  /** The delay of a spike while it lasts. */
  let spikeDelay: number | undefined;
  let accepted = 0;
  let closed = false;
  let spikeTimer: NodeJS.Timeout | undefined;
  const spikes: Spike[] = [];
  const connections = new Set<Connection>();

  const delayNow = () => spikeDelay ?? knobs.baseMs;
  const shaping = (bucket: Bucket): Shaping => ({
    delay: () => Math.max(0, delayNow() + (knobs.jitterMs > 0 ? (2 * random() - 1) * knobs.jitterMs : 0)),
    bucket,
    flowing: () => mode === "pass",
  });
  const up = shaping(new Bucket(() => knobs.bandwidth));
  const down = shaping(new Bucket(() => knobs.bandwidth));

  /** A client's connection and the proxy's connection to the target for it. */
  class Connection {
    upstream: net.Socket | undefined;
    readonly toUp: DelayedPipe;
    readonly toClient: DelayedPipe;
    /** Sides that have closed (both directions done). */
    private closed = 0;
    private done = false;

    constructor(readonly client: net.Socket) {
      this.toUp = new DelayedPipe(
        () => this.upstream,
        up,
        () => this.changed(),
      );
      this.toClient = new DelayedPipe(
        () => client,
        down,
        () => this.changed(),
      );
      this.feed(client, this.toUp);
    }

    /** What arrives on `from` goes into `pipe`. An orderly end travels with the data
     *  (delayed); an error or reset ends both sides at once. */
    private feed(from: net.Socket, pipe: DelayedPipe): void {
      from.on("data", (d: Buffer) => pipe.push(d));
      from.on("end", () => pipe.push(null));
      from.on("error", () => this.teardown());
      from.on("close", () => {
        this.closed++;
        this.changed();
      });
    }

    /** Connects to the target (once, on the first `pass`). */
    private wire(): void {
      this.upstream = net.connect({ host, port, allowHalfOpen: true });
      this.feed(this.upstream, this.toClient);
    }

    /** Follows the mode: forwarding, frozen, or reset. */
    apply(): void {
      if (this.done) return;
      if (mode === "reset") {
        this.client.resetAndDestroy();
        this.upstream?.destroy();
        this.teardown();
        return;
      }
      if (mode === "pass" && !this.upstream) this.wire();
      this.flow();
      this.toUp.kick();
      this.toClient.kick();
    }

    /** Reads a sender only while passing and while its direction is not full. */
    private flow(): void {
      const read = (s: net.Socket | undefined, pipe: DelayedPipe) => {
        if (!s || s.destroyed) return;
        if (mode === "pass" && !pipe.full) s.resume();
        else s.pause();
      };
      read(this.client, this.toUp);
      read(this.upstream, this.toClient);
    }

    private changed(): void {
      if (this.done) return;
      this.flow();
      // Once one side has closed, the other is let go when what the pipes hold is out (with
      // a moment for the last writes to leave).
      if (this.closed > 0 && this.toUp.empty && this.toClient.empty)
        setTimeout(() => this.teardown(), 50).unref();
    }

    teardown(): void {
      if (this.done) return;
      this.done = true;
      this.toUp.cancel();
      this.toClient.cancel();
      this.client.destroy();
      this.upstream?.destroy();
      connections.delete(this);
    }
  }

  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    accepted++;
    const c = new Connection(client);
    connections.add(c);
    c.apply();
  });
  server.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const listenPort = (server.address() as net.AddressInfo).port;

  const kickAll = () => {
    for (const c of [...connections]) c.apply();
  };

  const next = (onSpike?: (s: Spike) => void) => {
    spikeTimer = setTimeout(
      () => {
        if (closed) return;
        const lasts = between(schedule.lastsMs, random);
        const spike: Spike = {
          start: Date.now(),
          end: Date.now() + Math.round(lasts),
          delayMs: Math.round(between(schedule.spikeMs, random)),
        };
        spikeDelay = spike.delayMs;
        spikes.push(spike);
        onSpike?.(spike);
        spikeTimer = setTimeout(() => {
          spikeDelay = undefined;
          if (!closed) next(onSpike);
        }, lasts);
      },
      between(schedule.everyMs, random),
    );
  };

  return {
    target,
    port: listenPort,
    address: `127.0.0.1:${listenPort}`,
    get delayMs() {
      return delayNow();
    },
    get knobs() {
      return { ...knobs };
    },
    get mode() {
      return mode;
    },
    get accepted() {
      return accepted;
    },
    spikes,
    set(changes) {
      const given = Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined));
      checkKnobs(given);
      Object.assign(knobs, given);
      // The bandwidth applies to what is waiting too; delays apply to what arrives from now on.
      kickAll();
    },
    setMode(next) {
      mode = next;
      kickAll();
    },
    startSpikes(onSpike) {
      if (spikeTimer === undefined && !closed) next(onSpike);
    },
    close: () =>
      new Promise<void>((resolve) => {
        closed = true;
        clearTimeout(spikeTimer);
        for (const c of [...connections]) c.teardown();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------
// As a child process

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { targets: { type: "string" }, jitter: { type: "string" }, bandwidth: { type: "string" } },
    strict: false, // the parent's run marker is passed too
  });
  const targets = String(values.targets ?? "")
    .split(",")
    .filter(Boolean);
  const write = (obj: unknown) => process.stdout.write(`${JSON.stringify(obj)}\n`);
  const options: LatencyProxyOptions = { spikes: DEFAULT_SPIKES };
  if (values.jitter !== undefined) options.jitterMs = Number(values.jitter);
  if (values.bandwidth !== undefined) options.bandwidth = Number(values.bandwidth);
  const proxies = await Promise.all(targets.map((t) => latencyProxy(t, options)));
  write({ type: "listening", proxies: proxies.map((p) => ({ target: p.target, port: p.port })) });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await Promise.all(proxies.map((p) => p.close()));
    process.exit(0);
  };
  const lines = createInterface({ input: process.stdin });
  lines.on("line", (line) => {
    let cmd: { cmd?: unknown; port?: unknown; mode?: unknown } & Partial<Record<keyof ProxyKnobs, unknown>>;
    try {
      cmd = JSON.parse(line);
    } catch {
      return;
    }
    const chosen = cmd.port === undefined ? proxies : proxies.filter((p) => p.port === Number(cmd.port));
    const num = (v: unknown) => (v === undefined ? undefined : Number(v));
    try {
      if (cmd.cmd === "start")
        for (const p of chosen) p.startSpikes((s) => write({ type: "spike", port: p.port, ...s }));
      else if (cmd.cmd === "set") {
        const knobs = { baseMs: num(cmd.baseMs), jitterMs: num(cmd.jitterMs), bandwidth: num(cmd.bandwidth) };
        for (const p of chosen) p.set(knobs as Partial<ProxyKnobs>);
      } else if (cmd.cmd === "mode" && ["pass", "freeze", "reset"].includes(String(cmd.mode)))
        for (const p of chosen) p.setMode(cmd.mode as ProxyMode);
      else write({ type: "error", message: `unknown command: ${line}` });
    } catch (err) {
      write({ type: "error", message: (err as Error).message });
    }
  });
  lines.on("close", () => void stop());
  process.stdin.on("error", () => void stop());
  process.on("SIGTERM", () => void stop());
  process.on("SIGINT", () => void stop());
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`latency-proxy: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
