import pc from "picocolors";
import { loadConfig } from "../config/load.ts";
import { UsageError } from "../errors.ts";
import { HealthEngine } from "../health/engine.ts";
import { defaultRegistry } from "../health/probes/index.ts";
import type { TargetSnapshot } from "../health/target.ts";
import type { TargetState } from "../health/types.ts";
import { type CliIO, EXIT } from "./io.ts";
import { type CommonFlags, flagsToRaw } from "./options.ts";
import { colourState } from "./table.ts";

/** Exit code for a state: 0 healthy, 1 degraded, 2 down (or anything not known good). */
export function exitCodeFor(state: TargetState): number {
  switch (state) {
    case "healthy":
      return EXIT.ok;
    case "degraded":
    case "draining":
    case "recovering":
      return EXIT.degraded;
    default:
      return EXIT.down;
  }
}

/**
 * `lifeline check TARGET...`: one attempt per check, then exit with the worst state.
 * One-shot means no suspicion is possible: a failure is `down`. Timeouts are the profile's
 * longest (its patience), so a slow target shows as `degraded`, as it would in `monitor`.
 */
export async function runCheck(targets: string[], flags: CommonFlags, io: CliIO): Promise<number> {
  const registry = defaultRegistry();
  const { config } = loadConfig({
    registry,
    file: flags.config ?? io.env.LIFELINE_CONFIG,
    env: io.env,
    flags: flagsToRaw(flags),
    targets,
  });
  if (config.targets.length === 0)
    throw new UsageError("nothing to check: give TARGET arguments or a config file");
  for (const t of config.targets) {
    for (const c of t.checks) {
      const max = c.settings.timeout.max;
      c.settings = {
        ...c.settings,
        fall: 1,
        rise: 1,
        patience: false,
        timeout: { ...c.settings.timeout, mode: "fixed", initial: max },
      };
    }
  }
  const engine = new HealthEngine({ monitor: config.monitor, targets: config.targets }, { registry });
  await engine.checkOnce();
  await engine.stop();
  const snaps = engine.snapshot();
  if (flags.json) io.stdout.write(`${JSON.stringify(snaps.map(summarise), null, 2)}\n`);
  else for (const s of snaps) io.stdout.write(`${line(s, io.stdout.isTTY === true)}\n`);
  return Math.max(...snaps.map((s) => exitCodeFor(s.state)));
}

function summarise(s: TargetSnapshot) {
  return {
    id: s.id,
    state: s.state,
    reason: s.reason,
    kind: s.kind,
    checks: s.checks.map((c) => ({
      name: c.name,
      description: c.description,
      status: c.last?.status ?? null,
      kind: c.last?.kind ?? null,
      errno: c.last?.errno ?? null,
      message: c.last?.message ?? null,
      latency: c.last ? Math.round(c.last.latency * 1000) / 1000 : null,
      detail: c.last?.detail ?? null,
    })),
  };
}

function line(s: TargetSnapshot, colour: boolean): string {
  const state = s.state.padEnd(9);
  return `${colour ? colourState(s.state, state) : state} ${colour ? pc.bold(s.id) : s.id}  ${s.reason}`;
}
