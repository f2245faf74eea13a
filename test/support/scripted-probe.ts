import { z } from "zod";
import { resolveConfig } from "../../src/config/resolve.ts";
import { type EngineEvent, HealthEngine } from "../../src/health/engine.ts";
import { ProbeRegistry } from "../../src/health/probes/registry.ts";
import type { Probe, ProbeContext, ProbeOutcome } from "../../src/health/types.ts";
import { seededRandom } from "../../src/util/clock.ts";
import { FakeClock } from "../../src/util/fake-clock.ts";
import type { Logger } from "../../src/util/logger.ts";

/** What a scripted target does on one attempt: answer after `after` ms, or never. */
export type Step = { after: number; outcome: ProbeOutcome } | "hang" | "throw";

export const pass = (after = 1): Step => ({ after, outcome: { status: "pass", message: "ok" } });
export const refuse = (after = 1): Step => ({
  after,
  outcome: { status: "fail", kind: "refused", errno: "ECONNREFUSED", message: "connect ECONNREFUSED" },
});
export const warn = (after = 1): Step => ({
  after,
  outcome: { status: "warn", kind: "overloaded", message: "busy" },
});

/** A probe whose behaviour the test sets at any moment, on fake time. */
export class ScriptedProbe implements Probe {
  behaviour: (attempt: number, now: number) => Step = () => pass();
  attempts = 0;
  inFlight = 0;
  maxInFlight = 0;
  starts: number[] = [];

  run(ctx: ProbeContext): Promise<ProbeOutcome> {
    const step = this.behaviour(this.attempts++, ctx.clock.now());
    this.starts.push(ctx.clock.now());
    if (step === "throw") throw new Error("probe bug");
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    return new Promise((resolve) => {
      let done = false;
      const finish = (o: ProbeOutcome) => {
        if (done) return;
        done = true;
        this.inFlight--;
        resolve(o);
      };
      const timer = step === "hang" ? undefined : ctx.clock.timeout(step.after, () => finish(step.outcome));
      ctx.signal.addEventListener("abort", () => {
        timer?.cancel();
        finish({ status: "fail", kind: "timeout", message: "aborted" });
      });
    });
  }
}

export interface Harness {
  clock: FakeClock;
  engine: HealthEngine;
  probes: Map<string, ScriptedProbe>;
  events: EngineEvent[];
  states(target: string): string[];
  /** [time, to] of each transition of a target. */
  timeline(target: string): Array<[number, string]>;
}

/**
 * An engine on fake time whose targets are scripted probes. `config` is a configuration
 * object as in a file; each target's check `type: scripted` gets its own probe, keyed by
 * target id.
 */
export function harness(config: Record<string, unknown>, seed = 1, logger?: Logger): Harness {
  const clock = new FakeClock();
  const probes = new Map<string, ScriptedProbe>();
  const registry = new ProbeRegistry().register({
    type: "scripted",
    schema: z.object({ key: z.string() }).strict(),
    create: (spec) => {
      const p = new ScriptedProbe();
      probes.set(spec.key, p);
      return p;
    },
    describe: (spec) => `scripted ${spec.key}`,
  });
  const resolved = resolveConfig(config, registry);
  const engine = new HealthEngine(resolved, {
    registry,
    clock,
    random: seededRandom(seed),
    ...(logger ? { logger } : {}),
  });
  const events: EngineEvent[] = [];
  engine.on("state", (transition) => events.push({ type: "state", transition }));
  engine.on("result", (result) => events.push({ type: "result", result }));
  const transitions = (target: string) =>
    events.flatMap((e) => (e.type === "state" && e.transition.target === target ? [e.transition] : []));
  return {
    clock,
    engine,
    probes,
    events,
    states: (target) => transitions(target).map((t) => t.to),
    timeline: (target) => transitions(target).map((t) => [t.at - clock.wall() + clock.now(), t.to]),
  };
}

/** A target config with one scripted check. */
export function scripted(id: string, extra: Record<string, unknown> = {}) {
  return { id, checks: [{ type: "scripted", key: id, ...extra }] };
}
