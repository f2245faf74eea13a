import { createSocket } from "node:dgram";
import { createServer } from "node:net";
import { join } from "node:path";
import type { MembershipConfig, MembershipPreset } from "../../src/membership/index.ts";
import {
  childEnv,
  inNamespace,
  type NodeChild,
  repoRoot,
  runMarker,
  spawnNode,
  stopChild,
} from "./children.ts";
import { killSerf, type SerfLogEvent, type SerfProcess, startSerf } from "./gossip-serf.ts";

/**
 * A cluster of five gossip members, of either system, for bench/gossip-vs-serf.ts: Lifeline's
 * (bench/lib/gossip-agent.ts children) or Serf's (`serf agent` children, bench/lib/gossip-serf.ts).
 * Each member's view of the others is kept from what it reports, with every verdict in `events`;
 * members can be signalled (SIGKILL, SIGSTOP, SIGCONT) and restarted under the same name and
 * port, joining the others.
 */

const AGENT = join(repoRoot, "bench", "lib", "gossip-agent.ts");

/** A member's state as one member sees it; Serf's `failed` is memberlist's `dead`. */
export type Verdict = "alive" | "suspect" | "failed" | "left";

export interface GossipEvent {
  observer: string;
  subject: string;
  state: Verdict;
  /** Date.now() of the verdict (Lifeline: the agent's; Serf: when its log line arrived). */
  at: number;
  /** A suspicion raised by the observer's own failed probe (not heard from another). */
  own?: boolean;
  /** Lifeline's reason for the change. */
  reason?: string;
}

export interface SystemSpec {
  /** Short key: `serf`, `lan`, `memberlist`... */
  key: string;
  /** As the tables show it. */
  label: string;
  kind: "serf" | "lifeline";
  /** Lifeline: the preset and its overrides. */
  preset?: MembershipPreset;
  overrides?: Partial<MembershipConfig>;
}

interface MemberProc {
  pid: number;
  /** Set once the process has exited. */
  gone: boolean;
  exited: Promise<number | string>;
  ready: Promise<void>;
  tail(): string[];
  kill(): Promise<void>;
  /** Lifeline: SIGTERM (the agent prints its counters), then SIGKILL. Serf: SIGKILL. */
  stop(): Promise<void>;
}

export interface Slot {
  index: number;
  name: string;
  port: number;
  rpcPort: number;
  proc: MemberProc | undefined;
  /** This member's view of the others (reset when it restarts). */
  view: Map<string, Verdict>;
  /** Starts so far. */
  starts: number;
}

export interface LagSample {
  member: string;
  at: number;
  lag: number;
}

export const CLUSTER_SIZE = 5;

/** A free port on 127.0.0.1 for both TCP and UDP (on the host, where ports are shared). */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const server = createServer();
    const port = await new Promise<number>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port));
    });
    const udp = createSocket("udp4");
    const ok = await new Promise<boolean>((resolve) => {
      udp.once("error", () => resolve(false));
      udp.bind(port, "127.0.0.1", () => resolve(true));
    });
    await new Promise<void>((r) => server.close(() => r()));
    if (ok) await new Promise<void>((r) => udp.close(() => r()));
    else udp.close();
    if (ok) return port;
  }
  throw new Error("no free port for TCP and UDP");
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

export class GossipCluster {
  readonly slots: Slot[];
  readonly events: GossipEvent[] = [];
  /** Lifeline agents' event-loop delay ticks (every 5 s). */
  readonly lags: LagSample[] = [];
  /** Lifeline agents' counters, printed when they are stopped with SIGTERM. */
  readonly counters: Array<Record<string, unknown>> = [];
  /** Serf: refutations of suspicions (or deaths) of themselves, as logged. */
  readonly refutations: Array<{ member: string; at: number; what: string }> = [];

  constructor(
    readonly spec: SystemSpec,
    ports: Array<{ port: number; rpcPort: number }>,
    private readonly ctx: {
      runId: string;
      ns: { name: string } | undefined;
      pids: number[];
      log: (line: string) => void;
    },
  ) {
    this.slots = ports.map((p, i) => ({
      index: i,
      name: `${spec.key}-${i + 1}`,
      port: p.port,
      rpcPort: p.rpcPort,
      proc: undefined,
      view: new Map(),
      starts: 0,
    }));
  }

  get label(): string {
    return this.spec.label;
  }

  address(slot: Slot): string {
    return `127.0.0.1:${slot.port}`;
  }

  /** The Lifeline members' configuration as the agents are given it (cluster name per system,
   *  so that no two benchmark clusters ever take each other's messages). */
  get lifelineOverrides(): Partial<MembershipConfig> {
    return { clusterName: `bench-${this.spec.key}`, ...(this.spec.overrides ?? {}) };
  }

  /** Starts the members one after another (the others join the first), then waits until every
   *  member sees every other alive. */
  async start(convergeMs = 60_000): Promise<void> {
    for (const slot of this.slots) {
      const seeds = slot.index === 0 ? [] : [this.address(this.slots[0]!)];
      this.launch(slot, seeds);
      await slot.proc!.ready;
    }
    await this.waitConverged(convergeMs);
  }

  private launch(slot: Slot, seeds: string[]): void {
    slot.view = new Map();
    slot.starts++;
    const proc = this.spec.kind === "serf" ? this.launchSerf(slot, seeds) : this.launchLifeline(slot, seeds);
    void proc.exited.then(() => {
      proc.gone = true;
    });
    slot.proc = proc;
    this.ctx.pids.push(proc.pid);
  }

  private launchLifeline(slot: Slot, seeds: string[]): MemberProc {
    let onReady: () => void = () => {};
    const ready = new Promise<void>((r) => {
      onReady = r;
    });
    const args = [
      "--id",
      slot.name,
      "--port",
      String(slot.port),
      "--preset",
      this.spec.preset ?? "lan",
      "--config",
      JSON.stringify(this.lifelineOverrides),
      ...(seeds.length > 0 ? ["--join", seeds.join(",")] : []),
      runMarker(this.ctx.runId),
    ];
    const child: NodeChild = spawnNode(`gossip agent ${slot.name}`, AGENT, args, {
      env: childEnv(),
      ...inNamespace(this.ctx.ns),
      onLine: (msg) => {
        if (msg.type === "ready") onReady();
        else if (msg.type === "member") {
          const state = msg.state === "dead" ? "failed" : (msg.state as Verdict);
          const subject = String(msg.id);
          const reason = String(msg.reason ?? "");
          if (slot.proc === proc) slot.view.set(subject, state);
          this.events.push({
            observer: slot.name,
            subject,
            state,
            at: Number(msg.at),
            ...(state === "suspect" ? { own: reason === `suspected by ${slot.name}` } : {}),
            reason,
          });
        } else if (msg.type === "tick")
          this.lags.push({ member: slot.name, at: Number(msg.at), lag: Number(msg.lag) });
        else if (msg.type === "counters") this.counters.push({ member: slot.name, ...msg });
        else if (msg.type === "error") this.ctx.log(`${slot.name}: ${String(msg.message)}`);
      },
    });
    const proc: MemberProc = {
      pid: child.pid,
      gone: false,
      exited: child.exited,
      ready: raceExit(ready, child.exited, 60_000, `gossip agent ${slot.name}`, () => child.stderrTail),
      tail: () => child.stderrTail,
      kill: async () => {
        await stopChild(child, "SIGKILL", 5000);
      },
      stop: async () => {
        // A stopped (SIGSTOP) process cannot act on SIGTERM: let it go on first.
        signal(child.pid, "SIGCONT");
        await stopChild(child, "SIGTERM", 3000);
      },
    };
    return proc;
  }

  private launchSerf(slot: Slot, seeds: string[]): MemberProc {
    let onReady: () => void = () => {};
    const ready = new Promise<void>((r) => {
      onReady = r;
    });
    const onEvent = (e: SerfLogEvent, at: number) => {
      if (e.kind === "refute") {
        this.refutations.push({ member: slot.name, at, what: e.what });
        return;
      }
      if (e.subject === slot.name) {
        if (e.kind === "join") onReady();
        return;
      }
      const state: Verdict =
        e.kind === "join"
          ? "alive"
          : e.kind === "failed"
            ? "failed"
            : e.kind === "leave"
              ? "left"
              : "suspect";
      // Serf logs its own failed probes, not the suspicion's end (a refutation): a suspect
      // line is an event, not a change of the member's view.
      if (state !== "suspect" && slot.proc === proc) slot.view.set(e.subject, state);
      this.events.push({
        observer: slot.name,
        subject: e.subject,
        state,
        at,
        ...(state === "suspect" ? { own: true } : {}),
      });
    };
    const s: SerfProcess = startSerf({
      name: slot.name,
      port: slot.port,
      rpcPort: slot.rpcPort,
      seeds,
      runId: this.ctx.runId,
      ns: this.ctx.ns,
      onEvent,
    });
    const proc: MemberProc = {
      pid: s.pid,
      gone: false,
      exited: s.exited,
      ready: raceExit(ready, s.exited, 30_000, `serf agent ${slot.name}`, () => s.stderrTail),
      tail: () => s.stderrTail,
      kill: () => killSerf(s),
      stop: () => killSerf(s),
    };
    return proc;
  }

  /** Sends `sig` to a member's process (by pid). */
  signal(slot: Slot, sig: NodeJS.Signals): void {
    if (slot.proc) signal(slot.proc.pid, sig);
  }

  /** SIGKILLs the member (stopped or not) and starts it again under its name and port, joining
   *  the others; resolves once it is up (not yet converged: see waitConverged). */
  async restart(slot: Slot): Promise<void> {
    if (slot.proc) {
      await slot.proc.kill();
      signal(slot.proc.pid, "SIGCONT");
    }
    const seeds = this.slots.filter((s) => s !== slot && s.proc).map((s) => this.address(s));
    this.launch(slot, seeds);
    await slot.proc!.ready;
  }

  /** Whether every running member sees every other member alive. */
  converged(): boolean {
    return this.slots.every((s) =>
      this.slots.every((o) => o === s || (s.proc !== undefined && s.view.get(o.name) === "alive")),
    );
  }

  /** Who does not see whom alive, for error messages. */
  disagreements(): string {
    const out: string[] = [];
    for (const s of this.slots)
      for (const o of this.slots)
        if (o !== s && s.view.get(o.name) !== "alive")
          out.push(`${s.name} sees ${o.name} ${s.view.get(o.name) ?? "unknown"}`);
    return out.join(", ");
  }

  /** Resolves once converged; rejects after `ms` (or if a member exits). */
  async waitConverged(ms: number, stop: () => boolean = () => false): Promise<number> {
    const start = Date.now();
    while (!this.converged()) {
      if (stop()) throw new Error("interrupted");
      const dead = this.slots.find((s) => s.proc?.gone);
      if (dead) throw new Error(`${dead.name} exited: ${dead.proc!.tail().slice(-3).join(" / ")}`);
      if (Date.now() - start > ms)
        throw new Error(`${this.label}: not converged within ${ms / 1000} s: ${this.disagreements()}`);
      await sleep(100);
    }
    return Date.now() - start;
  }

  /** Stops every member and starts the cluster again from scratch. */
  async reset(): Promise<void> {
    await this.stop(false);
    await this.start();
  }

  /** Stops every member (`graceful`: Lifeline agents get SIGTERM, so they print counters). */
  async stop(graceful = true): Promise<void> {
    await Promise.all(
      this.slots.map(async (s) => {
        if (!s.proc) return;
        await (graceful ? s.proc.stop() : s.proc.kill());
        s.proc = undefined;
      }),
    );
  }

  /** Verdicts about `subject` by the other members at or after `from`. */
  verdicts(subject: string, from: number): GossipEvent[] {
    return this.events.filter((e) => e.subject === subject && e.observer !== subject && e.at >= from);
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** `p`, rejecting when the process exits first or after `ms`. */
function raceExit<T>(
  p: Promise<T>,
  exited: Promise<number | string>,
  ms: number,
  what: string,
  tail: () => string[],
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const r = Promise.race([
    p,
    exited.then((code) => {
      throw new Error(`${what} exited (${code}) before it was ready: ${tail().slice(-5).join(" / ")}`);
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not ready within ${ms / 1000} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
  r.catch(() => {});
  return r;
}
