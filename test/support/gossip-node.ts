import { gossipSetup, NodeGossip } from "../../src/cli/node-gossip.ts";
import { echoApp } from "../../src/node/apps/echo.ts";
import { LifelineNode } from "../../src/node/node.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { silentLogger } from "../../src/util/logger.ts";

/**
 * An in-process node that gossips (as `lifeline node --gossip 127.0.0.1:0 --join SEEDS
 * --gossip-preset local`), with an echo app and a memory store. `stop()` leaves the cluster
 * gracefully, then stops the node; tests register it for cleanup.
 */
export async function gossipNode(
  id: string,
  seeds: string[],
): Promise<{ node: LifelineNode; gossip: NodeGossip; stop(): Promise<void> }> {
  const node = new LifelineNode({ id, port: 0, store: new MemoryStore(), app: echoApp });
  await node.start();
  const setup = gossipSetup(
    { gossip: "127.0.0.1:0", join: seeds.join(","), gossipPreset: "local" },
    "127.0.0.1",
    {},
  )!;
  const gossip = await NodeGossip.start(node, setup, silentLogger);
  return {
    node,
    gossip,
    async stop() {
      await gossip.stop();
      await node.stop();
    },
  };
}
