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
  it("prints JSON lines when not on a terminal, and reloads on SIGHUP and on file change", async () => {
    const a = await tcpServer();
    const b = await tcpServer();
    const file = join(dir, "m.yaml");
    writeFileSync(file, yaml([{ id: "a", address: a.address }]));
    const io = memoryIO();
    const m = await startMonitor([], { config: file }, io);
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

      // SIGHUP with an added target
      writeFileSync(
        file,
        yaml([
          { id: "a", address: a.address },
          { id: "b", address: b.address },
        ]),
      );
      process.kill(process.pid, "SIGHUP");
      await until(() => m.engine.target("b")?.state === "healthy");
      expect(m.engine.history("a")!.transitions).toHaveLength(1); // a kept its history

      // an invalid file is rejected; the running config stays
      writeFileSync(file, "defaults:\n  interval: never\ntargets: []\n");
      const err = m.reload();
      expect(err?.message).toContain("defaults.interval");
      expect(m.engine.ids()).toEqual(["a", "b"]);
      await until(() => io.out().includes('"type":"config-rejected"'));

      // a file change (no signal) removes a target; saved the way editors do, by renaming
      writeFileSync(`${file}.tmp`, yaml([{ id: "b", address: b.address }]));
      renameSync(`${file}.tmp`, file);
      await until(() => m.engine.ids().join() === "b");
      expect(m.engine.target("b")!.state).toBe("healthy");
    } finally {
      await m.stop();
      await a.close();
      await b.close();
    }
  });

  it("refuses to start with nothing to monitor", async () => {
    await expect(startMonitor([], {}, memoryIO())).rejects.toThrow(UsageError);
  });
});
