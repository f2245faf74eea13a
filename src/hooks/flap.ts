import type { TargetState, Transition } from "../health/types.ts";
import type { FlapOptions } from "./schema.ts";

/**
 * Flap damping: a target that keeps changing state is reported as "flapping" once, then
 * left alone until it settles, instead of sending a notification on every change.
 *
 * The rule, per target, on monotonic time:
 *
 * 1. Every change the hook would notify (it passes the hook's `to` filter and is not an
 *    initial change from `unknown`) is *counted*, with its time.
 * 2. When `threshold` counted changes fall within the last `window` ms, the change that
 *    reached the threshold is reported as a `flapping` notification (instead of a `state`
 *    one), and the target becomes *flapping*: its later changes are suppressed.
 *    (The `threshold - 1` changes before it were already notified normally: detecting
 *    flapping without delaying every notification cannot avoid that.)
 * 3. A flapping target that has made no change at all — counted or not — for `quiet` ms is
 *    *stable*: one `stable` notification is sent carrying its current state (`from` is the
 *    state last notified, the flapping notice's `to`), its count starts again from zero,
 *    and its changes are notified normally again.
 *
 * `FlapDamper` holds only that logic: time is passed in, so it is tested with tables of
 * cases; the dispatcher asks `nextDeadline()` when to call `settle()`.
 */

/** What to do with one change. */
export type FlapDecision =
  /** Notify it as a `state` event. */
  | "deliver"
  /** It made the target flapping: send one `flapping` notification for it. */
  | "flapping"
  /** The target is flapping: a change that would have been notified is not. */
  | "suppress"
  /** Not a change this hook notifies (filtered out); nothing to send. */
  | "ignore";

/** A flapping target that has settled: send `stable`. */
export interface StableNotice {
  target: string;
  /** The state last notified for the target (the `to` of its flapping notification). */
  from: TargetState;
  /** The state it has held for `quiet` ms. */
  to: TargetState;
  /** The last change it made (for kind, errno, reason). */
  last: Transition;
  /** Changes it made while flapping, the one that made it flapping included. */
  changes: number;
  /** Changes not notified because it was flapping. */
  suppressed: number;
  /** Monotonic time it became flapping, ms. */
  since: number;
}

interface Entry {
  /** Times of recent counted changes, oldest first, at most `threshold` of them. */
  times: number[];
  flapping: boolean;
  /** While flapping: */
  since: number;
  lastChange: number;
  notified: TargetState;
  last: Transition | undefined;
  changes: number;
  suppressed: number;
}

export class FlapDamper {
  private readonly entries = new Map<string, Entry>();
  private lastSweep = Number.NEGATIVE_INFINITY;

  constructor(readonly options: FlapOptions) {}

  /**
   * Accounts for one change of `t.target` at monotonic time `now`. `counted` says whether it
   * passes the hook's filters (a change the hook would notify).
   */
  observe(t: Transition, counted: boolean, now: number): FlapDecision {
    const { enabled, window, threshold } = this.options;
    this.sweep(now);
    let e = this.entries.get(t.target);
    if (e?.flapping) {
      e.lastChange = now;
      e.last = t;
      e.changes++;
      if (!counted) return "ignore";
      e.suppressed++;
      return "suppress";
    }
    if (!counted) return "ignore";
    if (!enabled) return "deliver";
    if (!e) {
      e = {
        times: [],
        flapping: false,
        since: 0,
        lastChange: now,
        notified: t.to,
        last: undefined,
        changes: 0,
        suppressed: 0,
      };
      this.entries.set(t.target, e);
    }
    e.times = e.times.filter((at) => at > now - window);
    e.times.push(now);
    if (e.times.length < threshold) return "deliver";
    Object.assign(e, {
      times: [],
      flapping: true,
      since: now,
      lastChange: now,
      notified: t.to,
      last: t,
      changes: 1,
      suppressed: 0,
    });
    return "flapping";
  }

  /** Ends flapping for every target quiet for `quiet` ms by `now`; each gets a notice. */
  settle(now: number): StableNotice[] {
    const out: StableNotice[] = [];
    for (const [target, e] of this.entries) {
      if (!e.flapping || now - e.lastChange < this.options.quiet) continue;
      this.entries.delete(target);
      out.push({
        target,
        from: e.notified,
        to: e.last!.to,
        last: e.last!,
        changes: e.changes,
        suppressed: e.suppressed,
        since: e.since,
      });
    }
    this.sweep(now);
    return out;
  }

  /** The earliest monotonic time at which `settle` has something to report, if any. */
  nextDeadline(): number | undefined {
    let next: number | undefined;
    for (const e of this.entries.values()) {
      if (!e.flapping) continue;
      const due = e.lastChange + this.options.quiet;
      if (next === undefined || due < next) next = due;
    }
    return next;
  }

  isFlapping(target: string): boolean {
    return this.entries.get(target)?.flapping ?? false;
  }

  /** Targets flapping now. */
  flapping(): string[] {
    return [...this.entries].filter(([, e]) => e.flapping).map(([id]) => id);
  }

  /** Entries kept (for tests: memory stays bounded by the targets changing recently). */
  size(): number {
    return this.entries.size;
  }

  /** Forgets non-flapping targets whose counted changes are all older than `window` (at most
   *  once per window, so a busy monitor does not scan every target on every change). */
  private sweep(now: number): void {
    if (now - this.lastSweep < this.options.window) return;
    this.lastSweep = now;
    for (const [target, e] of this.entries) {
      if (!e.flapping && (e.times.at(-1) ?? Number.NEGATIVE_INFINITY) <= now - this.options.window) {
        this.entries.delete(target);
      }
    }
  }
}
