import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/config/resolve.ts";
import { HealthEngine } from "../../src/health/engine.ts";
import { defaultRegistry } from "../../src/health/probes/index.ts";
import { HookDispatcher } from "../../src/hooks/dispatcher.ts";
import type { Notification } from "../../src/hooks/notification.ts";
import { type HookInput, parseHooks } from "../../src/hooks/schema.ts";
import { reach, receiver, until } from "./helpers.ts";

/**
 * Hooks behind a real engine on the real clock: tcp checks of a loopback server every
 * 200 ms, a command hook and a webhook receiving the engine's state changes.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** Appends the notification on stdin (one JSON line) to $OUT. */
const APPEND_STDIN = `
const fs = require("node:fs");
let input = "";
process.stdin.on("data", (c) => { input += c; });
process.stdin.on("end", () => fs.appendFileSync(process.env.OUT, input));
`;

/** A TCP server on 127.0.0.1 that can be closed and opened again on the same port. */
async function switchableServer() {
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  let port = 0;
  const open = async () => {
    for (let tries = 0; ; tries++) {
      const s = net.createServer((sock) => {
        sockets.add(sock);
        sock.on("error", () => {});
        sock.on("close", () => sockets.delete(sock));
      });
      try {
        await new Promise<void>((resolve, reject) => {
          s.once("error", reject);
          s.listen(port, "127.0.0.1", () => resolve());
        });
        server = s;
        port = (s.address() as net.AddressInfo).port;
        return;
      } catch (err) {
        if (tries >= 20) throw err; // EADDRINUSE for a whole second: give up
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  const close = () =>
    new Promise<void>((resolve) => {
      if (!server) return resolve();
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
      server = undefined;
    });
  await open();
  return { port: () => port, open, close };
}

function engineFor(address: string): HealthEngine {
  const registry = defaultRegistry();
  const config = resolveConfig(
    {
      profile: "lan",
      defaults: { interval: "200ms", fastInterval: "100ms", downBackoffCap: "200ms" },
      targets: [{ id: "db", address }],
    },
    registry,
  );
  const engine = new HealthEngine(config, { registry });
  cleanups.push(() => engine.stop());
  return engine;
}

function readLines(file: string): Notification[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Notification);
}

async function fixture(extra: Partial<HookInput>) {
  const dir = mkdtempSync(join(tmpdir(), "lifeline-hooks-e2e-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, "runs.jsonl");
  const web = await receiver();
  cleanups.push(() => web.close());
  const tcp = await switchableServer();
  cleanups.push(() => tcp.close());
  const dispatcher = new HookDispatcher(
    parseHooks([
      { name: "cmd", command: [process.execPath, "-e", APPEND_STDIN], env: { OUT: out }, ...extra },
      { name: "web", webhook: web.url, backoff: { base: "20ms", cap: "200ms" }, ...extra },
    ]),
    { monitor: "e2e" },
  );
  cleanups.push(async () => {
    await dispatcher.stop(2000);
  });
  const engine = engineFor(`127.0.0.1:${tcp.port()}`);
  engine.on("state", (t) => dispatcher.notify(t));
  return {
    tcp,
    engine,
    dispatcher,
    commands: () => readLines(out),
    posts: () => web.delivered() as Notification[],
    requests: () => web.requests.length,
  };
}

describe("hooks behind a real engine", () => {
  it("a server that dies: one command run and one POST for its down transition", async () => {
    const f = await fixture({ to: ["down", "healthy"] });
    const healthy = reach(f.engine, "db", "healthy");
    f.engine.start();
    await healthy; // unknown → healthy: the initial change, not notified by default

    const down = reach(f.engine, "db", "down");
    await f.tcp.close();
    const t = await down;
    await until(() => f.commands().length >= 1 && f.posts().length >= 1, 15_000, "the down notification");
    await f.engine.stop();
    expect(await f.dispatcher.stop(15_000)).toEqual({ unfinished: 0 });

    const expected = {
      event: "state",
      target: "db",
      from: t.from,
      to: "down",
      at: new Date(t.at).toISOString(),
      reason: t.reason,
      kind: "refused",
      errno: "ECONNREFUSED",
      monitor: "e2e",
    };
    expect(t.from).not.toBe("unknown");
    expect(f.commands()).toEqual([expected]);
    expect(f.posts()).toEqual([expected]);
    expect(f.requests()).toBe(1);
    expect(f.dispatcher.stats()).toEqual({ sent: 2, failed: 0, retries: 0, dropped: 0, suppressed: 0 });
  });

  it("a flapping server: one 'flapping' notice instead of a notification per change, then 'stable'", async () => {
    const f = await fixture({
      to: ["down", "healthy"],
      flap: { window: "1m", threshold: 3, quiet: "1500ms" },
    });
    const healthy = reach(f.engine, "db", "healthy");
    f.engine.start();
    await healthy;

    for (let cycle = 0; cycle < 3; cycle++) {
      const down = reach(f.engine, "db", "down");
      await f.tcp.close();
      await down;
      const up = reach(f.engine, "db", "healthy");
      await f.tcp.open();
      await up;
    }
    // 6 notifiable changes (3 × down, 3 × healthy); the third made it flapping
    const stable = (ns: Notification[]) => ns.some((n) => n.event === "stable");
    await until(() => stable(f.posts()) && stable(f.commands()), 20_000, "the stable notice");
    await f.engine.stop();
    await f.dispatcher.stop(15_000);

    for (const got of [f.posts(), f.commands()]) {
      expect(got.map((n) => `${n.event}:${n.to}`)).toEqual([
        "state:down",
        "state:healthy",
        "flapping:down",
        "stable:healthy",
      ]);
      expect(got[2]!.reason).toMatch(/^flapping: 3 changes within 1 minute;/);
      expect(got[3]).toMatchObject({ from: "down", to: "healthy", target: "db", monitor: "e2e" });
    }
    const byHook = f.dispatcher.statsByHook();
    expect(byHook.web).toEqual({ sent: 4, failed: 0, retries: 0, dropped: 0, suppressed: 3 });
    expect(byHook.cmd).toEqual({ sent: 4, failed: 0, retries: 0, dropped: 0, suppressed: 3 });
  });
});
