import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.ts";
import { memoryIO } from "../support/io.ts";
import { closedPort, tcpServer } from "../support/servers.ts";

const dir = mkdtempSync(join(tmpdir(), "lifeline-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("lifeline check", () => {
  it("exits 0 for a healthy target and 2 for a refused one", async () => {
    const s = await tcpServer();
    try {
      const io = memoryIO();
      expect(await main(["check", s.address], io)).toBe(0);
      expect(io.out()).toMatch(/^healthy\s+127\.0\.0\.1:\d+\s+tcp passing/);
      const down = memoryIO();
      expect(await main(["check", s.address, `127.0.0.1:${await closedPort()}`], down)).toBe(2);
      expect(down.out()).toMatch(
        /down\s+127\.0\.0\.1:\d+\s+tcp: 1 consecutive failure, last refused \(ECONNREFUSED\)/,
      );
    } finally {
      await s.close();
    }
  });

  it("exits 1 for a slow (degraded) target and prints JSON with --json", async () => {
    const s = await tcpServer(
      (d, sock) => d.includes("PING") && setTimeout(() => sock.write("+PONG\r\n"), 250),
    );
    const file = join(dir, "slow.yaml");
    writeFileSync(
      file,
      `defaults:\n  slowThreshold: 100ms\ntargets:\n  - id: slow\n    checks:\n      - type: tcp\n        address: ${s.address}\n        send: "PING\\r\\n"\n        expect: "+PONG"\n`,
    );
    try {
      const io = memoryIO();
      expect(await main(["check", "-c", file, "--json"], io)).toBe(1);
      const out = JSON.parse(io.out());
      expect(out[0]).toMatchObject({ id: "slow", state: "degraded" });
      expect(out[0].reason).toContain("slow");
      expect(out[0].checks[0]).toMatchObject({ status: "pass", description: `tcp ${s.address} send/expect` });
    } finally {
      await s.close();
    }
  });

  it("exits 3 with the field's path for an invalid config", async () => {
    const file = join(dir, "bad.yaml");
    writeFileSync(
      file,
      "targets:\n  - id: x\n    checks:\n      - type: tcp\n        address: 127.0.0.1:1\n        fall: zero\n",
    );
    const io = memoryIO();
    expect(await main(["check", "-c", file], io)).toBe(3);
    expect(io.err()).toContain("targets[0].checks[0].fall");
    const bad = memoryIO();
    expect(await main(["check", "--profile", "fast", "127.0.0.1:1"], bad)).toBe(3);
    expect(bad.err()).toContain("profile");
  });

  it("accepts an interval shorter than the profile's fast interval", async () => {
    const s = await tcpServer();
    try {
      expect(await main(["check", "--interval", "200ms", s.address], memoryIO())).toBe(0);
      expect(await main(["check", "--profile", "classic", "--interval", "1s", s.address], memoryIO())).toBe(
        0,
      );
    } finally {
      await s.close();
    }
  });

  it("exits 3 for a YAML file that cannot be turned into data", async () => {
    const file = join(dir, "alias.yaml");
    writeFileSync(file, "targets:\n  - *nope\n");
    const io = memoryIO();
    expect(await main(["check", "-c", file], io)).toBe(3);
    expect(io.err()).toContain("alias.yaml");
  });

  it("exits 3 for usage errors", async () => {
    expect(await main(["check"], memoryIO())).toBe(3);
    expect(await main(["frobnicate"], memoryIO())).toBe(3);
    expect(await main(["check", "--no-such-flag", "x:1"], memoryIO())).toBe(3);
    expect(await main(["check", "not a target"], memoryIO())).toBe(3);
  });

  it("the installed binary exits 3 on an invalid config and prints the path", () => {
    const file = join(dir, "bad2.yaml");
    writeFileSync(file, "defaults:\n  interval: sometimes\ntargets: []\n");
    const r = spawnSync(process.execPath, ["bin/lifeline.js", "monitor", "-c", file], {
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(r.status).toBe(3);
    expect(r.stderr).toContain("defaults.interval");
  });
});
