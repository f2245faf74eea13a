import { afterEach, describe, expect, it } from "vitest";
import { createLan, HUB_ADDRESS, type Lan } from "./lan.ts";
import { canUseNamespaces, listNamespaces } from "./netns.ts";
import { stopAll } from "./process.ts";
import { measureConnects, startServers } from "./servers.ts";

/** The multi-host harness: hosts on a bridge, reachable from each other and from the hub. */
const skip = canUseNamespaces();
if (skip) console.log(`skipping LAN harness tests: ${skip}`);

describe.skipIf(skip !== undefined)("LAN harness", () => {
  let lan: Lan | undefined;
  afterEach(async () => {
    await lan?.destroy();
    lan = undefined;
    await stopAll();
  });

  it("connects hosts through the hub's bridge; a cut link loses packets (timeout, not refusal) until restored", async () => {
    lan = await createLan(["a", "b"]);
    const a = lan.host("a");
    const b = lan.host("b");
    expect(a.address).not.toBe(b.address);
    const { ports } = await startServers({ ns: a.ns, host: "0.0.0.0" });
    const port = ports[0]!;

    // From the hub, and from the other host.
    expect((await measureConnects(lan.hub, port, { host: a.address, timeout: 3000 }))[0]).toMatchObject({
      ok: true,
    });
    expect((await measureConnects(b.ns, port, { host: a.address, timeout: 3000 }))[0]).toMatchObject({
      ok: true,
    });
    // A host reaches the hub too (the hub is a machine on the segment).
    const { stdout } = await b.ns.exec("ip", ["route", "get", HUB_ADDRESS]);
    expect(stdout).toContain("dev eth0");

    await lan.cut("a");
    const [cut] = await measureConnects(lan.hub, port, { host: a.address, timeout: 1500 });
    expect(cut).toMatchObject({ ok: false, code: "ETIMEDOUT" });
    await lan.restore("a");
    // The bridge port needs a moment to forward again (no STP: it is immediate, give slack).
    let back = false;
    for (let i = 0; i < 20 && !back; i++) {
      back = (await measureConnects(lan.hub, port, { host: a.address, timeout: 1000 }))[0]!.ok;
    }
    expect(back).toBe(true);

    const names = [lan.hub.name, a.ns.name, b.ns.name];
    await lan.destroy();
    lan = undefined;
    for (const n of names) expect(listNamespaces()).not.toContain(n);
  });
});
