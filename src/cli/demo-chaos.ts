import type { LocalCluster, LocalNode } from "./local-cluster.ts";

export type ChaosAction = "kill" | "freeze" | "restart";

export interface ChaosContext {
  cluster: LocalCluster;
  /** A line for the view's event pane. */
  event(text: string): void;
  /** Resolves when the demo stops: waits end early, killed nodes are not started again. */
  stopped: Promise<void>;
  isStopping(): boolean;
  /** Every node running and, for the monitor, healthy (or degraded): nothing is down. */
  settled(): boolean;
  /** The node the client is on: picked half of the time, so the client has to move. */
  clientNode(): string | undefined;
  random?: () => number;
}

/** Waits `ms`, or less if the demo stops first. */
function pause(ctx: ChaosContext, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
    ctx.stopped,
  ]).finally(() => clearTimeout(timer));
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** SIGKILL (a crash); started again on the same port a couple of seconds later. */
async function kill(ctx: ChaosContext, n: LocalNode, random: () => number): Promise<void> {
  ctx.event(`chaos: SIGKILL ${n.id} (pid ${n.pid}) — a crash`);
  await ctx.cluster.kill(n.id);
  await pause(ctx, 2000 + random() * 1000);
  if (ctx.isStopping()) return;
  await ctx.cluster.restart(n.id);
  ctx.event(`chaos: ${n.id} started again on port ${n.port} (pid ${n.pid})`);
}

/** SIGSTOP for a few seconds (its port still accepts connections; nothing answers), SIGCONT. */
async function freeze(ctx: ChaosContext, n: LocalNode, random: () => number): Promise<void> {
  const ms = 3000 + random() * 2000;
  ctx.event(`chaos: SIGSTOP ${n.id} (pid ${n.pid}) for ${secs(ms)} — frozen, silent`);
  ctx.cluster.freeze(n.id);
  await pause(ctx, ms);
  ctx.cluster.thaw(n.id);
  ctx.event(`chaos: SIGCONT ${n.id}`);
}

/** SIGTERM (GOAWAY to its clients, drain, exit), then started again on the same port. */
async function restart(ctx: ChaosContext, n: LocalNode): Promise<void> {
  ctx.event(`chaos: SIGTERM ${n.id} (pid ${n.pid}) — graceful restart`);
  await ctx.cluster.terminate(n.id);
  if (ctx.isStopping()) return;
  await ctx.cluster.restart(n.id);
  ctx.event(`chaos: ${n.id} is back on port ${n.port} (pid ${n.pid})`);
}

/**
 * `lifeline demo --chaos`: every 3–6 s, kill, freeze or gracefully restart a random node
 * (the client's own node half of the time, so that failovers happen).
 * Never more than one node is impaired: each fault is undone before the next, and the next
 * waits until every node runs and the monitor sees none of them down.
 */
export async function runChaos(ctx: ChaosContext): Promise<void> {
  const random = ctx.random ?? Math.random;
  await pause(ctx, 2000 + random() * 1000);
  while (!ctx.isStopping()) {
    // A node whose restart failed, or that died on its own, is started again first.
    for (const n of ctx.cluster.nodes) {
      if (ctx.isStopping() || (n.state !== "killed" && n.state !== "stopped")) continue;
      try {
        await ctx.cluster.restart(n.id);
        ctx.event(`chaos: ${n.id} was down; started again (pid ${n.pid})`);
      } catch (err) {
        ctx.event(`chaos: cannot start ${n.id}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    // Settle first (a node that was just restarted may not be healthy yet), but not forever.
    const deadline = Date.now() + 15_000;
    while (!ctx.isStopping() && !ctx.settled() && Date.now() < deadline) await pause(ctx, 200);
    if (ctx.isStopping()) break;
    const up = ctx.cluster.nodes.filter((n) => n.state === "running");
    const current = up.find((n) => n.id === ctx.clientNode());
    const victim = current && random() < 0.5 ? current : up[Math.floor(random() * up.length)];
    if (victim && up.length === ctx.cluster.nodes.length) {
      const actions: ChaosAction[] = ["kill", "freeze", "restart"];
      const action = actions[Math.floor(random() * actions.length)]!;
      try {
        if (action === "kill") await kill(ctx, victim, random);
        else if (action === "freeze") await freeze(ctx, victim, random);
        else await restart(ctx, victim);
      } catch (err) {
        ctx.event(
          `chaos: ${action} ${victim.id} failed: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
    }
    await pause(ctx, 3000 + random() * 3000);
  }
}
