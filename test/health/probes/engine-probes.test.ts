import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { afterEach, describe, expect, it } from "vitest";
import { resolveConfig } from "../../../src/config/resolve.ts";
import { HealthEngine } from "../../../src/health/engine.ts";
import { defaultRegistry } from "../../../src/health/probes/index.ts";
import type { TargetState, Transition } from "../../../src/health/types.ts";
import { listen, makeCert } from "./helpers.ts";

/**
 * The new probe kinds through the whole engine, on the real clock with short intervals:
 * configuration → probe → detector → target state and its reason.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function engineFor(targets: unknown[]): HealthEngine {
  const registry = defaultRegistry();
  const config = resolveConfig(
    { profile: "lan", defaults: { interval: "200ms", fastInterval: "100ms" }, targets },
    registry,
  );
  const engine = new HealthEngine(config, { registry });
  cleanups.push(() => engine.stop());
  return engine;
}

/** Resolves with the transition that brings `target` to `state` (watching from now). */
function reach(
  engine: HealthEngine,
  target: string,
  state: TargetState,
  within = 15_000,
): Promise<Transition> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      engine.off("state", on);
      const now = engine.target(target);
      reject(new Error(`${target} did not become ${state}; it is ${now?.state}: ${now?.reason}`));
    }, within);
    const on = (t: Transition) => {
      if (t.target !== target || t.to !== state) return;
      clearTimeout(timer);
      engine.off("state", on);
      resolve(t);
    };
    engine.on("state", on);
  });
}

describe("new probe kinds through the engine", () => {
  it("http: a server answering 500 makes the target down, and the reason says 500", async () => {
    const s = await listen(
      http.createServer((_req, res) => {
        res.writeHead(500);
        res.end("internal error");
      }),
    );
    cleanups.push(s.close);
    const engine = engineFor([{ id: "web", address: `http://127.0.0.1:${s.port}/health` }]);
    const down = reach(engine, "web", "down");
    engine.start();
    const t = await down;
    expect(t.reason).toContain("500");
    expect(t.reason).toContain("HTTP 500 Internal Server Error");
    expect(t.kind).toBe("protocol");
  });

  it("tls: a certificate expiring in 3 days makes the target degraded", async () => {
    const cert = makeCert({ days: 3 });
    cleanups.push(cert.remove);
    const s = await listen(tls.createServer({ key: cert.key, cert: cert.cert }, (sock) => sock.resume()));
    cleanups.push(s.close);
    const engine = engineFor([
      { id: "tls-ca", checks: [{ type: "tls", address: `127.0.0.1:${s.port}`, ca: cert.certFile }] },
      { id: "tls-insecure", address: `tls://localhost:${s.port}?insecure=true` },
    ]);
    const degraded = [reach(engine, "tls-ca", "degraded"), reach(engine, "tls-insecure", "degraded")];
    engine.start();
    for (const t of await Promise.all(degraded)) {
      expect(t.reason).toMatch(/certificate expires in [23] days/);
      expect(t.kind).toBe("tls");
    }
  });

  it("exec: exit 1 makes the target degraded, exit 2 makes it down", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lifeline-engine-exec-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const codeFile = join(dir, "code");
    writeFileSync(codeFile, "1");
    const engine = engineFor([
      {
        id: "script",
        checks: [{ type: "exec", command: `code=$(cat ${codeFile}); echo "status $code"; exit $code` }],
      },
    ]);
    const degraded = reach(engine, "script", "degraded");
    engine.start();
    expect((await degraded).reason).toContain("exit 1: status 1");
    const down = reach(engine, "script", "down");
    writeFileSync(codeFile, "2");
    expect((await down).reason).toContain("exit 2: status 2");
  });

  it("ttl: down when no report arrives, healthy again after engine.report", async () => {
    const engine = engineFor([{ id: "svc", checks: [{ type: "ttl", name: "heartbeat", ttl: "300ms" }] }]);
    const down = reach(engine, "svc", "down");
    engine.start();
    const t = await down;
    expect(t.kind).toBe("timeout");
    expect(t.reason).toContain("heartbeat");
    const healthy = reach(engine, "svc", "healthy");
    expect(engine.report("svc", "heartbeat", "pass", "all good")).toBe(true);
    await healthy;
    expect(engine.target("svc")?.checks[0]?.last?.message).toBe("all good");
    const degraded = reach(engine, "svc", "degraded");
    engine.report("svc", "heartbeat", "warn", "queue backing up");
    expect((await degraded).reason).toContain("queue backing up");
    expect(engine.report("svc", "nope", "pass")).toBe(false);
  });
});
