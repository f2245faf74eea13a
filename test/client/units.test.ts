import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { ConnectOptions } from "../../src/client/connection.ts";
import { ConnectTimeouts, dial, NoServerError } from "../../src/client/dialer.ts";
import type { Connector, Link } from "../../src/client/link.ts";
import { Outbox } from "../../src/client/outbox.ts";
import { OutboxFile } from "../../src/client/outbox-file.ts";
import { type ServerView, weight, weightedOrder } from "../../src/client/picker.ts";
import { LifelineError } from "../../src/errors.ts";
import { seededRandom } from "../../src/util/clock.ts";
import { FakeClock } from "../../src/util/fake-clock.ts";

const dir = mkdtempSync(join(tmpdir(), "lifeline-client-units-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bytes = (s: string) => Buffer.from(s);
const view = (v: Partial<ServerView>): ServerView => ({
  address: "a:1",
  avoidUntil: 0,
  failures: 0,
  seed: true,
  ...v,
});

describe("picker", () => {
  it.each([
    ["unknown", {}, 1],
    ["healthy", { state: "healthy" }, 1],
    ["degraded", { state: "degraded" }, 0.25],
    ["draining", { state: "draining" }, 0],
    ["down", { state: "down" }, 0],
    ["10 ms away", { latency: 10 }, 0.5],
    ["lag 150 ms", { load: { connections: 0, sessions: 0, lag: 150, queue: 0, cpu: 0 } }, 0.5],
    ["lag 30 ms (noise)", { load: { connections: 0, sessions: 0, lag: 30, queue: 0, cpu: 0.7 } }, 1],
    ["avoided", { avoidUntil: 1000 }, 0.001],
  ] as const)("weight: %s", (_, v, w) => {
    expect(weight(view(v as Partial<ServerView>), 0)).toBeCloseTo(w, 6);
  });

  it("weightedOrder: zero weights last; draws proportional to weight", () => {
    const random = seededRandom(7);
    const firsts = new Map<string, number>();
    for (let i = 0; i < 10_000; i++) {
      const order = weightedOrder(["a", "b", "z"], (x) => (x === "a" ? 3 : x === "b" ? 1 : 0), random);
      expect(order[2]).toBe("z");
      firsts.set(order[0]!, (firsts.get(order[0]!) ?? 0) + 1);
    }
    expect(firsts.get("a")! / 10_000).toBeGreaterThan(0.7);
    expect(firsts.get("a")! / 10_000).toBeLessThan(0.8);
  });
});

describe("outbox", () => {
  it("reject: a full outbox refuses and changes nothing", () => {
    const o = new Outbox({ maxMessages: 2, maxBytes: 100, overflow: "reject" });
    o.add(bytes("a"));
    o.add(bytes("b"));
    expect(() => o.add(bytes("c"))).toThrow(expect.objectContaining({ code: "LL_OUTBOX_FULL" }));
    expect([o.size, o.bytes, o.unsentCount]).toEqual([2, 2, 2]);
    expect(() => new Outbox({ maxMessages: 9, maxBytes: 3, overflow: "reject" }).add(bytes("abcd"))).toThrow(
      /larger than the outbox/,
    );
  });

  it("drop-oldest drops unsent messages only, never sent ones", () => {
    const o = new Outbox({ maxMessages: 3, maxBytes: 100, overflow: "drop-oldest" });
    const a = o.add(bytes("a")).entry;
    o.add(bytes("b"));
    o.add(bytes("c"));
    expect(o.takeNext(1)).toBe(a); // a is sent now
    const r = o.add(bytes("d"));
    expect(r.dropped.map((e) => Buffer.from(e.payload).toString())).toEqual(["b"]);
    expect(o.inflight().map((e) => e.seq)).toEqual([1]);
    o.takeNext(2);
    o.takeNext(3);
    expect(() => o.add(bytes("e"))).toThrow(expect.objectContaining({ code: "LL_OUTBOX_FULL" })); // all sent
  });

  it("complete, acknowledge and dropInflight keep counts and bytes right", () => {
    const o = new Outbox({ maxMessages: 10, maxBytes: 100, overflow: "reject" });
    for (const s of ["aa", "bb", "cc", "dd"]) o.add(bytes(s));
    o.takeNext(1);
    o.takeNext(2);
    o.takeNext(3);
    expect(o.complete(2)?.seq).toBe(2);
    expect(o.complete(2)).toBeUndefined();
    expect([o.inflightCount, o.unsentCount, o.bytes]).toEqual([2, 1, 6]);
    expect(o.acknowledge(1).map((e) => e.seq)).toEqual([1]);
    expect(o.dropInflight().map((e) => e.seq)).toEqual([3]);
    expect([o.inflightCount, o.unsentCount, o.bytes]).toEqual([0, 1, 2]);
  });

  it("the outbox file restores messages (sent ones with their seq) and the session; one client per file", () => {
    const path = join(dir, "outbox.db");
    const f = new OutboxFile(path);
    const o = new Outbox({ maxMessages: 10, maxBytes: 100, overflow: "reject" }, f);
    o.add(bytes("x"));
    o.add(bytes("y"));
    o.takeNext(7);
    f.saveSession({ id: "s1", token: "t", lastPushSeq: 3, lastSeq: 7 });
    expect(() => new OutboxFile(path)).toThrow(expect.objectContaining({ code: "LL_OUTBOX_FILE" }));
    f.close();
    const g = new OutboxFile(path);
    const p = new Outbox({ maxMessages: 10, maxBytes: 100, overflow: "reject" }, g);
    expect(p.inflight().map((e) => [e.seq, Buffer.from(e.payload).toString(), e.recovered])).toEqual([
      [7, "x", true],
    ]);
    expect(p.unsentCount).toBe(1);
    expect(g.session()).toMatchObject({ id: "s1", lastPushSeq: 3, lastSeq: 7 });
    g.close();
  });
});

/** A connector whose attempts the test settles by hand. */
function manualConnector() {
  const attempts: Array<{ opts: ConnectOptions; resolve: (l: Link) => void; reject: (e: Error) => void }> =
    [];
  const connector: Connector = (opts) =>
    new Promise<Link>((resolve, reject) => {
      attempts.push({ opts, resolve, reject });
      opts.signal?.addEventListener("abort", () => reject(new LifelineError("LL_ABORTED", "aborted")));
    });
  const link = (address: string): Link & { destroyed: boolean } => {
    const l = {
      address,
      destroyed: false,
      welcome: {} as Link["welcome"],
      connectTime: 1,
      isOpen: true,
      send: () => true,
      close() {},
      destroy() {
        l.destroyed = true;
      },
      start() {},
      on: () => l,
    };
    return l;
  };
  return { attempts, connector, link };
}

describe("dial", () => {
  const req = (candidates: string[], mode: "race" | "sequential" = "race") => ({
    candidates,
    hello: { role: "client" as const },
    timeoutFor: () => 5000,
    mode,
    raceDelay: 250,
    maxParallel: 2,
  });

  it("races: the next server after raceDelay, the first WELCOME wins, the others are aborted", async () => {
    const clock = new FakeClock();
    const m = manualConnector();
    const p = dial(req(["a", "b", "c"]), m.connector, clock);
    expect(m.attempts.map((a) => a.opts.address)).toEqual(["a"]);
    await clock.advance(249);
    expect(m.attempts).toHaveLength(1);
    await clock.advance(1);
    expect(m.attempts.map((a) => a.opts.address)).toEqual(["a", "b"]);
    await clock.advance(1000);
    expect(m.attempts).toHaveLength(2); // maxParallel
    m.attempts[1]!.resolve(m.link("b"));
    const { link } = await p;
    expect(link.address).toBe("b");
    expect(m.attempts[0]!.opts.signal?.aborted).toBe(true);
  });

  it("a server whose TCP is up gets 4 x raceDelay before the next is raced", async () => {
    const clock = new FakeClock();
    const m = manualConnector();
    void dial(req(["a", "b"]), m.connector, clock).catch(() => {});
    m.attempts[0]!.opts.onTcpConnect?.();
    await clock.advance(999);
    expect(m.attempts).toHaveLength(1);
    await clock.advance(1);
    expect(m.attempts).toHaveLength(2);
  });

  it("a failure starts the next at once; when all fail, NoServerError lists them", async () => {
    const clock = new FakeClock();
    const m = manualConnector();
    const p = dial(req(["a", "b"], "sequential"), m.connector, clock);
    await clock.advance(10_000);
    expect(m.attempts).toHaveLength(1); // sequential: never overlaps
    m.attempts[0]!.reject(new LifelineError("LL_CONNECT_FAILED", "refused"));
    await clock.settle();
    expect(m.attempts.map((a) => a.opts.address)).toEqual(["a", "b"]);
    m.attempts[1]!.reject(new LifelineError("LL_TIMEOUT", "slow"));
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoServerError);
    expect((err as NoServerError).failures.map((f) => f.address)).toEqual(["a", "b"]);
  });

  it("ConnectTimeouts: the configured timeout first, then SRTT + 4 RTTVAR, at least min; doubles on timeouts", () => {
    const t = new ConnectTimeouts(5000, 500);
    expect(t.timeoutFor("a")).toBe(5000);
    t.sample("a", 2);
    expect(t.timeoutFor("a")).toBe(500);
    t.sample("b", 400);
    expect(t.timeoutFor("b")).toBe(1200); // 400 + 4 x 200
    t.timedOut("b");
    expect(t.timeoutFor("b")).toBe(2400);
  });
});
