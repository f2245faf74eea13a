import type { z } from "zod";
import type { Clock } from "../../util/clock.ts";
import type { CheckSettings } from "../settings.ts";
import type { Probe } from "../types.ts";

/**
 * A kind of check. Each lives in its own file and registers here; adding one means writing
 * `run` and a schema for its fields — nothing in the engine changes.
 */
export interface ProbeType<S = Record<string, unknown>> {
  /** Name used as `type:` in configuration. */
  readonly type: string;
  /** Validates the probe's own fields (the common ones — name, critical, interval... — are
   *  removed before it sees them). Error paths name the field. */
  readonly schema: z.ZodType<S>;
  create(spec: S, context: ProbeCreateContext): Probe;
  /** One line for people: "tcp 10.0.0.1:6379 send/expect". */
  describe(spec: S): string;
  /** Attempts run back to back, each waiting for the target to report in (ttl) or to
   *  stream (heartbeat); no in-flight slot, no interval, no latency estimate. */
  readonly passive?: boolean;
  /** Can run once, as `lifeline check` does. Default true; false for ttl. */
  readonly oneShot?: boolean;
  /** Settings this kind needs whatever the profile says (a ttl's timeout is its ttl). They
   *  apply over the profile and the defaults, and under what the check itself sets. */
  settings?(
    spec: S,
  ): Partial<Omit<CheckSettings, "timeout">> & { timeout?: Partial<CheckSettings["timeout"]> };
  /** Turns a command-line TARGET ("tls://host:443") into this probe's fields, or undefined
   *  when the string is not for this probe. */
  fromTarget?(target: string): S | undefined;
}

/** What a probe may keep from the engine that creates it. */
export interface ProbeCreateContext {
  clock: Clock;
  /** How long the monitor itself was stalled in [start, end] (ms), for probes that keep
   *  their own timers (heartbeats): silence the monitor caused is not the target's. */
  stalledDuring(start: number, end: number): number;
}

export interface CreatedProbe {
  probe: Probe;
  passive: boolean;
  oneShot: boolean;
  description: string;
}

export class ProbeRegistry {
  private readonly types = new Map<string, ProbeType>();

  register<S>(type: ProbeType<S>): this {
    this.types.set(type.type, type as unknown as ProbeType);
    return this;
  }

  get(type: string): ProbeType | undefined {
    return this.types.get(type);
  }

  names(): string[] {
    return [...this.types.keys()];
  }

  create(type: string, spec: Record<string, unknown>, context: ProbeCreateContext): CreatedProbe {
    const t = this.types.get(type);
    if (!t) throw new Error(`unknown check type "${type}" (known: ${this.names().join(", ")})`);
    return {
      probe: t.create(spec, context),
      passive: t.passive ?? false,
      oneShot: t.oneShot ?? true,
      description: t.describe(spec),
    };
  }

  /** The first probe type that understands a TARGET string. */
  parseTarget(target: string): { type: string; spec: Record<string, unknown> } | undefined {
    for (const t of this.types.values()) {
      const spec = t.fromTarget?.(target);
      if (spec) return { type: t.type, spec };
    }
    return undefined;
  }
}
