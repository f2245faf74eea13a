import net from "node:net";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

/**
 * A loopback TCP proxy that adds latency, with spikes: every byte is forwarded (both ways) a
 * delay after it arrived — `baseMs` normally, and every `everyMs` (random in the range) a
 * spike of `spikeMs` (random) that lasts `lastsMs` (random). Order is kept: a chunk is never
 * delivered before one that arrived earlier, so the end of a spike delivers what it held back
 * as a burst, as a real queue would.
 *
 * It delays bytes, not handshakes: the proxy's own kernel accepts connections at once, so a
 * connect check sees the proxy, not the latency behind it (a userspace proxy cannot delay a
 * SYN-ACK). What goes over an established connection — a protocol handshake, heartbeats,
 * replies — is delayed.
 *
 * As a library: `latencyProxy(target, schedule)`. As a child process (bench/false-positives.ts
 * runs it inside its network namespace):
 *
 *   node --import tsx bench/lib/latency-proxy.ts --targets 127.0.0.1:4001,127.0.0.1:4002
 *
 * prints {"type":"listening","proxies":[{"target","port"}]}, starts the spikes on the stdin
 * command {"cmd":"start"}, prints {"type":"spike","port","delayMs","start","end"} at the start
 * of each spike (wall-clock ms), and exits when stdin closes or on SIGTERM/SIGINT.
 */

export interface SpikeSchedule {
  /** Delay outside spikes, ms, each direction. */
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
  /** The delay now, ms. */
  readonly delayMs: number;
  readonly accepted: number;
  /** Spikes so far (bounded by the run's length: one per ≥ everyMs[0]). */
  readonly spikes: Spike[];
  /** Starts the spike schedule; `onSpike` is told at the start of each. */
  startSpikes(onSpike?: (s: Spike) => void): void;
  close(): Promise<void>;
}

const between = ([lo, hi]: [number, number], random: () => number) => lo + (hi - lo) * random();

/** One direction of one connection: chunks delivered in order, each at its due time. */
class DelayedPipe {
  private readonly queue: Array<{ at: number; chunk: Buffer | null }> = [];
  private timer: NodeJS.Timeout | undefined;
  private last = 0;

  constructor(
    private readonly dst: () => net.Socket | undefined,
    private readonly delay: () => number,
  ) {}

  /** `null` ends the stream (after everything before it). */
  push(chunk: Buffer | null): void {
    const at = Math.max(performance.now() + this.delay(), this.last);
    this.last = at;
    this.queue.push({ at, chunk });
    if (this.queue.length === 1) this.arm();
  }

  private arm(): void {
    const head = this.queue[0];
    if (!head) return;
    this.timer = setTimeout(() => this.flush(), Math.max(0, head.at - performance.now()));
  }

  private flush(): void {
    this.timer = undefined;
    const now = performance.now();
    while (this.queue.length > 0 && this.queue[0]!.at <= now + 0.5) {
      const { chunk } = this.queue.shift()!;
      const dst = this.dst();
      if (!dst || dst.destroyed) continue;
      if (chunk === null) dst.end();
      else dst.write(chunk);
    }
    this.arm();
  }

  cancel(): void {
    clearTimeout(this.timer);
    this.queue.length = 0;
  }
}

/** A latency proxy on 127.0.0.1, port 0, in front of `target` (host:port). */
export async function latencyProxy(
  target: string,
  schedule: SpikeSchedule = DEFAULT_SPIKES,
  random: () => number = Math.random,
): Promise<LatencyProxy> {
  const i = target.lastIndexOf(":");
  const host = target.slice(0, i).replace(/^\[|\]$/g, "");
  const port = Number(target.slice(i + 1));
  let delayMs = schedule.baseMs;
  let accepted = 0;
  let closed = false;
  let spikeTimer: NodeJS.Timeout | undefined;
  const spikes: Spike[] = [];
  const sockets = new Set<net.Socket>();
  const pipes = new Set<DelayedPipe>();

  const server = net.createServer((client) => {
    accepted++;
    const up = net.connect({ host, port });
    sockets.add(client);
    sockets.add(up);
    const toUp = new DelayedPipe(
      () => up,
      () => delayMs,
    );
    const toClient = new DelayedPipe(
      () => client,
      () => delayMs,
    );
    pipes.add(toUp);
    pipes.add(toClient);
    let done = false;
    const teardown = () => {
      if (done) return;
      done = true;
      toUp.cancel();
      toClient.cancel();
      pipes.delete(toUp);
      pipes.delete(toClient);
      client.destroy();
      up.destroy();
      sockets.delete(client);
      sockets.delete(up);
    };
    client.on("data", (d: Buffer) => toUp.push(d));
    up.on("data", (d: Buffer) => toClient.push(d));
    // An orderly end travels with the data (delayed); an error or reset ends both at once.
    client.on("end", () => toUp.push(null));
    up.on("end", () => toClient.push(null));
    client.on("error", teardown);
    up.on("error", teardown);
    // Once one side has closed, the other is let go when what the pipes still hold is out.
    const later = () => setTimeout(teardown, delayMs + 50).unref();
    client.on("close", later);
    up.on("close", later);
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
        delayMs = spike.delayMs;
        spikes.push(spike);
        onSpike?.(spike);
        spikeTimer = setTimeout(() => {
          delayMs = schedule.baseMs;
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
      return delayMs;
    },
    get accepted() {
      return accepted;
    },
    spikes,
    startSpikes(onSpike) {
      if (spikeTimer === undefined && !closed) next(onSpike);
    },
    close: () =>
      new Promise<void>((resolve) => {
        closed = true;
        clearTimeout(spikeTimer);
        for (const p of pipes) p.cancel();
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------
// As a child process

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { targets: { type: "string" } },
    strict: false, // the parent's run marker is passed too
  });
  const targets = String(values.targets ?? "")
    .split(",")
    .filter(Boolean);
  const write = (obj: unknown) => process.stdout.write(`${JSON.stringify(obj)}\n`);
  const proxies = await Promise.all(targets.map((t) => latencyProxy(t)));
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
    let cmd: { cmd?: unknown };
    try {
      cmd = JSON.parse(line);
    } catch {
      return;
    }
    if (cmd.cmd === "start")
      for (const p of proxies) p.startSpikes((s) => write({ type: "spike", port: p.port, ...s }));
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
