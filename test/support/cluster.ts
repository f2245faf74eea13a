import type { App } from "../../src/node/app.ts";
import { echoApp } from "../../src/node/apps/echo.ts";
import { LifelineNode } from "../../src/node/node.ts";
import type { NodeOptions } from "../../src/node/options.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import type { Store } from "../../src/store/types.ts";

/**
 * An in-process cluster for client tests: `n` nodes on loopback port 0 sharing one store,
 * each told about the others (so clients learn the cluster from TOPOLOGY).
 */
export class TestCluster {
  readonly nodes: LifelineNode[] = [];

  private constructor(
    readonly store: Store,
    private readonly app: App,
    private readonly extra: Partial<NodeOptions>,
  ) {}

  static async start(
    n: number,
    opts: { app?: App; store?: Store; node?: Partial<NodeOptions> } = {},
  ): Promise<TestCluster> {
    const c = new TestCluster(opts.store ?? new MemoryStore(), opts.app ?? echoApp, opts.node ?? {});
    for (let i = 0; i < n; i++) await c.add(`n${i + 1}`);
    return c;
  }

  async add(id: string, port = 0): Promise<LifelineNode> {
    const node = new LifelineNode({ id, port, store: this.store, app: this.app, ...this.extra });
    await node.start();
    const i = this.nodes.findIndex((x) => x.nodeId === id);
    if (i >= 0) this.nodes[i] = node;
    else this.nodes.push(node);
    this.announce();
    return node;
  }

  /** Tells every running node about the others (what the peer watcher does in production). */
  announce(): void {
    const running = this.nodes.filter((n) => n.state !== "stopped");
    for (const n of running) {
      n.setPeers(
        this.nodes
          .filter((p) => p !== n)
          .map((p) => ({
            id: p.nodeId,
            address: p.address,
            state: p.state === "stopped" ? "down" : p.state,
          })),
      );
    }
  }

  get addresses(): string[] {
    return this.nodes.map((n) => n.address);
  }

  byId(id: string): LifelineNode {
    const n = this.nodes.find((x) => x.nodeId === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Stops a node at once (connections closed, sessions released) and tells the others. */
  async stop(id: string): Promise<void> {
    await this.byId(id).stop();
    this.announce();
  }

  async close(): Promise<void> {
    for (const n of this.nodes) await n.stop();
    await this.store.close();
  }
}
