import { afterEach, describe, expect, it } from "vitest";
import { startNodeAdmin } from "../../src/admin/node-admin.ts";
import { createClient, type LifelineClient } from "../../src/client/client.ts";
import { clientMetrics } from "../../src/client/metrics.ts";
import { echoApp } from "../../src/node/apps/echo.ts";
import { LifelineNode } from "../../src/node/node.ts";
import { MemoryStore } from "../../src/store/memory.ts";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** Prometheus text → "name{labels}" → value (labels as printed, in order). */
function values(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

async function startNode(id: string, store: MemoryStore) {
  const node = new LifelineNode({ id, port: 0, store, app: echoApp });
  await node.start();
  const admin = await startNodeAdmin({ listen: "127.0.0.1:0", node });
  cleanups.push(async () => {
    await admin.close();
    await node.stop();
  });
  return { node, admin };
}

describe("node and client metrics", () => {
  it("a node counts messages, replies, sessions and duplicates; a client counts its failover", async () => {
    const store = new MemoryStore();
    const n1 = await startNode("n1", store);
    const n2 = await startNode("n2", store);
    const client: LifelineClient = createClient({
      servers: [n1.node.address, n2.node.address],
      random: () => 0.5, // equal weights keep the order: n1 first
      name: "app",
    });
    cleanups.push(async () => {
      await client.close({ timeout: 0 });
    });
    const registry = clientMetrics(client);
    await client.connect();
    expect(client.status().node).toBe("n1");
    for (let i = 0; i < 20; i++) await client.send(`m${i}`);

    const m1 = values(await (await fetch(`${n1.admin.url}/metrics`)).text());
    expect(m1.get('lifeline_node_messages_received_total{node="n1"}')).toBe(20);
    expect(m1.get('lifeline_node_messages_processed_total{node="n1"}')).toBe(20);
    expect(m1.get('lifeline_node_replies_sent_total{node="n1"}')).toBe(20);
    expect(m1.get('lifeline_node_duplicates_suppressed_total{node="n1"}')).toBe(0);
    expect(m1.get('lifeline_node_sessions_total{event="created",node="n1"}')).toBe(1);
    expect(m1.get('lifeline_node_sessions{node="n1"}')).toBe(1);
    expect(m1.get('lifeline_node_connections{node="n1"}')).toBe(1);
    expect(m1.get('lifeline_node_state{state="healthy",node="n1"}')).toBe(1);
    expect(m1.has('lifeline_node_event_loop_lag_seconds{node="n1"}')).toBe(true);
    expect(m1.has('process_cpu_seconds_total{node="n1"}')).toBe(true);
    const ready = await fetch(`${n1.admin.url}/readyz`);
    expect(ready.status).toBe(200);

    // n1 drains: the client moves to n2 and resumes its session there.
    const moved = new Promise<void>((resolve) => client.once("failover", () => resolve()));
    await n1.node.drain("test", 2000);
    await moved;
    expect(client.status().node).toBe("n2");
    await client.send("after");
    const m2 = values(await (await fetch(`${n2.admin.url}/metrics`)).text());
    expect(m2.get('lifeline_node_sessions_total{event="resumed",node="n2"}')).toBe(1);
    expect(m2.get('lifeline_node_messages_processed_total{node="n2"}')).toBe(1);

    const c = values(await registry.metrics());
    expect(c.get('lifeline_client_failovers_total{client="app"}')).toBe(1);
    expect(c.get('lifeline_client_failover_seconds_count{client="app"}')).toBe(1);
    expect(c.get('lifeline_client_connected{client="app"}')).toBe(1);
    expect(c.get('lifeline_client_outbox_messages{client="app",status="inflight"}')).toBe(0);
    expect(c.get('lifeline_client_sessions_lost_total{client="app"}')).toBe(0);
    expect(c.has('lifeline_client_reconnects_total{client="app"}')).toBe(true);
  });

  it("a node's resent messages are answered from the store and counted as duplicates", async () => {
    const store = new MemoryStore();
    const n1 = await startNode("n1", store);
    const { TestClient } = await import("../support/node-client.ts");
    const c = await TestClient.connect(n1.node.address);
    cleanups.push(async () => c.close());
    await c.send("a");
    await c.send("b");
    // The same sequence numbers again, as a client that lost its ACKs resends them.
    c.conn.send({ type: "msg", seq: 1, payload: new TextEncoder().encode("a") });
    c.conn.send({ type: "msg", seq: 2, payload: new TextEncoder().encode("b") });
    const end = Date.now() + 5000;
    let m = values(await (await fetch(`${n1.admin.url}/metrics`)).text());
    while (m.get('lifeline_node_duplicates_suppressed_total{node="n1"}') !== 2 && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 25));
      m = values(await (await fetch(`${n1.admin.url}/metrics`)).text());
    }
    expect(m.get('lifeline_node_duplicates_suppressed_total{node="n1"}')).toBe(2);
    expect(m.get('lifeline_node_messages_processed_total{node="n1"}')).toBe(2);
    expect(m.get('lifeline_node_messages_received_total{node="n1"}')).toBe(4);
  });
});
