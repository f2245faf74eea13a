import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { type LatencyProxy, latencyProxy } from "../../bench/lib/latency-proxy.ts";

/** The shaping proxy of the benchmarks and tests: jitter, bandwidth, knobs changed at run time. */

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Sink {
  port: number;
  /** Every byte received, in order (all connections). */
  received: () => Buffer;
  /** Resolves with performance.now() once `n` bytes in all have arrived. */
  waitFor: (n: number) => Promise<number>;
  /** Called with each chunk as it arrives. */
  onChunk?: (chunk: Buffer, at: number) => void;
}

/** A server that keeps what arrives. */
async function sink(): Promise<Sink> {
  const chunks: Buffer[] = [];
  let total = 0;
  const waiters: Array<{ n: number; resolve: (at: number) => void }> = [];
  const sockets = new Set<net.Socket>();
  const s: Sink = {
    port: 0,
    received: () => Buffer.concat(chunks),
    waitFor: (n) =>
      new Promise((resolve) => {
        if (total >= n) resolve(performance.now());
        else waiters.push({ n, resolve });
      }),
  };
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("data", (d: Buffer) => {
      const at = performance.now();
      chunks.push(d);
      total += d.length;
      s.onChunk?.(d, at);
      for (const w of waiters.filter((x) => total >= x.n)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(at);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  s.port = (server.address() as net.AddressInfo).port;
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const x of sockets) x.destroy();
        server.close(() => r());
      }),
  );
  return s;
}

async function connect(p: LatencyProxy): Promise<net.Socket> {
  const socket = net.connect({ host: "127.0.0.1", port: p.port });
  socket.setNoDelay(true);
  socket.on("error", () => {});
  await new Promise<void>((r) => socket.once("connect", () => r()));
  cleanups.push(() => socket.destroy());
  return socket;
}

async function proxyTo(s: Sink, options: Parameters<typeof latencyProxy>[1]): Promise<LatencyProxy> {
  const p = await latencyProxy(`127.0.0.1:${s.port}`, options);
  cleanups.push(() => p.close());
  return p;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `n` bytes counting 0..255 over and over from `from`, so that any reordering shows. */
const pattern = (n: number, from = 0) => Buffer.from(Array.from({ length: n }, (_, i) => (from + i) % 256));

/** Sends `n` bytes at once and resolves with the ms until the sink has them all. */
async function timeToSend(socket: net.Socket, s: Sink, n: number): Promise<number> {
  const before = s.received().length;
  const t0 = performance.now();
  socket.write(pattern(n));
  return (await s.waitFor(before + n)) - t0;
}

describe("bench/lib/latency-proxy.ts", () => {
  it("limits the bandwidth: 50 kB at 100 kB/s take about half a second, intact", async () => {
    const s = await sink();
    const p = await proxyTo(s, { baseMs: 0, bandwidth: 100_000 });
    const socket = await connect(p);
    const ms = await timeToSend(socket, s, 50_000);
    console.log(`latency proxy: 50 kB at 100 kB/s took ${ms.toFixed(0)} ms`);
    expect(ms).toBeGreaterThanOrEqual(400);
    expect(ms).toBeLessThan(5000);
    expect(s.received().equals(pattern(50_000))).toBe(true);
  });

  it("limits each direction: what the target sends back is throttled too", async () => {
    const payload = pattern(50_000);
    const server = net.createServer((socket) => {
      socket.on("error", () => {});
      socket.end(payload);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const p = await latencyProxy(`127.0.0.1:${(server.address() as net.AddressInfo).port}`, {
      baseMs: 0,
      bandwidth: 100_000,
    });
    cleanups.push(() => p.close());
    const t0 = performance.now();
    const socket = net.connect({ host: "127.0.0.1", port: p.port });
    cleanups.push(() => socket.destroy());
    const chunks: Buffer[] = [];
    socket.on("data", (d: Buffer) => chunks.push(d));
    await new Promise<void>((r) => socket.once("end", () => r()));
    const ms = performance.now() - t0;
    expect(ms).toBeGreaterThanOrEqual(400);
    expect(Buffer.concat(chunks).equals(payload)).toBe(true);
  });

  it("jitters the delay per chunk without reordering bytes, around the base delay", async () => {
    const s = await sink();
    const base = 30;
    const jitter = 20;
    const p = await proxyTo(s, { baseMs: base, jitterMs: jitter });
    const socket = await connect(p);
    // Records of [seq u32, send time f64, filler]: each chunk says when it was sent.
    const RECORD = 64;
    const delays: number[] = [];
    let pending = Buffer.alloc(0);
    s.onChunk = (chunk, at) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= RECORD) {
        delays.push(at - pending.readDoubleLE(4));
        pending = pending.subarray(RECORD);
      }
    };
    const count = 150;
    const sent: Buffer[] = [];
    for (let seq = 0; seq < count; seq++) {
      // Records of varying counts per write, a few ms apart: many chunks, some close together.
      const n = 1 + (seq % 3);
      const buf = Buffer.alloc(RECORD * n);
      for (let r = 0; r < n; r++) {
        pattern(RECORD, seq * 7 + r).copy(buf, r * RECORD);
        buf.writeUInt32LE(seq, r * RECORD);
        buf.writeDoubleLE(performance.now(), r * RECORD + 4);
      }
      sent.push(buf);
      socket.write(buf);
      await sleep(seq % 5 === 0 ? 0 : 4);
    }
    const all = Buffer.concat(sent);
    await s.waitFor(all.length);
    expect(s.received().equals(all)).toBe(true);

    const mean = delays.reduce((a, b) => a + b, 0) / delays.length;
    const sd = Math.sqrt(delays.reduce((a, d) => a + (d - mean) ** 2, 0) / delays.length);
    console.log(
      `latency proxy: base ${base} ms ± ${jitter} ms: ${delays.length} records, delay mean ${mean.toFixed(1)} ms, ` +
        `sd ${sd.toFixed(1)}, min ${Math.min(...delays).toFixed(1)}, max ${Math.max(...delays).toFixed(1)}`,
    );
    // Never reordered means a later chunk waits for a slower one before it: the mean is at or
    // above the base, by less than the jitter (plus the machine's timer delays).
    expect(mean).toBeGreaterThan(base - 5);
    expect(mean).toBeLessThan(base + jitter + 25);
    // The jitter is there: delays on both sides of the base.
    expect(Math.min(...delays)).toBeLessThan(base);
    expect(Math.max(...delays)).toBeGreaterThan(base);
    expect(sd).toBeGreaterThan(2);
  });

  it("takes knobs changed at run time: bandwidth (also for bytes already waiting), delay, mode", async () => {
    const s = await sink();
    const p = await proxyTo(s, { baseMs: 0 });
    const socket = await connect(p);

    const fast = await timeToSend(socket, s, 50_000);
    expect(fast).toBeLessThan(300);

    p.set({ bandwidth: 50_000 });
    expect(p.knobs).toEqual({ baseMs: 0, jitterMs: 0, bandwidth: 50_000 });
    const slow = await timeToSend(socket, s, 50_000);
    expect(slow).toBeGreaterThanOrEqual(800);

    // Lifting the limit lets out at once what is still waiting.
    const before = s.received().length;
    const t0 = performance.now();
    socket.write(pattern(100_000));
    await sleep(200);
    expect(s.received().length - before).toBeLessThan(100_000);
    p.set({ bandwidth: 0 });
    const lifted = (await s.waitFor(before + 100_000)) - t0;
    expect(lifted).toBeLessThan(1000); // 100 kB at 50 kB/s would take 2 s

    p.set({ baseMs: 250 });
    const delayed = await timeToSend(socket, s, 10);
    expect(delayed).toBeGreaterThanOrEqual(240);
    p.set({ baseMs: 0 });

    p.setMode("freeze");
    const frozenFrom = s.received().length;
    socket.write(pattern(10));
    await sleep(300);
    expect(s.received().length).toBe(frozenFrom);
    p.setMode("pass");
    await s.waitFor(frozenFrom + 10);

    expect(() => p.set({ jitterMs: -1 })).toThrow(RangeError);
    expect(() => p.set({ bandwidth: Number.NaN })).toThrow(RangeError);
    expect(p.knobs).toEqual({ baseMs: 0, jitterMs: 0, bandwidth: 0 });
  });
});
