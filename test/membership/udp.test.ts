import { afterEach, describe, expect, it } from "vitest";
import { Keyring } from "../../src/membership/keyring.ts";
import { Membership } from "../../src/membership/membership.ts";
import { splitAddress, UdpTransport } from "../../src/membership/udp-transport.ts";

const key = Keyring.generateKey();
const running: Membership[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((m) => m.stop()));
});

async function member(id: string): Promise<Membership> {
  const transport = await UdpTransport.listen({ host: "127.0.0.1", port: 0 });
  const m = new Membership({
    id,
    transport,
    preset: "local",
    // Fast enough for a test: 200 ms periods, suspicion 0.6–1.8 s at N = 3.
    config: {
      probeInterval: 200,
      probeTimeout: 100,
      suspicionMult: 3,
      suspicionMaxTimeoutMult: 3,
      gossipInterval: 50,
    },
    keyring: new Keyring([key]),
    meta: { client: `127.0.0.1:${7400 + running.length}` },
  });
  running.push(m);
  m.start();
  return m;
}

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

describe("membership over real UDP and TCP on 127.0.0.1", () => {
  it("three members join, and a member whose transport closes is declared dead by the others", async () => {
    const [a, b, c] = [await member("a"), await member("b"), await member("c")];
    expect(splitAddress(a.address).port).toBeGreaterThan(0);
    expect(await b.join([a.address])).toBe(1);
    expect(await c.join([a.address, b.address])).toBe(2);
    const all = [a, b, c];
    const converged = () => all.every((m) => ["a", "b", "c"].every((id) => m.member(id)?.state === "alive"));
    expect(await waitFor(converged, 3000)).toBe(true);
    expect(a.member("c")!.meta.client).toBe("127.0.0.1:7402");

    const started = Date.now();
    await c.stop(); // closes its UDP socket and TCP listener, as a crash would
    expect(
      await waitFor(() => a.member("c")?.state === "dead" && b.member("c")?.state === "dead", 8000),
    ).toBe(true);
    expect(Date.now() - started).toBeLessThan(8000);
    expect(a.member("b")!.state).toBe("alive");
    expect(b.member("a")!.state).toBe("alive");
    expect(a.counters().droppedBadTag).toBe(0);
    expect(a.counters().packetsReceived).toBeGreaterThan(10);
  }, 15_000);

  it("a member that leaves and stops at once is seen as left, not dead (its last datagrams go out)", async () => {
    const [a, b, c] = [await member("a"), await member("b"), await member("c")];
    await b.join([a.address]);
    await c.join([a.address, b.address]);
    const converged = () =>
      [a, b, c].every((m) => ["a", "b", "c"].every((id) => m.member(id)?.state === "alive"));
    expect(await waitFor(converged, 3000)).toBe(true);
    await b.leave(2000);
    await b.stop(); // right away: the leave's datagrams were only handed to the socket
    expect(
      await waitFor(() => a.member("b")?.state === "left" && c.member("b")?.state === "left", 3000),
    ).toBe(true);
    expect(a.member("b")?.state).toBe("left");
  }, 15_000);

  it("rejects a join when no seed answers, with a stable code", async () => {
    const a = await member("lonely");
    const b = await UdpTransport.listen();
    const deadAddress = b.address;
    await b.close();
    await expect(a.join([deadAddress])).rejects.toMatchObject({ code: "LL_MEMBERSHIP_JOIN_FAILED" });
  });
});
