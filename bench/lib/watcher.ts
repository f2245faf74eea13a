import { childEnv, guard, inNamespace, type NodeChild, runMarker, spawnNode } from "./children.ts";

/**
 * The parent's side of a watcher child (bench/lib/detection-watcher.ts,
 * bench/lib/false-positive-watcher.ts; both built on bench/lib/watcher-engines.ts): a monitor
 * process whose targets this process adds by commands on its stdin, and whose transitions it
 * follows on its stdout. Each benchmark extends it with the commands and lines of its own.
 */

/** A `state` line of a watcher: one transition of one target. */
export interface StateLine {
  id: string;
  from: string;
  to: string;
  /** Wall-clock ms of the transition (the engine's Date.now()). */
  at: number;
  kind?: string;
  errno?: string;
  reason: string;
}

/** A monitor variant: how a watcher child judges its targets. */
export interface MonitorVariant {
  label: string;
  profile: "lan" | "classic";
  /** An engine per target instead of one for all (`--engine-per-target`): for `classic`, whose
   *  sequential loop would otherwise let one hanging target delay every other's check. */
  enginePerTarget: boolean;
  /** `monitor.localHealth.enabled: false` (`--local-health-off`: stalls neither measured nor
   *  discounted; bench/lib/false-positive-watcher.ts only). */
  localHealthOff?: boolean;
  /** The targets' address scheme: `lifeline` (the heartbeat probe) or `tcp` (a connect check). */
  scheme: "lifeline" | "tcp";
}

/** The variants bench/detection.ts and bench/false-positives.ts compare. */
export const MONITOR_VARIANTS = {
  /** The heartbeat probe with its defaults, in the default `lan` profile. */
  heartbeat: { label: "lan + heartbeat", profile: "lan", enginePerTarget: false, scheme: "lifeline" },
  /** A tcp connect check with the `lan` defaults. */
  tcp: { label: "lan + tcp", profile: "lan", enginePerTarget: false, scheme: "tcp" },
  /** The same check under `--profile classic`, the seed's monitor, with an engine per target. */
  classic: { label: "classic", profile: "classic", enginePerTarget: true, scheme: "tcp" },
} as const satisfies Record<string, MonitorVariant>;

export interface WatcherSpec {
  /** The child's name, in messages. */
  name: string;
  /** The watcher script. */
  script: string;
  variant: MonitorVariant;
  /** Further arguments for the script. */
  args?: string[];
  runId: string;
  /** Run it in this network namespace (undefined: on the host). */
  ns: { name: string } | undefined;
  /** The child's pid is added here (for cleanup and leftovers). */
  pids: number[];
  /** Where the child's `error` lines are reported. */
  log: (line: string) => void;
}

export class WatcherProcess {
  readonly child: NodeChild;
  readonly states: StateLine[] = [];
  /** Resolves once the child is ready for commands; rejects if it exits first or after 60 s. */
  readonly ready: Promise<void>;

  readonly variantInfo: MonitorVariant;

  constructor(spec: WatcherSpec) {
    this.variantInfo = spec.variant;
    let onReady: () => void = () => {};
    const ready = new Promise<void>((r) => {
      onReady = r;
    });
    const { variant } = spec;
    const args = [
      "--profile",
      variant.profile,
      ...(variant.enginePerTarget ? ["--engine-per-target"] : []),
      ...(variant.localHealthOff ? ["--local-health-off"] : []),
      ...(spec.args ?? []),
      runMarker(spec.runId),
    ];
    this.child = spawnNode(spec.name, spec.script, args, {
      env: childEnv(),
      ...inNamespace(spec.ns),
      onLine: (msg) => {
        if (msg.type === "ready") onReady();
        else if (msg.type === "state") {
          const s = msg as unknown as StateLine;
          this.states.push(s);
          this.onState(s);
        } else if (msg.type === "error") spec.log(`${this.child.name}: ${String(msg.message)}`);
        else this.onMessage(msg);
      },
    });
    spec.pids.push(this.child.pid);
    this.ready = guard(ready, this.child, 60_000, "ready");
  }

  /** Called after each `state` line has been added to `states`. */
  protected onState(_s: StateLine): void {}

  /** Called with every line other than `ready`, `state` and `error`. */
  protected onMessage(_msg: Record<string, unknown>): void {}

  protected send(cmd: Record<string, unknown>): void {
    this.child.child.stdin?.write(`${JSON.stringify(cmd)}\n`);
  }

  /** Starts watching `hostPort` as target `id`, with the variant's probe. */
  watch(id: string, hostPort: string): void {
    this.send({ cmd: "watch", id, address: `${this.variantInfo.scheme}://${hostPort}` });
  }
}
