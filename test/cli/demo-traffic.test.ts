import { EventEmitter } from "node:events";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { quantile, Traffic } from "../../src/cli/demo-traffic.ts";
import type { LifelineClient } from "../../src/client/client.ts";

/** A client whose replies the test gives by hand. */
class FakeClient extends EventEmitter {
  readonly calls: { payload: string; resolve: (r: string) => void; reject: (e: Error) => void }[] = [];
  send(payload: string): Promise<Uint8Array> {
    return new Promise((resolve, reject) =>
      this.calls.push({ payload, resolve: (r) => resolve(Buffer.from(r)), reject }),
    );
  }
}

const flush = () => new Promise((r) => setImmediate(r));

describe("demo traffic accounting", () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] }));
  afterEach(() => vi.useRealTimers());

  function setup(maxInFlight = 10) {
    const client = new FakeClient();
    const traffic = new Traffic(client as unknown as LifelineClient, { rate: 10, maxInFlight, prefix: "t" });
    traffic.start();
    return { client, traffic };
  }

  it("sends unique ids at the rate, a bounded number in flight", async () => {
    const { client, traffic } = setup(3);
    vi.advanceTimersByTime(1000);
    expect(client.calls.map((c) => c.payload)).toEqual(["t-0", "t-1", "t-2"]);
    client.calls[0]!.resolve("t-0");
    await flush();
    vi.advanceTimersByTime(100);
    expect(client.calls.map((c) => c.payload)).toEqual(["t-0", "t-1", "t-2", "t-3"]);
    expect(traffic.counters()).toMatchObject({ sent: 4, acknowledged: 1, pending: 3, lost: 0 });
    traffic.stop();
  });

  it("counts a second reply, or a reply for a message never sent, as duplicated", async () => {
    const { client, traffic } = setup();
    vi.advanceTimersByTime(300);
    traffic.stop();
    const [a, b, c] = client.calls;
    a!.resolve("t-0");
    b!.resolve("t-0"); // t-0 answered twice; t-1 never
    c!.resolve("t-99"); // never sent
    await flush();
    expect(traffic.counters()).toMatchObject({
      sent: 3,
      acknowledged: 1,
      duplicated: 2,
      mismatched: 2,
      pending: 2,
    });
    expect(traffic.final()).toMatchObject({ lost: 2, pending: 0 });
  });

  it("counts failed sends as lost at once, and unanswered ones as lost at the end", async () => {
    const { client, traffic } = setup();
    vi.advanceTimersByTime(300);
    traffic.stop();
    client.calls[0]!.reject(new Error("session lost"));
    client.calls[1]!.resolve("t-1");
    await flush();
    expect(traffic.counters()).toMatchObject({ sent: 3, acknowledged: 1, lost: 1, pending: 1 });
    expect(traffic.final()).toMatchObject({ sent: 3, acknowledged: 1, lost: 2, duplicated: 0 });
  });

  it("keeps the client's failover times", () => {
    const { client, traffic } = setup();
    client.emit("failover", { from: "n1", to: "n2", took: 40 });
    client.emit("failover", { from: "n2", to: "n3", took: 10 });
    traffic.stop();
    const { failovers } = traffic.counters();
    expect(failovers).toEqual([40, 10]);
    expect(quantile(failovers, 0.5)).toBe(10);
    expect(quantile(failovers, 0.99)).toBe(40);
    expect(quantile([], 0.5)).toBeUndefined();
  });
});
