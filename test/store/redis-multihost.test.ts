import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { createLan, type Lan } from "../fault/lan.ts";
import { canUseNamespaces } from "../fault/netns.ts";
import type { ChildHandle } from "../fault/process.ts";
import { measureConnects } from "../fault/servers.ts";

/**
 * The multi-host test: three nodes, each on its own "machine" (a namespace on a
 * bridge), Redis on a fourth, a client at the root of the test topology (the hub). The
 * client publishes a numbered stream of messages; meanwhile the link of the node it is on
 * is cut (its packets vanish: no refusal, no FIN), and later the node it moved to is
 * SIGKILLed. Every message must be acknowledged, and the topic must hold each exactly once,
 * in order.
 */
const root = fileURLToPath(new URL("../../", import.meta.url));
const hasRedis = spawnSync("redis-server", ["--version"], { encoding: "utf8" }).status === 0;
const skip =
  canUseNamespaces() ??
  (hasRedis ? undefined : "redis-server is not installed (apt-get install redis-server)");
if (skip) console.log(`skipping the multi-host Redis test: ${skip}`);

const MESSAGES = 300;
const NODE_PORT = 7000;
const REDIS_PORT = 6379;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

describe.skipIf(skip !== undefined)("a cluster across hosts on a shared Redis", () => {
  let lan: Lan | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await lan?.destroy();
    lan = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it("a client keeps going through a cut link and a killed node: nothing lost, nothing duplicated", async () => {
    lan = await createLan(["n1", "n2", "n3", "redis"]);
    const net = lan;
    dir = mkdtempSync(join(tmpdir(), "lifeline-multihost-"));
    const redisHost = net.host("redis");
    redisHost.ns.spawn(
      "redis-server",
      ["--bind", "0.0.0.0", "--port", String(REDIS_PORT), "--protected-mode", "no", "--save", ""],
      { name: "redis-server", cwd: dir },
    );
    let up = false;
    for (let i = 0; i < 100 && !up; i++) {
      up = (await measureConnects(net.hub, REDIS_PORT, { host: redisHost.address, timeout: 500 }))[0]!.ok;
      if (!up) await sleep(100);
    }
    expect(up).toBe(true);
    const store = `redis://${redisHost.address}:${REDIS_PORT}/0`;

    const names = ["n1", "n2", "n3"];
    const addressOf = (n: string) => `${net.host(n).address}:${NODE_PORT}`;
    const nodes = new Map<string, ChildHandle>();
    for (const id of names) {
      const peers = names.filter((p) => p !== id).map(addressOf);
      const handle = net
        .host(id)
        .ns.spawn(
          process.execPath,
          [
            "bin/lifeline.js",
            "node",
            "--id",
            id,
            "--host",
            "0.0.0.0",
            "--port",
            String(NODE_PORT),
            "--advertise",
            addressOf(id),
            "--peers",
            peers.join(","),
            "--store",
            store,
            "--app",
            "pubsub",
            "--no-admin",
            "--log-level",
            "warn",
          ],
          { name: `node ${id}`, cwd: root },
        );
      nodes.set(id, handle);
    }
    for (const [id, h] of nodes) {
      await h.waitForJson((o) => o.type === "listening", { timeout: 30_000, what: `node ${id} listening` });
    }

    const servers = names.map(addressOf).join(",");
    const client = net.hub.spawn(
      process.execPath,
      [
        "bin/lifeline.js",
        "client",
        "--servers",
        servers,
        "--publish",
        "t",
        "--json",
        "--name",
        "multihost",
        "--flush-timeout",
        "60000",
      ],
      { name: "client", cwd: root, stdin: "pipe" },
    );
    const connected = await client.waitForJson<{ node: string }>((o) => o.type === "connected", {
      timeout: 30_000,
      what: "the client to connect",
    });
    const stdin = client.proc.stdin!;
    const writing = (async () => {
      for (let i = 1; i <= MESSAGES; i++) {
        stdin.write(`m${i}\n`);
        await sleep(15);
      }
    })();

    // Cut the link of the node the client is on, once a third has been published.
    const published = () => client.json.filter((o) => o.type === "published").length;
    const until = async (cond: () => boolean, ms: number, what: string) => {
      const end = Date.now() + ms;
      while (!cond()) {
        if (Date.now() > end) throw new Error(`${what} not met within ${ms} ms\n${client.tail()}`);
        await sleep(20);
      }
    };
    await until(() => published() >= MESSAGES / 3, 30_000, "a third published");
    const first = connected.node;
    const cutAt = client.json.length;
    await net.cut(first);
    const moved = await client.waitForJson<{ to: string }>((o) => o.type === "failover", {
      timeout: 30_000,
      since: cutAt,
      what: `the client to leave ${first} after its link was cut`,
    });
    const second = moved.to;
    expect(second).not.toBe(first);
    expect(names).toContain(second);

    // Then kill the node it moved to.
    await until(() => published() >= (MESSAGES * 2) / 3, 30_000, "two thirds published");
    const killAt = client.json.length;
    nodes.get(second)!.kill();
    const movedAgain = await client.waitForJson<{ to: string }>((o) => o.type === "failover", {
      timeout: 30_000,
      since: killAt,
      what: `the client to leave ${second} after it was killed`,
    });
    const third = names.find((n) => n !== first && n !== second)!;
    expect(movedAgain.to).toBe(third);

    await writing;
    stdin.end();
    const exit = await Promise.race([client.exited, sleep(90_000).then(() => undefined)]);
    expect(exit, client.tail()).toEqual({ code: 0, signal: null });
    const acks = client.json.filter((o) => o.type === "published").map((o) => o.n as number);
    expect(acks.sort((a, b) => a - b)).toEqual(Array.from({ length: MESSAGES }, (_, i) => i + 1));
    expect(client.json.filter((o) => o.type === "failed" || o.type === "session-lost")).toEqual([]);

    // The topic, read back through the surviving node: each message once, in order.
    const reader = net.hub.spawn(
      process.execPath,
      [
        "bin/lifeline.js",
        "client",
        "--servers",
        addressOf(third),
        "--subscribe",
        "t",
        "--from",
        "0",
        "--json",
      ],
      { name: "reader", cwd: root },
    );
    const entries = () => reader.json.filter((o) => o.type === "entry");
    const end = Date.now() + 30_000;
    while (entries().length < MESSAGES && Date.now() < end && !reader.exit) await sleep(50);
    await sleep(300); // anything beyond MESSAGES would be a duplicate: give it time to show
    await reader.stop();
    expect(entries().map((o) => o.data)).toEqual(Array.from({ length: MESSAGES }, (_, i) => `m${i + 1}`));
    expect(entries().map((o) => o.offset)).toEqual(Array.from({ length: MESSAGES }, (_, i) => i + 1));
  }, 180_000);
});
