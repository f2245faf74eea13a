import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { DEFAULT_ADMIN } from "../../src/admin/http.ts";
import { type MonitorHandle, startMonitor } from "../../src/cli/monitor.ts";
import { memoryIO } from "../support/io.ts";
import { tcpServer } from "../support/servers.ts";

const dir = mkdtempSync(join(tmpdir(), "lifeline-monitor-admin-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function until(cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 25));
  }
}

const TOKEN = "test-token-0123456789abcdef";

function yaml(targets: Array<{ id: string; address: string }>): string {
  return [
    "defaults:",
    "  interval: 200ms",
    "  fastInterval: 100ms",
    "admin:",
    `  token: ${TOKEN}`,
    "targets:",
    ...targets.map((t) => `  - id: ${t.id}\n    address: ${t.address}`),
    "",
  ].join("\n");
}

async function setup(): Promise<{ m: MonitorHandle; url: string; a: Awaited<ReturnType<typeof tcpServer>> }> {
  const a = await tcpServer();
  const file = join(dir, `m-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, yaml([{ id: "a", address: a.address }]));
  const m = await startMonitor(
    [],
    { config: file, watch: false, admin: "127.0.0.1:0", history: "off" },
    memoryIO(),
  );
  cleanups.push(async () => {
    await m.stop();
    await a.close();
  });
  await until(() => m.engine.target("a")?.state === "healthy");
  return { m, url: m.admin!.url, a };
}

/** Parses Prometheus text: series name → [{labels, value}]. */
function parseMetrics(text: string): Map<string, Array<{ labels: Record<string, string>; value: number }>> {
  const out = new Map<string, Array<{ labels: Record<string, string>; value: number }>>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    const list = out.get(m[1]!) ?? [];
    list.push({ labels, value: Number(m[3]) });
    out.set(m[1]!, list);
  }
  return out;
}

/** Reads server-sent events until `stop` says so (or the time runs out). */
function readEvents(
  url: string,
  stop: (events: Array<{ event: string; data: unknown }>) => boolean,
  ms = 15_000,
): Promise<Array<{ event: string; data: unknown }>> {
  return new Promise((resolve, reject) => {
    const events: Array<{ event: string; data: unknown }> = [];
    const req = http.get(url, (res) => {
      expect(res.headers["content-type"]).toMatch(/^text\/event-stream/);
      let buf = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buf += chunk;
        let i = buf.indexOf("\n\n");
        while (i >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) events.push({ event, data: JSON.parse(data) });
          i = buf.indexOf("\n\n");
        }
        if (stop(events)) {
          clearTimeout(timer);
          req.destroy();
          resolve(events);
        }
      });
    });
    req.on("error", () => {});
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`events so far: ${JSON.stringify(events.map((e) => e.event))}`));
    }, ms);
  });
}

describe("monitor admin server", () => {
  it("/metrics shows every documented series with live values", async () => {
    const { url } = await setup();
    await until(async () =>
      (await (await fetch(`${url}/metrics`)).text()).includes("lifeline_probe_duration"),
    );
    const res = await fetch(`${url}/metrics`);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    const series = parseMetrics(await res.text());
    const one = (name: string, labels: Record<string, string> = {}) =>
      series.get(name)?.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    expect(one("lifeline_target_up", { target: "a" })).toBe(1);
    expect(one("lifeline_target_state", { target: "a", state: "healthy" })).toBe(1);
    expect(one("lifeline_target_state", { target: "a", state: "down" })).toBe(0);
    expect(one("lifeline_target_state_since_seconds", { target: "a" })).toBeGreaterThan(1.7e9);
    expect(one("lifeline_target_availability_ratio", { target: "a", window: "1m" })).toBe(1);
    expect(one("lifeline_check_timeout_seconds", { target: "a" })).toBeGreaterThan(0);
    expect(one("lifeline_check_srtt_seconds", { target: "a" })).toBeGreaterThanOrEqual(0);
    expect(one("lifeline_probe_duration_seconds_count", { target: "a", status: "pass" })).toBeGreaterThan(0);
    expect(one("lifeline_state_transitions_total", { target: "a", from: "unknown", to: "healthy" })).toBe(1);
    expect(one("lifeline_monitor_event_loop_lag_seconds")).toBeGreaterThanOrEqual(0);
    expect(one("lifeline_monitor_probes", { status: "in_flight" })).toBeGreaterThanOrEqual(0);
    expect(one("lifeline_monitor_targets")).toBe(1);
    expect(one("process_resident_memory_bytes")).toBeGreaterThan(0);
  });

  it("counts failures by kind and transitions once a target goes down", async () => {
    const { url, a, m } = await setup();
    await a.close();
    await until(() => m.engine.target("a")?.state === "down");
    const series = parseMetrics(await (await fetch(`${url}/metrics`)).text());
    const refused = series
      .get("lifeline_probe_failures_total")
      ?.find((s) => s.labels.target === "a" && s.labels.kind === "refused");
    expect(refused?.value).toBeGreaterThan(0);
    expect(series.get("lifeline_target_up")?.find((s) => s.labels.target === "a")?.value).toBe(0);
    const downs = series
      .get("lifeline_state_transitions_total")
      ?.filter((s) => s.labels.target === "a" && s.labels.to === "down")
      .reduce((n, s) => n + s.value, 0);
    expect(downs).toBe(1);
  });

  it("/api/events streams a snapshot, then state changes as they happen", async () => {
    const { url, a } = await setup();
    const events = readEvents(`${url}/api/events?types=state`, (es) =>
      es.some((e) => e.event === "state" && (e.data as { to: string }).to === "down"),
    );
    await new Promise((r) => setTimeout(r, 200));
    await a.close();
    const got = await events;
    expect(got[0]!.event).toBe("snapshot");
    expect((got[0]!.data as Array<{ id: string; state: string }>)[0]).toMatchObject({
      id: "a",
      state: "healthy",
    });
    expect(got.filter((e) => e.event === "result")).toEqual([]); // not asked for
    expect(got.find((e) => e.event === "state")!.data).toMatchObject({ target: "a", to: expect.any(String) });
  });

  it("/readyz, /api/info and /api/transitions", async () => {
    const { url } = await setup();
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
    const info = (await (await fetch(`${url}/api/info`)).json()) as Record<string, unknown>;
    expect(info).toMatchObject({ name: "lifeline monitor", profile: "lan", version: expect.any(String) });
    const recent = (await (await fetch(`${url}/api/transitions?limit=5`)).json()) as Array<{
      target: string;
      to: string;
    }>;
    expect(recent).toEqual([expect.objectContaining({ target: "a", from: "unknown", to: "healthy" })]);
  });

  it("GET /api/config hides secrets; PUT applies a new one, or rejects it with the field path", async () => {
    const { url, m } = await setup();
    const got = (await (await fetch(`${url}/api/config`)).json()) as { admin: { token: string } };
    expect(got.admin.token).toBe("[redacted]");
    expect(JSON.stringify(got)).not.toContain(TOKEN);

    const b = await tcpServer();
    cleanups.push(() => b.close());
    const auth = { authorization: `Bearer ${TOKEN}` };
    const next = yaml([
      { id: "a", address: m.engine.snapshot()[0]!.checks[0]!.description.replace(/^tcp /, "") },
      { id: "b", address: b.address },
    ]);
    // Writes need the token.
    expect((await fetch(`${url}/api/config`, { method: "PUT", body: next })).status).toBe(401);
    const ok = await fetch(`${url}/api/config`, { method: "PUT", body: next, headers: auth });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ ok: true, change: { added: ["b"] } });
    await until(() => m.engine.target("b")?.state === "healthy");
    expect(m.engine.target("a")!.state).toBe("healthy"); // kept its state

    const bad = await fetch(`${url}/api/config`, {
      method: "PUT",
      body: "targets:\n  - id: c\n    address: 127.0.0.1:1\n    interval: soon\n",
      headers: auth,
    });
    expect(bad.status).toBe(400);
    const body = (await bad.json()) as { ok: boolean; issues: Array<{ path: string }> };
    expect(body.ok).toBe(false);
    expect(body.issues.map((i) => i.path)).toContain("targets[0].interval");
    expect(m.engine.ids().sort()).toEqual(["a", "b"]);
  });

  it("writes always need a token: without one configured, a generated one in a private file", async () => {
    const a = await tcpServer();
    cleanups.push(() => a.close());
    const tokenFile = join(dir, "tok", "admin-token");
    const m = await startMonitor(
      [a.address],
      { watch: false, admin: "127.0.0.1:0", history: "off", adminTokenFile: tokenFile },
      memoryIO(),
    );
    let stopped = false;
    cleanups.push(async () => {
      if (!stopped) await m.stop();
    });
    const id = m.engine.ids()[0]!;
    const url = `${m.admin!.url}/api/targets/${encodeURIComponent(id)}/disable`;
    expect((await fetch(url, { method: "POST" })).status).toBe(401); // loopback is not enough
    const token = readFileSync(tokenFile, "utf8").trim();
    expect(token).toBe(m.adminToken);
    expect(token.length).toBeGreaterThanOrEqual(32);
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    const ok = await fetch(url, { method: "POST", headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    expect(m.engine.target(id)!.state).toBe("disabled");
    await m.stop();
    stopped = true;
    expect(existsSync(tokenFile)).toBe(false); // its own token file goes with it
  });

  it("serves uPlot locally and never a file outside its folders", async () => {
    const { url } = await setup();
    const js = await fetch(`${url}/vendor/uPlot.iife.min.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toMatch(/javascript/);
    expect((await js.text()).length).toBeGreaterThan(10_000);
    for (const p of ["/..%2Fpackage.json", "/vendor/..%2F..%2Fpackage.json", "/%2e%2e/package.json", "/x.ts"])
      expect((await fetch(`${url}${p}`)).status, p).toBe(404);
  });

  it("without --admin it takes the default port, and runs without it when that port is taken", async () => {
    // Hold the default port (if something else holds it, the outcome is the same).
    const holder = net.createServer();
    await new Promise<void>((resolve) => {
      holder.once("error", () => resolve());
      holder.listen(Number(DEFAULT_ADMIN.monitor.split(":")[1]), "127.0.0.1", () => resolve());
    });
    cleanups.push(() => new Promise<void>((r) => holder.close(() => r())));
    const a = await tcpServer();
    cleanups.push(() => a.close());
    const m = await startMonitor([a.address], { watch: false, history: "off" }, memoryIO());
    cleanups.push(() => m.stop());
    expect(m.admin).toBeUndefined();
    // Given explicitly, a taken address is an error.
    await expect(
      startMonitor([a.address], { admin: DEFAULT_ADMIN.monitor, history: "off" }, memoryIO()),
    ).rejects.toThrow();
  });
});
