import { afterEach, describe, expect, it } from "vitest";
import { isLoopback, startAdmin } from "../../src/admin/server.ts";
import { resolveConfig } from "../../src/config/resolve.ts";
import { UsageError } from "../../src/errors.ts";
import { HealthEngine } from "../../src/health/engine.ts";
import { defaultRegistry } from "../../src/health/probes/index.ts";
import type { TargetSnapshot } from "../../src/health/target.ts";
import type { Transition } from "../../src/health/types.ts";
import { tcpServer } from "../support/servers.ts";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setup(token?: string) {
  const s = await tcpServer();
  const registry = defaultRegistry();
  const engine = new HealthEngine(
    resolveConfig(
      { defaults: { interval: "100ms", fastInterval: "50ms" }, targets: [{ id: "a", address: s.address }] },
      registry,
    ),
    { registry },
  );
  engine.start();
  const admin = await startAdmin({ listen: "127.0.0.1:0", token, engine });
  cleanups.push(async () => {
    await admin.close();
    await engine.stop();
    await s.close();
  });
  return { engine, admin };
}

describe("admin server", () => {
  it("serves health, targets, one target and its history", async () => {
    const { admin, engine } = await setup();
    const end = Date.now() + 5000;
    while (engine.target("a")!.state !== "healthy" && Date.now() < end)
      await new Promise((r) => setTimeout(r, 20));
    expect(await (await fetch(`${admin.url}/healthz`)).text()).toBe("ok");
    const all = (await (await fetch(`${admin.url}/api/targets`)).json()) as TargetSnapshot[];
    expect(all[0]).toMatchObject({ id: "a", state: "healthy" });
    const one = (await (await fetch(`${admin.url}/api/targets/a`)).json()) as TargetSnapshot;
    expect(one.trends.availability["1m"]).toBe(1);
    const history = (await (await fetch(`${admin.url}/api/targets/a/history`)).json()) as {
      transitions: Transition[];
    };
    expect(history.transitions[0]).toMatchObject({ from: "unknown", to: "healthy" });
    expect((await fetch(`${admin.url}/api/targets/zz`)).status).toBe(404);
    expect((await fetch(`${admin.url}/nope`)).status).toBe(404);
  });

  it("takes operator actions, and needs the token for writes when one is set", async () => {
    const token = "s3cret-token-0123456789";
    const { admin, engine } = await setup(token);
    expect(
      (await fetch(`${admin.url}/api/targets/a/disable`, { method: "POST", body: "maintenance" })).status,
    ).toBe(401);
    const wrong = await fetch(`${admin.url}/api/targets/a/disable`, {
      method: "POST",
      headers: { authorization: "Bearer nope" },
    });
    expect(wrong.status).toBe(401);
    const ok = await fetch(`${admin.url}/api/targets/a/disable`, {
      method: "POST",
      body: "maintenance",
      headers: { authorization: `Bearer ${token}` },
    });
    expect(ok.status).toBe(200);
    expect(engine.target("a")!.state).toBe("disabled");
    expect(engine.target("a")!.reason).toBe("disabled by operator: maintenance");
    // reads on loopback do not need the token
    expect((await fetch(`${admin.url}/api/targets/a`)).status).toBe(200);
    const bad = await fetch(`${admin.url}/api/targets/a/explode`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
    });
    expect(bad.status).toBe(404);
  });

  it("judges loopback by address, never by name", () => {
    expect(isLoopback("127.0.0.1")).toBe(true);
    expect(isLoopback("127.3.4.5")).toBe(true);
    expect(isLoopback("::1")).toBe(true);
    expect(isLoopback("localhost")).toBe(true);
    expect(isLoopback("127.example.com")).toBe(false);
    expect(isLoopback("0.0.0.0")).toBe(false);
    expect(isLoopback("10.0.0.1")).toBe(false);
  });

  it("refuses to listen beyond loopback without a token", async () => {
    const registry = defaultRegistry();
    const engine = new HealthEngine(resolveConfig({ targets: [] }, registry), { registry });
    await expect(startAdmin({ listen: "0.0.0.0:0", engine })).rejects.toThrow(UsageError);
    await expect(startAdmin({ listen: "nonsense", engine })).rejects.toThrow(/not host:port/);
  });
});
