import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { echoApp } from "../../src/node/apps/echo.ts";
import { LifelineNode } from "../../src/node/node.ts";
import { decodeMessage, encodeMessage } from "../../src/protocol/codec.ts";
import { FrameParser } from "../../src/protocol/frame.ts";
import type { Message } from "../../src/protocol/messages.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { TestClient, until } from "../support/node-client.ts";

/**
 * A node fed garbage, oversize frames, half-sent handshakes or a crowd of idle connections
 * answers each with an ERROR (or a close) and keeps serving everyone else.
 */
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function startNode(limits: Record<string, number> = {}) {
  const node = new LifelineNode({ id: "n1", port: 0, store: new MemoryStore(), app: echoApp, limits });
  await node.start();
  cleanups.push(() => node.stop());
  return node;
}

/** A raw socket that records what the node says and whether it closed. */
async function raw(port: number) {
  const socket = net.connect({ host: "127.0.0.1", port });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const parser = new FrameParser();
  const got: Message[] = [];
  let closed = false;
  socket.on("data", (c) => {
    for (const f of parser.push(c).frames) {
      const m = decodeMessage(f);
      if (!(m instanceof Error)) got.push(m);
    }
  });
  socket.on("error", () => {});
  socket.on("close", () => {
    closed = true;
  });
  cleanups.push(() => {
    socket.destroy();
  });
  return { socket, got, closed: () => closed };
}

async function stillServes(node: LifelineNode): Promise<void> {
  const c = await TestClient.connect(node.address);
  expect((await c.send("alive"))?.toString()).toBe("alive");
  c.close();
}

describe("node robustness", () => {
  it("garbage bytes get ERROR LL_PROTOCOL and a close; others are served", async () => {
    const node = await startNode();
    const r = await raw(node.port);
    r.socket.write(Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    await until(() => r.closed());
    expect(r.got[0]).toMatchObject({ type: "error", fatal: true });
    expect(["LL_FRAME_TOO_LARGE", "LL_PROTOCOL", "LL_UNKNOWN_TYPE"]).toContain(
      (r.got[0] as { code: string }).code,
    );
    await stillServes(node);
  });

  it("random bytes from many connections never take the node down", async () => {
    const node = await startNode();
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    const conns = await Promise.all(Array.from({ length: 50 }, () => raw(node.port)));
    for (const r of conns) {
      const bytes = Buffer.alloc(200 + (rand() % 2000));
      for (let i = 0; i < bytes.length; i++) bytes[i] = rand() & 0xff;
      r.socket.write(bytes);
    }
    await until(() => conns.every((r) => r.closed()), 15_000, "all garbage connections closed");
    await stillServes(node);
    expect(node.state).toBe("healthy");
  });

  it("an oversize frame is refused from its header, before the body is sent", async () => {
    const node = await startNode({ maxFrame: 4096 });
    const r = await raw(node.port);
    const header = Buffer.alloc(5);
    header.writeUInt32BE(100 * 1024 * 1024);
    header[4] = 4;
    r.socket.write(header);
    await until(() => r.closed());
    expect(r.got[0]).toMatchObject({ type: "error", code: "LL_FRAME_TOO_LARGE" });
    await stillServes(node);
  });

  it("a message before HELLO is refused", async () => {
    const node = await startNode();
    const r = await raw(node.port);
    r.socket.write(encodeMessage({ type: "msg", seq: 1, payload: Buffer.from("x") }));
    await until(() => r.closed());
    expect(r.got[0]).toMatchObject({ type: "error", code: "LL_HANDSHAKE_REQUIRED" });
  });

  it("a half-sent handshake held open is dropped at the handshake deadline", async () => {
    const node = await startNode({ handshakeTimeout: 300 });
    const r = await raw(node.port);
    const hello = encodeMessage({
      type: "hello",
      minVersion: 1,
      maxVersion: 1,
      role: "client",
      lastPushSeq: 0,
      heartbeat: 0,
    });
    r.socket.write(hello.subarray(0, 7)); // and never the rest
    await stillServes(node);
    await until(() => r.closed(), 5000, "half handshake dropped");
    expect(r.got[0]).toMatchObject({ type: "error", code: "LL_HANDSHAKE_TIMEOUT" });
  });

  it("no common version is refused with LL_VERSION", async () => {
    const node = await startNode();
    const r = await raw(node.port);
    r.socket.write(
      encodeMessage({
        type: "hello",
        minVersion: 7,
        maxVersion: 9,
        role: "client",
        lastPushSeq: 0,
        heartbeat: 0,
      }),
    );
    await until(() => r.closed());
    expect(r.got[0]).toMatchObject({ type: "error", code: "LL_VERSION" });
  });

  it("1,000 idle connections do not stop it serving others, and are dropped at the handshake deadline", async () => {
    const node = await startNode({ handshakeTimeout: 3000 });
    const idle: net.Socket[] = [];
    for (let i = 0; i < 1000; i++) {
      const s = net.connect({ host: "127.0.0.1", port: node.port });
      s.on("error", () => {});
      idle.push(s);
    }
    cleanups.push(() => {
      for (const s of idle) s.destroy();
    });
    await until(() => node.stats().connections >= 1000, 15_000, "1,000 connections accepted");
    await stillServes(node);
    await until(() => node.stats().connections <= 1, 20_000, "idle connections dropped");
    await stillServes(node);
  });

  it("over the connection limit, a new connection gets LL_OVERLOADED", async () => {
    const node = await startNode({ maxConnections: 2 });
    const a = await TestClient.connect(node.address);
    const b = await TestClient.connect(node.address);
    cleanups.push(
      () => a.close(),
      () => b.close(),
    );
    await expect(TestClient.connect(node.address)).rejects.toMatchObject({ code: "LL_OVERLOADED" });
    expect((await a.send("ok"))?.toString()).toBe("ok");
  });
});
