import { afterEach, describe, expect, it } from "vitest";
import { createClient, type LifelineClient } from "../../src/client/client.ts";
import { echoApp } from "../../src/node/apps/echo.ts";
import { LifelineNode } from "../../src/node/node.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import type { Store } from "../../src/store/types.ts";

/**
 * A resume raced by the client must not fence its own winner (found by
 * test/client/spread.test.ts, where about half of 500 clients were moved twice).
 *
 * The client resumes its session on node X; X's TCP connection is up but its claim of the
 * session in the store is slow (a herd of clients resuming at once), so after 4 × raceDelay
 * the client races node Y, which answers first. The client adopts Y and aborts X. X's HELLO
 * handling goes on with its claim after the connection closed; before the fix it took the
 * session (a higher epoch) and fenced Y, and kept the session with a dead connection. Now
 * every HELLO presents the epoch the client last saw, the store claims only that epoch (one
 * winner per race), and a claim that lands after its connection closed is let go at once.
 */
const nodes: LifelineNode[] = [];
let client: LifelineClient | undefined;
afterEach(async () => {
  await client?.close({ timeout: 0 });
  client = undefined;
  for (const n of nodes.splice(0)) await n.stop();
});

/** The same store, with `claim` taking `delay` ms longer (a node whose store is busy). */
function slowClaims(store: Store, delay: number, claims: string[]): Store {
  return new Proxy(store, {
    get(target, prop) {
      if (prop === "claim") {
        return async (...args: Parameters<Store["claim"]>) => {
          await new Promise((r) => setTimeout(r, delay));
          const r = await target.claim(...args);
          claims.push(`${args[1]} epoch ${r?.epoch}`);
          return r;
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

describe("connect race on resume", () => {
  it("the attempt a race aborted does not claim the session after the winner", async () => {
    const store = new MemoryStore();
    const claims: string[] = [];
    const start = async (id: string, s: Store) => {
      const n = new LifelineNode({ id, port: 0, store: s, app: echoApp });
      await n.start();
      nodes.push(n);
      return n;
    };
    const a = await start("A", store);
    const x = await start("X", slowClaims(store, 1500, claims)); // claims take 1.5 s
    const y = await start("Y", slowClaims(store, 0, claims));
    // Constant random: equal weights keep the given order, so after A the client tries X, then Y.
    client = createClient({ servers: [a.address, x.address, y.address], random: () => 0.5 });
    const events: string[] = [];
    const t0 = Date.now();
    const at = () => `${Date.now() - t0} ms`;
    client.on("connected", (e) => events.push(`${at()} connected ${e.node} resumed=${e.resumed}`));
    client.on("disconnected", (e) => events.push(`${at()} disconnected ${e.node} ${e.error?.code ?? ""}`));
    await client.connect();
    const session = client.status().sessionId;
    expect(new TextDecoder().decode(await client.send("one"))).toBe("one");

    await a.stop(); // the client resumes: X first (slow claim), Y raced after 4 × raceDelay
    await new Promise<void>((resolve) => client!.once("connected", () => resolve()));
    expect(client.status()).toMatchObject({ node: "Y", sessionId: session });
    await new Promise((r) => setTimeout(r, 1000)); // X's claim lands meanwhile (at ~1.5 s)
    const whileOnY = await store.getSession(session!);
    const xHeld = x.stats().sessions;
    const decode = (b: Uint8Array) => new TextDecoder().decode(b);
    expect(decode(await client.send("two"))).toBe("two"); // answered (after a second move, today)
    await new Promise((r) => setTimeout(r, 2000)); // the second resume's raced X claim lands too
    expect(decode(await client.send("three"))).toBe("three");
    console.log(
      `race on resume: ${events.join("; ")}; claims: ${claims.join(", ")}; while the client was on Y ` +
        `the store said owner ${whileOnY?.owner} epoch ${whileOnY?.epoch} and X held ${xHeld} session(s)`,
    );
    // What should hold: the client stays on the node that won the race, which owns the session.
    expect(events.filter((e) => e.includes("disconnected Y"))).toEqual([]);
    expect(whileOnY?.owner).toBe("Y");
    expect(xHeld).toBe(0);
  }, 15_000);
});
