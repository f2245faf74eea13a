import { afterEach, describe, expect, it } from "vitest";
import { TcpProbe, tcpProbe, tcpSchema } from "../../../src/health/probes/tcp.ts";
import type { ProbeOutcome } from "../../../src/health/types.ts";
import { systemClock } from "../../../src/util/clock.ts";
import { closedPort, tcpServer } from "../../support/servers.ts";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function probe(spec: Record<string, unknown>, deadline = 2000): Promise<ProbeOutcome> {
  const p = new TcpProbe(tcpSchema.parse(spec));
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), deadline);
  try {
    return await p.run({ signal: controller.signal, deadline, clock: systemClock });
  } finally {
    clearTimeout(timer);
  }
}

describe("tcp probe over real sockets", () => {
  it("passes on connect and reports the connect time", async () => {
    const s = await tcpServer();
    cleanups.push(s.close);
    const o = await probe({ address: s.address });
    expect(o.status).toBe("pass");
    expect(o.latency).toBeGreaterThanOrEqual(0);
    expect(o.detail?.connect).toBe(o.latency);
  });

  it("a closed port is refused, with the errno", async () => {
    const o = await probe({ address: `127.0.0.1:${await closedPort()}` });
    expect(o).toMatchObject({ status: "fail", kind: "refused", errno: "ECONNREFUSED" });
  });

  it("refused right after a pass is asked again at once; refused twice is conclusive", async () => {
    const s = await tcpServer();
    const p = new TcpProbe(tcpSchema.parse({ address: s.address }));
    const run = () => p.run({ signal: new AbortController().signal, deadline: 2000, clock: systemClock });
    expect((await run()).status).toBe("pass");
    await s.close();
    const t0 = performance.now();
    const o = await run();
    expect(o).toMatchObject({ status: "fail", kind: "refused", conclusive: true });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(90); // the second connect, ~100 ms later
    // Already failing: a refusal is not confirmed again (no extra connects on a down target).
    const again = await run();
    expect(again).toMatchObject({ status: "fail", kind: "refused" });
    expect(again.conclusive).toBeUndefined();
  });

  it("a first refusal (never passed) is an ordinary failure, counted towards fall", async () => {
    const o = await probe({ address: `127.0.0.1:${await closedPort()}` });
    expect(o.conclusive).toBeUndefined();
  });

  it("send/expect passes on the expected answer, by substring or regex", async () => {
    const s = await tcpServer((d, sock) => d.includes("PING") && sock.write("+PONG\r\n"));
    cleanups.push(s.close);
    expect((await probe({ address: s.address, send: "PING\r\n", expect: "+PONG" })).status).toBe("pass");
    expect((await probe({ address: s.address, send: "PING\r\n", expect: "/^\\+PO.G/" })).status).toBe("pass");
  });

  it("a wrong answer followed by a close is `closed` with what was said", async () => {
    const s = await tcpServer((_d, sock) => sock.end("-ERR no\r\n"));
    cleanups.push(s.close);
    const o = await probe({ address: s.address, send: "PING\r\n", expect: "+PONG" });
    expect(o).toMatchObject({ status: "fail", kind: "closed" });
    expect(o.message).toContain("-ERR no");
  });

  it("an answer that never matches within maxBytes is a protocol failure", async () => {
    const s = await tcpServer((_d, sock) => sock.write("x".repeat(200)));
    cleanups.push(s.close);
    const o = await probe({ address: s.address, send: "PING\r\n", expect: "+PONG", maxBytes: 100 });
    expect(o).toMatchObject({ status: "fail", kind: "protocol" });
  });

  it("a silent server times out — a timeout, never a refusal", async () => {
    const s = await tcpServer(() => {});
    cleanups.push(s.close);
    const o = await probe({ address: s.address, send: "PING\r\n", expect: "+PONG" }, 200);
    expect(o).toMatchObject({ status: "fail", kind: "timeout", message: "no expected answer in time" });
  });

  it("parses TARGET strings", () => {
    expect(tcpProbe.fromTarget?.("127.0.0.1:80")).toMatchObject({ address: "127.0.0.1:80" });
    expect(tcpProbe.fromTarget?.("[::1]:80")).toMatchObject({ address: "[::1]:80" });
    expect(tcpProbe.fromTarget?.("tcp://db:6379?send=PING%0D%0A&expect=%2BPONG")).toMatchObject({
      address: "db:6379",
      send: "PING\r\n",
      expect: "+PONG",
    });
    expect(tcpProbe.fromTarget?.("http://x")).toBeUndefined();
    expect(tcpProbe.fromTarget?.("host:99999")).toBeUndefined();
  });
});
