import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startMonitor } from "../../src/cli/monitor.ts";
import { UsageError } from "../../src/errors.ts";
import { memoryIO } from "../support/io.ts";
import { tcpServer } from "../support/servers.ts";

const dir = mkdtempSync(join(tmpdir(), "lifeline-monitor-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

function yaml(targets: Array<{ id: string; address: string }>, interval = "200ms"): string {
  return `defaults:\n  interval: ${interval}\n  fastInterval: 100ms\ntargets:\n${targets
    .map((t) => `  - id: ${t.id}\n    address: ${t.address}\n`)
    .join("")}`;
}

describe("lifeline monitor", () => {
  it("prints JSON lines when not on a terminal, and reloads on SIGHUP", async () => {
    const a = await tcpServer();
    const b = await tcpServer();
    const file = join(dir, "m.yaml");
    writeFileSync(file, yaml([{ id: "a", address: a.address }]));
    const io = memoryIO();
    const m = await startMonitor([], { config: file, watch: false, admin: false, history: "off" }, io);
    try {
      await until(() => m.engine.target("a")?.state === "healthy");
      const lines = io
        .out()
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      expect(lines[0]).toMatchObject({ type: "start", profile: "lan", targets: ["a"] });
      expect(lines.find((l) => l.type === "state")).toMatchObject({
        target: "a",
        from: "unknown",
        to: "healthy",
      });
      const firstAt = m.engine.history("a")!.transitions[0]!.at;

      // SIGHUP (the file is not watched here) with an added target
      writeFileSync(
        file,
        yaml([
          { id: "a", address: a.address },
          { id: "b", address: b.address },
        ]),
      );
      process.kill(process.pid, "SIGHUP");
      await until(() => m.engine.target("b")?.state === "healthy");
      // a kept its history: the same first transition, not a rebuilt target's
      expect(m.engine.history("a")!.transitions.map((t) => t.at)).toEqual([firstAt]);
      const bFirst = m.engine.history("b")!.transitions[0]!.at;

      // SIGHUP with a removed target: it goes, the other keeps its state and history
      writeFileSync(file, yaml([{ id: "b", address: b.address }]));
      process.kill(process.pid, "SIGHUP");
      await until(() => m.engine.ids().join() === "b");
      expect(m.engine.target("b")!.state).toBe("healthy");
      expect(m.engine.history("b")!.transitions.map((t) => t.at)).toEqual([bFirst]);
      expect(io.out()).toContain('"removed":["a"]');

      // an invalid file is rejected with the field's path; the running config stays
      writeFileSync(file, "defaults:\n  interval: never\ntargets: []\n");
      process.kill(process.pid, "SIGHUP");
      await until(() => io.out().includes('"type":"config-rejected"'));
      expect(io.out()).toContain("defaults.interval");
      expect(m.engine.ids()).toEqual(["b"]);
      // so is a file the YAML parser itself cannot turn into data
      writeFileSync(file, "targets:\n  - *nowhere\n");
      expect(m.reload()?.code).toBe("LL_CONFIG_INVALID");
      expect(m.engine.ids()).toEqual(["b"]);
    } finally {
      await m.stop();
      await a.close();
      await b.close();
    }
  });

  it("reloads when the file is saved, also by rename", async () => {
    const a = await tcpServer();
    const file = join(dir, "w.yaml");
    writeFileSync(file, yaml([{ id: "a", address: a.address }]));
    const m = await startMonitor([], { config: file, admin: false, history: "off" }, memoryIO());
    try {
      await until(() => m.engine.target("a")?.state === "healthy");
      writeFileSync(`${file}.tmp`, yaml([{ id: "a2", address: a.address }]));
      renameSync(`${file}.tmp`, file);
      await until(() => m.engine.ids().join() === "a2");
      writeFileSync(file, yaml([{ id: "a3", address: a.address }]));
      await until(() => m.engine.ids().join() === "a3");
    } finally {
      await m.stop();
      await a.close();
    }
  });

  it("a restarted monitor shows the history and availability it had (history file)", async () => {
    const a = await tcpServer();
    const file = join(dir, "h.yaml");
    const history = join(dir, "state", "history.db"); // its folder is created
    writeFileSync(file, yaml([{ id: "a", address: a.address }], "100ms"));
    const first = await startMonitor([], { config: file, watch: false, admin: false, history }, memoryIO());
    let before: { transitions: Array<{ to: string; at: number }>; results: unknown[] };
    try {
      await until(() => first.engine.target("a")?.state === "healthy");
      await a.close();
      await until(() => first.engine.target("a")?.state === "down");
      // Stay down a while (more failed checks), so the down time is not zero.
      const n = first.engine.history("a")!.results.length;
      await until(() => first.engine.history("a")!.results.length >= n + 3);
      before = first.engine.history("a")!;
    } finally {
      await first.stop();
    }
    const second = await startMonitor(
      [],
      { config: file, watch: false, admin: "127.0.0.1:0", history },
      memoryIO(),
    );
    try {
      // Before any new check: the old transitions and results are there, and so are trends.
      const h = (await (await fetch(`${second.admin!.url}/api/targets/a/history`)).json()) as {
        transitions: Array<{ to: string; at: number }>;
        results: unknown[];
      };
      expect(h.transitions.slice(0, before.transitions.length).map((t) => [t.to, t.at])).toEqual(
        before.transitions.map((t) => [t.to, t.at]),
      );
      expect(h.results.length).toBeGreaterThanOrEqual(before.results.length);
      const trends = second.engine.target("a")!.trends;
      expect(trends.availability["1h"]).not.toBeNull();
      expect(trends.availability["1h"]!).toBeLessThan(1); // it was down for a while
      expect(trends.flaps1h).toBe(1);
    } finally {
      await second.stop();
    }
  });

  it("runs the hooks of its configuration on state changes, and a reload replaces them", async () => {
    const a = await tcpServer();
    const file = join(dir, "hooks.yaml");
    const out = join(dir, "hook-out.txt");
    const script = join(dir, "hook.cjs");
    writeFileSync(
      script,
      [
        "const e = process.env;",
        'require("node:fs").appendFileSync(process.argv[2], e.LIFELINE_TARGET + " " + e.LIFELINE_FROM + ">" + e.LIFELINE_TO + "\\n");',
      ].join("\n"),
    );
    const hookYaml = (name: string) =>
      `hooks:\n  - name: ${name}\n    command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(script)}, ${JSON.stringify(out)}]\n`;
    writeFileSync(file, yaml([{ id: "a", address: a.address }]) + hookYaml("record"));
    const m = await startMonitor(
      [],
      { config: file, watch: false, admin: false, history: "off" },
      memoryIO(),
    );
    try {
      await until(() => m.engine.target("a")?.state === "healthy");
      await a.close();
      await until(() => m.engine.target("a")?.state === "down");
      await until(() => existsSync(out) && readFileSync(out, "utf8").includes(">down"));
      // One line per change; the first (from unknown) is not notified by default.
      const lines = readFileSync(out, "utf8").trim().split("\n");
      expect(lines.at(-1)).toMatch(/^a (healthy|suspect)>down$/);
      expect(lines.length).toBe(m.engine.history("a")!.transitions.length - 1);
      expect(lines.every((l) => !l.includes("unknown>"))).toBe(true);
      expect(Object.keys(m.hooks.statsByHook())).toEqual(["record"]);
      writeFileSync(file, yaml([{ id: "a", address: a.address }]) + hookYaml("renamed"));
      expect(m.reload()).toBeUndefined();
      await until(() => Object.keys(m.hooks.statsByHook()).includes("renamed"));
    } finally {
      await m.stop();
    }
  });

  it("refuses to start with nothing to monitor", async () => {
    await expect(startMonitor([], {}, memoryIO())).rejects.toThrow(UsageError);
  });
});
