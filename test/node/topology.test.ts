import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { afterEach, describe, expect, it } from "vitest";
import { TestClient, until } from "../support/node-client.ts";
import { closedPort } from "../support/servers.ts";

/** Nodes given each other as --peers watch each other with heartbeats and tell clients. */
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill("SIGKILL");
});

async function startNode(id: string, port: number, peers: number[], admin = false) {
  const args = [
    "bin/lifeline.js",
    "node",
    "--id",
    id,
    "--port",
    String(port),
    "--store",
    "memory",
    "--log-level",
    "warn",
  ];
  if (peers.length) args.push("--peers", peers.map((p) => `127.0.0.1:${p}`).join(","));
  if (admin) args.push("--admin", "127.0.0.1:0");
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once("line", resolve);
    child.once("exit", (code) => reject(new Error(`${id} exited with ${code}`)));
  });
  return { child, info: JSON.parse(line) as { address: string; admin?: string } };
}

describe("topology", () => {
  it("clients learn the cluster from TOPOLOGY, and learn when a peer dies; the admin API shows it", async () => {
    const ports = [await closedPort(), await closedPort(), await closedPort()];
    const nodes = await Promise.all(
      ports.map((p, i) =>
        startNode(
          `n${i + 1}`,
          p,
          ports.filter((q) => q !== p),
          i === 0,
        ),
      ),
    );
    const c = await TestClient.connect(nodes[0]!.info.address);
    const states = () => Object.fromEntries((c.topology?.nodes ?? []).map((n) => [n.id, n.state]));
    await until(
      () => JSON.stringify(states()) === JSON.stringify({ n1: "healthy", n2: "healthy", n3: "healthy" }),
      15_000,
      "all healthy",
    );
    expect(c.topology!.nodes.find((n) => n.id === "n2")!.address).toBe(`127.0.0.1:${ports[1]}`);

    const admin = nodes[0]!.info.admin!;
    const topo = (await (await fetch(`${admin}/api/topology`)).json()) as { nodes: Array<{ id: string }> };
    expect(topo.nodes.map((n) => n.id).sort()).toEqual(["n1", "n2", "n3"]);
    expect(await (await fetch(`${admin}/healthz`)).text()).toBe("healthy");
    const sessions = (await (await fetch(`${admin}/api/sessions`)).json()) as { sessions: number };
    expect(sessions.sessions).toBe(1);

    nodes[2]!.child.kill("SIGKILL");
    await until(() => states().n3 === "down", 10_000, "n3 down in the topology");
    expect(states()).toMatchObject({ n1: "healthy", n2: "healthy" });
    c.close();
  }, 40_000);
});
