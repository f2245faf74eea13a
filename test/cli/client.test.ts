import { Readable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { runClient } from "../../src/cli/client.ts";
import { main } from "../../src/cli/main.ts";
import { pubsubApp } from "../../src/node/apps/pubsub.ts";
import { TestCluster } from "../support/cluster.ts";
import { memoryIO } from "../support/io.ts";
import { closedPort } from "../support/servers.ts";

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function cluster(n: number, opts: Parameters<typeof TestCluster.start>[1] = {}) {
  const c = await TestCluster.start(n, opts);
  cleanups.push(() => c.close());
  return c;
}

const lines = (text: string) => Readable.from([text]);

describe("lifeline client", () => {
  it("sends stdin lines and prints the replies in order; exit 0", async () => {
    const c = await cluster(2);
    const io = memoryIO();
    const input = Array.from({ length: 50 }, (_, i) => `line ${i}`).join("\n");
    const code = await runClient({ servers: c.addresses.join(",") }, io, lines(`${input}\n`));
    expect(code).toBe(0);
    expect(io.out().trim().split("\n")).toEqual(Array.from({ length: 50 }, (_, i) => `line ${i}`));
    expect(io.err()).toMatch(/connected to n\d/);
  });

  it("--json: replies and connection events as JSON lines", async () => {
    const c = await cluster(1);
    const io = memoryIO();
    const code = await runClient({ servers: c.addresses[0]!, json: true }, io, lines("a\nb\n"));
    expect(code).toBe(0);
    const out = io
      .out()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string; data?: string });
    expect(out[0]).toMatchObject({ type: "connected", node: "n1", resumed: false });
    expect(out.filter((o) => o.type === "reply").map((o) => o.data)).toEqual(["a", "b"]);
  });

  it("--publish: each line is published to the topic (pubsub app)", async () => {
    const c = await cluster(1, { app: pubsubApp });
    const io = memoryIO();
    const code = await runClient({ servers: c.addresses[0]!, publish: "t" }, io, lines("x\ny\n"));
    expect(code).toBe(0);
    expect(io.err()).toMatch(/published #2/);
    const entries = await c.store.readTopic("t", 0, 10);
    expect(entries.map((e) => Buffer.from(e.payload).toString())).toEqual(["x", "y"]);
  });

  it("with no server reachable, reports what was not sent and exits 1", async () => {
    const port = await closedPort();
    const io = memoryIO();
    const started = Date.now();
    const closing = runClient({ servers: `127.0.0.1:${port}`, flushTimeout: "300" }, io, lines("lost?\n"));
    // stdin ends at once; close() waits --flush-timeout for a server, then gives up.
    const code = await closing;
    expect(code).toBe(1);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(io.err()).toMatch(/1 unsent and 0 unacknowledged/);
    expect(io.err()).toMatch(/#1 failed/);
  });

  it("rejects bad flags with a usage error (exit 3)", async () => {
    const io = memoryIO();
    expect(await main(["client", "--servers", "nope"], io)).toBe(3);
    expect(io.err()).toMatch(/not host:port/);
    expect(await main(["client", "--servers", "127.0.0.1:1", "--publish", "a", "--subscribe", "b"], io)).toBe(
      3,
    );
  });
});
