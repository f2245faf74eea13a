import { describe, expect, it } from "vitest";
import type { ConnectOptions } from "../../src/client/connection.ts";
import {
  type AttemptFailure,
  ConnectTimeouts,
  type DialRequest,
  dial,
  NoServerError,
} from "../../src/client/dialer.ts";
import type { Connector, Link } from "../../src/client/link.ts";
import { LifelineError, TimeoutError } from "../../src/errors.ts";
import { FakeClock } from "../../src/util/fake-clock.ts";

interface Attempt {
  opts: ConnectOptions;
  at: number;
  settled: boolean;
  aborted: boolean;
  resolve(): FakeDialLink;
  reject(err: Error): void;
}

type FakeDialLink = Link & { destroyed: boolean; closed: boolean };

function fakeLink(address: string): FakeDialLink {
  const l: FakeDialLink = {
    address,
    destroyed: false,
    closed: false,
    welcome: {
      type: "welcome",
      version: 1,
      nodeId: `node@${address}`,
      sessionId: "s",
      resumeToken: "t",
      resumed: false,
      lastClientSeq: 0,
      epoch: 1,
      heartbeat: 0,
      maxFrame: 1 << 20,
      sessionTtl: 60_000,
    },
    connectTime: 1,
    get isOpen() {
      return !l.destroyed && !l.closed;
    },
    send: () => true,
    close() {
      l.closed = true;
    },
    destroy() {
      l.destroyed = true;
    },
    start() {},
    on: () => l,
  };
  return l;
}

/**
 * A connector whose attempts the test settles by hand. `honorAbort: false` makes attempts
 * ignore their signal (a connect that completes anyway), to test late winners.
 */
function manualConnector(clock: FakeClock, opts: { honorAbort?: boolean; timeouts?: boolean } = {}) {
  const attempts: Attempt[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const connector: Connector = (o) =>
    new Promise<Link>((resolve, reject) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const a: Attempt = {
        opts: o,
        at: clock.now(),
        settled: false,
        aborted: false,
        resolve() {
          const l = fakeLink(o.address);
          if (!a.settled) {
            a.settled = true;
            inFlight--;
          }
          timer?.cancel();
          resolve(l);
          return l;
        },
        reject(err) {
          if (!a.settled) {
            a.settled = true;
            inFlight--;
          }
          timer?.cancel();
          reject(err);
        },
      };
      const timer = opts.timeouts
        ? clock.timeout(o.timeout, () => a.reject(new TimeoutError(`${o.address} timed out`, o.timeout)))
        : undefined;
      o.signal?.addEventListener("abort", () => {
        a.aborted = true;
        if (opts.honorAbort !== false) a.reject(new LifelineError("LL_ABORTED", "connect aborted"));
      });
      attempts.push(a);
    });
  return {
    attempts,
    connector,
    addresses: () => attempts.map((a) => a.opts.address),
    get inFlight() {
      return inFlight;
    },
    get maxInFlight() {
      return maxInFlight;
    },
  };
}

const req = (candidates: string[], over: Partial<DialRequest> = {}): DialRequest => ({
  candidates,
  hello: { role: "client" },
  timeoutFor: () => 5000,
  mode: "race",
  raceDelay: 250,
  maxParallel: 3,
  ...over,
});

const refused = (a: string) => new LifelineError("LL_CONNECT_FAILED", `${a}: ECONNREFUSED`);

describe("dial(): race", () => {
  it("starts the first at once and the second exactly after raceDelay", async () => {
    const clock = new FakeClock();
    const m = manualConnector(clock);
    void dial(req(["a", "b", "c"]), m.connector, clock).catch(() => {});
    expect(m.addresses()).toEqual(["a"]);
    await clock.advance(249);
    expect(m.addresses()).toEqual(["a"]);
    await clock.advance(1);
    expect(m.addresses()).toEqual(["a", "b"]);
    expect(m.attempts[1]!.at).toBe(250);
    await clock.advance(250);
    expect(m.addresses()).toEqual(["a", "b", "c"]);
    expect(m.attempts[2]!.at).toBe(500);
  });

  it("passes the hello through, with each server's own timeout", async () => {
    const clock = new FakeClock();
    const m = manualConnector(clock);
    const timeouts: Record<string, number> = { a: 700, b: 1300 };
    void dial(
      req(["a", "b"], {
        hello: { role: "client", heartbeat: 500, name: "me" },
        timeoutFor: (a) => timeouts[a]!,
      }),
      m.connector,
      clock,
    ).catch(() => {});
    await clock.advance(250);
    expect(m.attempts.map((a) => [a.opts.address, a.opts.timeout, a.opts.heartbeat, a.opts.name])).toEqual([
      ["a", 700, 500, "me"],
      ["b", 1300, 500, "me"],
    ]);
    expect(m.attempts[0]!.opts.clock).toBe(clock);
  });

  it("a failure starts the next at once, without waiting for raceDelay", async () => {
    const clock = new FakeClock();
    const m = manualConnector(clock);
    void dial(req(["a", "b", "c"]), m.connector, clock).catch(() => {});
    await clock.advance(10);
    m.attempts[0]!.reject(refused("a"));
    await clock.settle();
    expect(m.addresses()).toEqual(["a", "b"]);
    expect(m.attempts[1]!.at).toBe(10);
    // ...and the race timer restarts from the failure: c comes raceDelay after b.
    await clock.advance(249);
    expect(m.addresses()).toEqual(["a", "b"]);
    await clock.advance(1);
    expect(m.addresses()).toEqual(["a", "b", "c"]);
  });

  it("never has more than maxParallel attempts in flight", async () => {
    const clock = new FakeClock();
    const m = manualConnector(clock);
    const candidates = ["a", "b", "c", "d", "e", "f"];
    void dial(req(candidates, { maxParallel: 2 }), m.connector, clock).catch(() => {});
    await clock.advance(5000);
    expect(m.addresses()).toEqual(["a", "b"]);
    expect(m.inFlight).toBe(2);
    m.attempts[0]!.reject(refused("a"));
    await clock.settle();
    expect(m.addresses()).toEqual(["a", "b", "c"]); // the freed slot is used at once
    await clock.advance(5000);
    expect(m.addresses()).toEqual(["a", "b", "c"]);
    m.attempts[1]!.reject(refused("b"));
    m.attempts[2]!.reject(refused("c"));
    await clock.advance(5000);
    expect(m.maxInFlight).toBe(2);
  });

  it("the first WELCOME wins; the others are aborted (their signals fire)", async () => {
    const clock = new FakeClock();
    const m = manualConnector(clock);
    const failures: AttemptFailure[] = [];
    const p = dial(req(["a", "b", "c"], { onFailure: (f) => failures.push(f) }), m.connector, clock);
    await clock.advance(500);
    expect(m.addresses()).toEqual(["a", "b", "c"]);
    const won = m.attempts[1]!.resolve();
    const { link, failures: before } = await p;
    expect(link).toBe(won);
    expect(before).toEqual([]);
    expect(m.attempts[0]!.opts.signal?.aborted).toBe(true);
    expect(m.attempts[2]!.opts.signal?.aborted).toBe(true);
    expect(m.attempts[1]!.opts.signal?.aborted).toBe(false);
    // The losers' LL_ABORTED rejections are not reported as failures.
    await clock.settle();
    expect(failures).toEqual([]);
    // Nothing more is started after the win.
    await clock.advance(5000);
    expect(m.attempts).toHaveLength(3);
    expect(clock.pendingTimers()).toBe(0);
  });

  it("resolves with the failures that came before the winner", async () => {
    const clock = new FakeClock();
    const m = manualConnector(clock);
    const p = dial(req(["a", "b"]), m.connector, clock);
    await clock.advance(40);
    m.attempts[0]!.reject(refused("a"));
    await clock.settle();
    m.attempts[1]!.resolve();
    const r = await p;
    expect(r.failures.map((f) => [f.address, f.error.code, f.took])).toEqual([
      ["a", "LL_CONNECT_FAILED", 40],
    ]);
    expect(r.link.address).toBe("b");
  });

  it("a late winner (its connect completed despite the abort) is destroyed, not leaked", async () => {
    const clock = new FakeClock();
    const m = manualConnector(clock, { honorAbort: false });
    const p = dial(req(["a", "b"]), m.connector, clock);
    await clock.advance(250);
    const winner = m.attempts[0]!.resolve();
    await p;
    expect(m.attempts[1]!.aborted).toBe(true);
    const late = m.attempts[1]!.resolve();
    await clock.settle();
    expect(late.destroyed).toBe(true);
    expect(winner.destroyed).toBe(false);
  });

  it("a late failure after the win changes nothing", async () => {
    const clock = new FakeClock();
    const m = manualConnector(clock, { honorAbort: false });
    const failures: AttemptFailure[] = [];
    const p = dial(req(["a", "b"], { onFailure: (f) => failures.push(f) }), m.connector, clock);
    await clock.advance(250);
    m.attempts[1]!.resolve();
    await p;
    m.attempts[0]!.reject(refused("a"));
    await clock.settle();
    expect(failures).toEqual([]);
  });

  it("a pending attempt whose TCP is up gets 4 x raceDelay before the next is raced", async () => {
    const clock = new FakeClock();
    const m = manualConnector(clock);
    void dial(req(["a", "b", "c"]), m.connector, clock).catch(() => {});
    m.attempts[0]!.opts.onTcpConnect?.();
    await clock.advance(999);
    expect(m.addresses()).toEqual(["a"]);
    await clock.advance(1);
    expect(m.addresses()).toEqual(["a", "b"]);
    // b's TCP never comes up: c follows after the plain raceDelay.
    await clock.advance(250);
    expect(m.addresses()).toEqual(["a", "b", "c"]);
  });
});

describe("dial(): sequential", () => {
  it("never overlaps: the next starts only when the previous failed (here: timed out)", async () => {
    const clock = new FakeClock();
    const m = manualConnector(clock, { timeouts: true });
    const p = dial(
      req(["a", "b", "c"], { mode: "sequential", timeoutFor: () => 1000, maxParallel: 3 }),
      m.connector,
      clock,
    );
    const err = p.catch((e: unknown) => e);
    await clock.advance(999);
    expect(m.addresses()).toEqual(["a"]);
    await clock.advance(1);
    expect(m.addresses()).toEqual(["a", "b"]);
    expect(m.attempts[1]!.at).toBe(1000);
    await clock.advance(2000);
    expect(m.addresses()).toEqual(["a", "b", "c"]);
    expect(m.attempts[2]!.at).toBe(2000);
    expect(m.maxInFlight).toBe(1);
    const e = (await err) as NoServerError;
    expect(e).toBeInstanceOf(NoServerError);
    expect(e.failures.map((f) => [f.address, f.error.code, f.took])).toEqual([
      ["a", "LL_TIMEOUT", 1000],
      ["b", "LL_TIMEOUT", 1000],
      ["c", "LL_TIMEOUT", 1000],
    ]);
  });

  it("the first to answer wins and the rest are never tried", async () => {
    const clock = new FakeClock();
    const m = manualConnector(clock);
    const p = dial(req(["a", "b"], { mode: "sequential" }), m.connector, clock);
    await clock.advance(100);
    m.attempts[0]!.resolve();
    expect((await p).link.address).toBe("a");
    await clock.advance(10_000);
    expect(m.addresses()).toEqual(["a"]);
  });
});

describe("dial(): failures and aborts", () => {
  it("NoServerError lists every failure, in the order they happened, and onFailure saw each", async () => {
    const clock = new FakeClock();
    const m = manualConnector(clock);
    const seen: string[] = [];
    const p = dial(
      req(["a", "b", "c"], { onFailure: (f) => seen.push(`${f.address}:${f.error.code}`) }),
      m.connector,
      clock,
    );
    const err = p.catch((e: unknown) => e);
    await clock.advance(500); // all three in flight
    m.attempts[2]!.reject(new LifelineError("LL_DRAINING", "c: draining"));
    m.attempts[0]!.reject(new TimeoutError("a: slow", 5000));
    await clock.advance(30);
    m.attempts[1]!.reject(new Error("something odd")); // not a LifelineError
    const e = (await err) as NoServerError;
    expect(e).toBeInstanceOf(NoServerError);
    expect(e.code).toBe("LL_NO_SERVER");
    expect(e.failures.map((f) => [f.address, f.error.code])).toEqual([
      ["c", "LL_DRAINING"],
      ["a", "LL_TIMEOUT"],
      ["b", "LL_CONNECT_FAILED"], // wrapped, the original kept as cause
    ]);
    expect(e.failures[2]!.error.cause).toBeInstanceOf(Error);
    expect(e.failures.map((f) => f.took)).toEqual([0, 500, 280]); // c began at 500, a at 0, b at 250
    expect(seen).toEqual(["c:LL_DRAINING", "a:LL_TIMEOUT", "b:LL_CONNECT_FAILED"]);
    for (const a of ["a", "b", "c"]) expect(e.message).toContain(a);
    expect(clock.pendingTimers()).toBe(0);
  });

  it("no candidates: NoServerError at once, with no failures", async () => {
    const clock = new FakeClock();
    const m = manualConnector(clock);
    const e = (await dial(req([]), m.connector, clock).catch((x: unknown) => x)) as NoServerError;
    expect(e).toBeInstanceOf(NoServerError);
    expect(e.failures).toEqual([]);
    expect(m.attempts).toHaveLength(0);
  });

  it("the signal aborts the dial with LL_ABORTED, and every attempt in flight", async () => {
    const clock = new FakeClock();
    const m = manualConnector(clock);
    const ac = new AbortController();
    const failures: AttemptFailure[] = [];
    const p = dial(
      req(["a", "b", "c"], { signal: ac.signal, onFailure: (f) => failures.push(f) }),
      m.connector,
      clock,
    );
    const err = p.catch((e: unknown) => e);
    await clock.advance(250);
    ac.abort();
    const e = (await err) as LifelineError;
    expect(e).not.toBeInstanceOf(NoServerError);
    expect(e.code).toBe("LL_ABORTED");
    expect(m.attempts.every((a) => a.opts.signal?.aborted)).toBe(true);
    await clock.advance(5000);
    expect(m.attempts).toHaveLength(2); // nothing started after the abort
    expect(failures).toEqual([]);
    expect(clock.pendingTimers()).toBe(0);
  });

  it("an already aborted signal rejects at once without trying anything", async () => {
    const clock = new FakeClock();
    const m = manualConnector(clock);
    const ac = new AbortController();
    ac.abort();
    const e = (await dial(req(["a"], { signal: ac.signal }), m.connector, clock).catch(
      (x: unknown) => x,
    )) as LifelineError;
    expect(e.code).toBe("LL_ABORTED");
    expect(m.attempts).toHaveLength(0);
  });

  it("an abort after the win changes nothing", async () => {
    const clock = new FakeClock();
    const m = manualConnector(clock);
    const ac = new AbortController();
    const p = dial(req(["a"], { signal: ac.signal }), m.connector, clock);
    const l = m.attempts[0]!.resolve();
    expect((await p).link).toBe(l);
    ac.abort();
    expect(l.destroyed).toBe(false);
  });
});

describe("ConnectTimeouts", () => {
  it("the first attempt gets the configured timeout", () => {
    const t = new ConnectTimeouts(5000, 500);
    expect(t.timeoutFor("a")).toBe(5000);
    expect(t.timeoutFor("never-seen")).toBe(5000);
  });

  // [name, samples (ms), expected timeout]
  const cases: Array<[string, number[], number]> = [
    ["one fast sample: clamped up to min", [2], 500],
    ["one sample of 400: 400 + 4 x 200", [400], 1200],
    ["one slow sample: clamped down to the configured timeout", [3000], 5000],
    // rttvar = 0.75·200 + 0.25·|400−200| = 200; srtt = 0.875·400 + 0.125·200 = 375
    ["400 then 200", [400, 200], 1175],
    // After many equal samples RTTVAR shrinks; the floor (50 ms) stays.
    ["20 samples of 600: SRTT + floor", Array(20).fill(600), 650],
  ];
  it.each(cases)("after samples: %s", (_, samples, expected) => {
    const t = new ConnectTimeouts(5000, 500);
    for (const s of samples) t.sample("a", s);
    expect(t.timeoutFor("a")).toBeCloseTo(expected, 6);
  });

  it("timeouts double (up to the configured timeout); two in a row clear the estimate", () => {
    const t = new ConnectTimeouts(5000, 500);
    t.sample("a", 400);
    expect(t.timeoutFor("a")).toBe(1200);
    t.timedOut("a");
    expect(t.timeoutFor("a")).toBe(2400);
    t.timedOut("a");
    expect(t.timeoutFor("a")).toBe(4800);
    t.timedOut("a");
    expect(t.timeoutFor("a")).toBe(5000);
    // The estimate was cleared: the next answer re-seeds it from scratch.
    t.sample("a", 100);
    expect(t.timeoutFor("a")).toBe(500);
    t.sample("a", 1000);
    expect(t.timeoutFor("a")).toBeGreaterThan(500);
  });

  it("a timeout before any sample keeps the configured timeout (the maximum)", () => {
    const t = new ConnectTimeouts(5000, 500);
    t.timedOut("a");
    expect(t.timeoutFor("a")).toBe(5000);
  });

  it("keeps one estimate per server", () => {
    const t = new ConnectTimeouts(5000, 500);
    t.sample("a", 400);
    t.sample("b", 2);
    t.timedOut("c");
    expect([t.timeoutFor("a"), t.timeoutFor("b"), t.timeoutFor("c")]).toEqual([1200, 500, 5000]);
  });

  it("a min above the configured timeout is lowered to it", () => {
    const t = new ConnectTimeouts(300, 500);
    expect(t.timeoutFor("a")).toBe(300);
    t.sample("a", 2);
    expect(t.timeoutFor("a")).toBe(300);
  });
});
