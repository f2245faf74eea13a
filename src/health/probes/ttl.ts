import { z } from "zod";
import { duration } from "../../config/schema.ts";
import type { Clock } from "../../util/clock.ts";
import { formatMs } from "../../util/format.ts";
import type { CheckStatus, Probe, ProbeContext, ProbeOutcome } from "../types.ts";
import type { ProbeType } from "./registry.ts";

/**
 * `ttl`: the service reports in (Consul's TTL check) instead of being probed. Each report —
 * pass, warn or fail, through `engine.report(target, check, status, message)` — answers the
 * attempt that is waiting; an attempt that gets no report within `ttl` fails with kind
 * `timeout`. The engine runs passive attempts back to back with the ttl as a fixed timeout,
 * so the check fails `ttl` after the last report (or after it started, if none came).
 *
 * A report that arrives between attempts is kept (the latest one) and answers the next
 * attempt at once, unless it is already older than `ttl` when that attempt starts.
 */
export const ttlSchema = z
  .object({
    /** Longest silence before the check fails, ms or "30s". A service should report well
     *  within it (every ttl/3, say): a shorter ttl notices a dead service sooner and turns
     *  a late report into a failure. */
    ttl: duration.refine((v) => v > 0, { message: "must be greater than 0" }),
  })
  .strict();

export type TtlSpec = z.infer<typeof ttlSchema>;

interface Held {
  outcome: ProbeOutcome;
  /** Monotonic ms when it arrived; undefined before the first attempt gave us a clock. */
  at: number;
}

function reported(status: CheckStatus, message: string | undefined): ProbeOutcome {
  const outcome: ProbeOutcome = { status, message: message ?? `reported ${status}` };
  // The service itself says it is unwell: no better kind than `protocol` fits.
  if (status !== "pass") outcome.kind = "protocol";
  return outcome;
}

export class TtlProbe implements Probe {
  /** Resolves the attempt that is waiting, if any. */
  private waiting: ((outcome: ProbeOutcome) => void) | undefined;
  /** The latest report that arrived while no attempt was waiting. */
  private held: Held | undefined;
  constructor(
    private readonly spec: TtlSpec,
    private readonly clock: Clock,
  ) {}

  run(ctx: ProbeContext): Promise<ProbeOutcome> {
    const { clock, signal } = ctx;
    const held = this.held;
    this.held = undefined;
    if (held && clock.now() - held.at < this.spec.ttl) {
      return Promise.resolve(held.outcome);
    }
    const missed = (): ProbeOutcome => ({
      status: "fail",
      kind: "timeout",
      message: `no report within ${formatMs(this.spec.ttl)}`,
    });
    if (signal.aborted) return Promise.resolve(missed());
    return new Promise<ProbeOutcome>((resolve) => {
      const deliver = (outcome: ProbeOutcome) => {
        signal.removeEventListener("abort", onAbort);
        if (this.waiting === deliver) this.waiting = undefined;
        resolve(outcome);
      };
      const onAbort = () => deliver(missed());
      // Attempts are sequential; should an older one still wait, it gives way to this one.
      this.waiting?.(missed());
      this.waiting = deliver;
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  report(status: CheckStatus, message?: string): void {
    const outcome = reported(status, message);
    if (this.waiting) this.waiting(outcome);
    else this.held = { outcome, at: this.clock.now() };
  }

  close(): void {
    this.held = undefined;
  }
}

export const ttlProbe: ProbeType<TtlSpec> = {
  type: "ttl",
  schema: ttlSchema,
  passive: true,
  oneShot: false,
  create: (spec, { clock }) => new TtlProbe(spec, clock),
  describe: (spec) => `ttl ${formatMs(spec.ttl)}`,
  /** One missed report is a failure and one report a recovery (Consul's TTL); the ttl is
   *  the attempt's timeout, never stretched; and the time spent waiting for a report is not
   *  a latency, so it never makes the target "slow". */
  settings: (spec) => ({
    fall: 1,
    rise: 1,
    patience: false,
    slowThreshold: 0,
    timeout: { mode: "fixed", initial: spec.ttl, min: spec.ttl, max: spec.ttl },
  }),
};
