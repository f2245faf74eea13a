import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, describe, expect, it } from "vitest";
import { echoApp } from "../../src/node/apps/echo.ts";
import { LifelineNode } from "../../src/node/node.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { TestClient, until } from "../support/node-client.ts";

const dir = mkdtempSync(join(tmpdir(), "lifeline-drain-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("graceful drain", () => {
  it("SIGTERM: every client gets GOAWAY before its socket closes, and the node exits 0 within the deadline", async () => {
    const child = spawn(
      process.execPath,
      [
        "bin/lifeline.js",
        "node",
        "--id",
        "d1",
        "--port",
        "0",
        "--store",
        `sqlite:${join(dir, "drain.db")}`,
        "--drain-deadline",
        "3000",
        "--log-level",
        "warn",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    try {
      const lines = createInterface({ input: child.stdout });
      const listening = await new Promise<{ address: string }>((resolve, reject) => {
        lines.once("line", (l) => resolve(JSON.parse(l)));
        child.once("exit", (code) => reject(new Error(`node exited early with ${code}`)));
      });
      const clients = await Promise.all(
        Array.from({ length: 5 }, () => TestClient.connect(listening.address)),
      );
      for (const c of clients) await c.send("before");
      // Record the order: GOAWAY must come before the close.
      const order: string[][] = clients.map(() => []);
      clients.forEach((c, i) => {
        c.conn.on("message", (m) => {
          if (m.type === "goaway") order[i]!.push("goaway");
        });
        c.conn.on("close", () => order[i]!.push("close"));
      });
      const started = Date.now();
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
      child.kill("SIGTERM");
      await until(() => clients.every((c) => c.goaway !== undefined), 5000, "GOAWAY to every client");
      expect(clients[0]!.goaway).toMatchObject({ type: "goaway" });
      expect(clients[0]!.goaway!.deadline).toBeGreaterThan(2000); // the time left of the 3 s deadline
      expect(clients[0]!.goaway!.deadline).toBeLessThanOrEqual(3000);
      // The clients stay; the node closes them at its deadline and exits 0.
      const code = await exited;
      const took = Date.now() - started;
      expect(code).toBe(0);
      expect(took).toBeLessThan(3000 + 5000); // the deadline, plus generous slack for a loaded machine
      await until(() => clients.every((c) => c.closed), 5000, "sockets closed");
      for (const o of order) expect(o).toEqual(["goaway", "close"]);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });

  it("SIGTERM after the reader of stdout went away still exits 0 (EPIPE is not a crash)", async () => {
    const child = spawn(
      process.execPath,
      ["bin/lifeline.js", "node", "--id", "d3", "--port", "0", "--store", "memory", "--log-level", "warn"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    try {
      let stderr = "";
      child.stderr.on("data", (d) => {
        stderr += d;
      });
      const lines = createInterface({ input: child.stdout });
      await new Promise<void>((resolve, reject) => {
        lines.once("line", () => resolve());
        child.once("exit", (code) => reject(new Error(`node exited early with ${code}`)));
      });
      lines.close();
      child.stdout.destroy(); // the parent stops reading: the node's next write meets EPIPE
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
      child.kill("SIGTERM");
      const code = await exited;
      expect(code, `exit ${code}, signal ${child.signalCode}, stderr: ${stderr}`).toBe(0);
      expect(stderr).not.toMatch(/EPIPE/);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });

  it("drain finishes early when clients leave, and commits what was queued first", async () => {
    const node = new LifelineNode({
      id: "d2",
      port: 0,
      store: new MemoryStore(),
      app: echoApp,
      drainDeadline: 10_000,
    });
    await node.start();
    const c = await TestClient.connect(node.address);
    const pending = Array.from({ length: 50 }, (_, i) => c.send(`q${i}`));
    c.conn.on("message", (m) => {
      if (m.type === "goaway") setTimeout(() => c.close(), 50); // a client that moves on GOAWAY
    });
    const started = Date.now();
    const draining = node.drain("test");
    const replies = await Promise.all(pending);
    expect(replies.every((r, i) => r?.toString() === `q${i}`)).toBe(true);
    await draining;
    expect(Date.now() - started).toBeLessThan(5000);
    expect(node.state).toBe("stopped");
    // a new client is not accepted any more
    await expect(TestClient.connect(node.address)).rejects.toBeDefined();
  });
});
