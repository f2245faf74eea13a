import { monitorEventLoopDelay } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { type ParseArgsConfig, parseArgs } from "node:util";
import { PROFILE_NAMES, type ProfileName } from "../../src/config/profiles.ts";
import { resolveConfig } from "../../src/config/resolve.ts";
import { HealthEngine } from "../../src/health/engine.ts";
import { defaultRegistry } from "../../src/health/probes/index.ts";
import type { CheckResult, Transition } from "../../src/health/types.ts";

type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig["options"]>;

/**
 * What the watcher children (bench/lib/detection-watcher.ts, bench/lib/false-positive-watcher.ts)
 * share: HealthEngines built as `lifeline monitor` builds them (resolveConfig + defaultRegistry)
 * in a profile, whose targets the parent adds and removes as a hot reload would
 * (`engine.apply`); a `state` line per transition; the `watch` command; a `tick` line with the
 * event-loop delay every 5 s; and the exit when stdin closes or on SIGTERM/SIGINT.
 */

export const write = (obj: unknown) => process.stdout.write(`${JSON.stringify(obj)}\n`);

/**
 * The watcher's flags: `--profile lan|wan|classic` (default lan), `--engine-per-target`, and
 * `options` (not strict: the parent's run marker is passed too). An unknown profile exits 2.
 */
export function watcherArgs<T extends ParseArgsOptionsConfig>(name: string, options: T) {
  const { values } = parseArgs({
    options: {
      ...options,
      profile: { type: "string", default: "lan" },
      "engine-per-target": { type: "boolean", default: false },
    },
    strict: false,
  });
  const profile = String(values.profile) as ProfileName;
  if (!PROFILE_NAMES.includes(profile)) {
    process.stderr.write(`${name}: unknown profile ${profile}\n`);
    process.exit(2);
  }
  return { profile, perTarget: values["engine-per-target"] === true, values };
}

/**
 * The engines of the watched targets: one for all (targets applied to it as a reload would),
 * or one per target (started on add, stopped on remove) — for `classic`, whose sequential
 * loop would otherwise let a target that hangs delay every other target's check.
 */
export class WatchedEngines {
  private readonly registry = defaultRegistry();
  private readonly addresses = new Map<string, string>();
  private readonly engines = new Map<string, HealthEngine>();
  private readonly shared: HealthEngine | undefined;

  constructor(
    private readonly profile: ProfileName,
    perTarget: boolean,
    /** Merged into every engine's configuration (such as `monitor: {...}`). */
    private readonly extraConfig: Record<string, unknown>,
    private readonly onResult: (r: CheckResult) => void,
  ) {
    this.shared = perTarget ? undefined : this.newEngine([]);
  }

  has(id: string): boolean {
    return this.addresses.has(id);
  }

  /** Watches `address` as target `id`; throws (and forgets it) if the configuration is refused. */
  add(id: string, address: string): void {
    this.addresses.set(id, address);
    try {
      if (this.shared) this.shared.apply(this.config(this.addresses.keys()));
      else this.engines.set(id, this.newEngine([id]));
    } catch (err) {
      this.addresses.delete(id);
      throw err;
    }
  }

  remove(id: string): void {
    this.addresses.delete(id);
    if (this.shared) this.shared.apply(this.config(this.addresses.keys()));
    else {
      void this.engines.get(id)?.stop();
      this.engines.delete(id);
    }
  }

  async stop(): Promise<void> {
    await Promise.all([this.shared, ...this.engines.values()].map((e) => e?.stop()));
  }

  private config(ids: Iterable<string>) {
    return resolveConfig(
      {
        profile: this.profile,
        log: { level: "silent" },
        ...this.extraConfig,
        targets: [...ids].map((id) => ({ id, address: this.addresses.get(id)! })),
      },
      this.registry,
    );
  }

  private newEngine(ids: Iterable<string>): HealthEngine {
    const engine = new HealthEngine(this.config(ids), { registry: this.registry });
    engine.on("state", (t: Transition) => {
      write({
        type: "state",
        id: t.target,
        from: t.from,
        to: t.to,
        at: t.at,
        kind: t.kind,
        errno: t.errno,
        reason: t.reason,
      });
    });
    engine.on("result", this.onResult);
    engine.start();
    return engine;
  }
}

export type Command = Record<string, unknown>;

/**
 * Writes the `ready` line (`{"type":"ready","pid",...ready}`) and serves the parent's commands,
 * one JSON object a line on stdin: `{"cmd":"watch","id","address"}` (answered with `watching`
 * or an `error`; `onWatch` is told of each new target), and whatever `onCommand` handles
 * (it returns false for a command it does not know). Writes a `tick` line every 5 s; exits 0
 * once the engines have stopped, when stdin closes or on SIGTERM/SIGINT.
 */
export function serveCommands(opts: {
  engines: WatchedEngines;
  ready: Record<string, unknown>;
  onWatch?: (id: string) => void;
  onCommand: (cmd: Command) => boolean;
}): void {
  const { engines } = opts;
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  write({ type: "ready", pid: process.pid, ...opts.ready });

  const ticker = setInterval(() => {
    write({ type: "tick", lag: delay.max / 1e6 });
    delay.reset();
  }, 5000);

  const watch = (cmd: Command) => {
    const id = String(cmd.id);
    if (engines.has(id)) {
      write({ type: "error", message: `already watching ${id}` });
      return;
    }
    try {
      engines.add(id, String(cmd.address));
    } catch (err) {
      write({ type: "error", message: `cannot watch ${id}: ${(err as Error).message}` });
      return;
    }
    opts.onWatch?.(id);
    write({ type: "watching", id });
  };

  const onLine = (line: string) => {
    let cmd: Command;
    try {
      cmd = JSON.parse(line);
    } catch {
      write({ type: "error", message: `not JSON: ${line}` });
      return;
    }
    if (cmd.cmd === "watch") watch(cmd);
    else if (!opts.onCommand(cmd)) write({ type: "error", message: `unknown command ${String(cmd.cmd)}` });
  };

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    clearInterval(ticker);
    await engines.stop();
    process.exit(0);
  };

  const lines = createInterface({ input: process.stdin });
  lines.on("line", onLine);
  lines.on("close", () => void stop());
  process.stdin.on("error", () => void stop());
  process.on("SIGTERM", () => void stop());
  process.on("SIGINT", () => void stop());
}
