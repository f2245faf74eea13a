import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
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
    const m = await startMonitor([], { config: file, watch: false, admin: false }, io);
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
    const m = await startMonitor([], { config: file, admin: false }, memoryIO());
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

  it("refuses to start with nothing to monitor", async () => {
    await expect(startMonitor([], {}, memoryIO())).rejects.toThrow(UsageError);
  });
});
