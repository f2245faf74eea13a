import type { Clock, Random, Timer } from "../util/clock.ts";
import { ThresholdDetector, type Verdict } from "./detectors/threshold.ts";
import type { Limiter } from "./limiter.ts";
import type { LocalHealth } from "./local-health.ts";
import { errorOutcome } from "./probes/common.ts";
import { type RttState, rttInit, rttSample, rttTimeout, rttTimeoutFor } from "./rtt.ts";
import { nextDelay } from "./schedule.ts";
import type { CheckSettings } from "./settings.ts";
import { type CheckView, nextSlow } from "./state.ts";
import type { CheckResult, Probe, ProbeOutcome } from "./types.ts";

export interface RunnerDeps {
  clock: Clock;
  random: Random;
  limiter: Limiter;
  local: LocalHealth;
  /** Every result, counted or not, goes here (history, events). */
  onResult(result: CheckResult): void;
  /** Called after anything that may change the target's state. */
  onChange(): void;
  /** A failure on the monitor's side (out of descriptors...): `streak` in a row so far. */
  onLocalFailure(result: CheckResult, streak: number): void;
}

export interface RunnerSpec {
  target: string;
  name: string;
  type: string;
  settings: CheckSettings;
  probe: Probe;
  /** The target reports in or streams (ttl, heartbeat): no limiter slot, no interval,
   *  no patience, no latency estimate. */
  passive: boolean;
  /** Can be run once (`lifeline check`). */
  oneShot: boolean;
}

/** First re-probe delay after a spoiled result, ms: soon, but after the loop has caught up.
 *  It doubles with each spoiled result in a row, up to the check's interval, so a monitor
 *  that is out of descriptors does not spin. */
const RETRY_AFTER_SPOIL = 50;
/** An attempt whose deadline was moved back by more than this many times its timeout for
 *  the monitor's own stalls is discarded rather than judged. */
const MAX_COMPENSATION = 8;

interface Attempt {
  start: number;
  soft: number;
  hard: number;
  epoch: number;
  controller: AbortController;
  timers: Timer[];
  release: () => void;
  /** The engine has an outcome for it (answer, final timeout, or spoiled). */
  settled: boolean;
  /** It has been counted by the detector (maybe provisionally, at its soft deadline). */
  counted: boolean;
  onCounted: () => void;
  /** Stall time (ms) already added back to each of its deadlines. */
  compensated: { soft: number; hard: number };
  /** Set while the engine aborts it at a deadline: the probe's own account of the timeout
   *  (what it was waiting for, output so far) is kept for the result. */
  aborting: boolean;
  abortAnswer?: ProbeOutcome;
}

/**
 * Runs one check of one target: schedules attempts, gives each a timeout from the RTT
 * estimator (stretched while the monitor lags), feeds the detector, and keeps the evidence.
 *
 * Timeouts and patience: an attempt that passes its timeout is counted as a (provisional)
 * failure at once — the target becomes suspect — but, with `patience`, the connection is
 * kept open until `timeout.max`. While that patient attempt is outstanding the target cannot
 * be convicted on timeouts; if it succeeds the target is slow, not dead: the estimator is
 * re-seeded from the answer and older attempts' timeouts, taken with the old estimate, no
 * longer count.
 *
 * A refusal, a reset or any other answer that is not a timeout is evidence in itself: it
 * convicts without waiting for the patient attempt, which is then dropped.
 *
 * Stalls: a deadline is never judged inside its timer. The verdict is taken on the next
 * check phase, after pending I/O, and the time the monitor was stalled during the attempt
 * (measured by LocalHealth) is added back to the deadline: only time the monitor could run
 * counts against the target. An attempt stalled for more than 8× its timeout is discarded.
 */
export class CheckRunner {
  readonly target: string;
  readonly name: string;
  readonly type: string;
  private settings: CheckSettings;
  private probe: Probe;
  private passive: boolean;
  private readonly oneShot: boolean;
  private readonly detector: ThresholdDetector;
  private rtt: RttState;
  private slow = false;
  private warning = false;
  private last: CheckResult | undefined;
  private timer: Timer | undefined;
  /** The runner's own timer loop is active (spread scheduling). */
  private running = false;
  /** Stopped for good: attempts are abandoned and nothing new starts. */
  private closed = false;
  private patient: Attempt | undefined;
  private readonly attempts = new Set<Attempt>();
  private epoch = 0;
  private downAttempts = 0;
  private lastSpoiled = false;
  /** Spoiled results in a row (monitor-side failures, long stalls). */
  private spoiledStreak = 0;
  /** Passive attempts in a row that failed the moment they started. */
  private instantFailures = 0;

  constructor(
    spec: RunnerSpec,
    private readonly deps: RunnerDeps,
  ) {
    this.target = spec.target;
    this.name = spec.name;
    this.type = spec.type;
    this.settings = spec.settings;
    this.probe = spec.probe;
    this.passive = spec.passive;
    this.oneShot = spec.oneShot;
    this.detector = new ThresholdDetector({ fall: spec.settings.fall, rise: spec.settings.rise });
    this.rtt = rttInit(spec.settings.timeout);
  }

  get verdict(): Verdict {
    return this.detector.verdict;
  }

  get isPassive(): boolean {
    return this.passive;
  }

  get canRunOnce(): boolean {
    return this.oneShot;
  }

  get critical(): boolean {
    return this.settings.critical;
  }

  get currentSettings(): CheckSettings {
    return this.settings;
  }

  /** The timeout the next attempt would get before stretching, ms. */
  nextTimeout(): number {
    const t = this.settings.timeout;
    if (this.detector.verdict === "down" && this.settings.patience) return t.max;
    return t.mode === "fixed" ? t.initial : rttTimeoutFor(this.rtt);
  }

  view(): CheckView {
    return {
      name: this.name,
      type: this.type,
      critical: this.settings.critical,
      verdict: this.detector.verdict,
      slow: this.slow,
      warning: this.warning,
      failures: this.detector.failures,
      successes: this.detector.successes,
      fall: this.settings.fall,
      rise: this.settings.rise,
      srtt: this.rtt.srtt,
      slowThreshold: this.settings.slowThreshold,
      last: this.last,
    };
  }

  /** Applies new settings without losing what was learned. */
  reconfigure(settings: CheckSettings): void {
    const intervalChanged = settings.interval !== this.settings.interval;
    this.settings = settings;
    this.detector.reconfigure({ fall: settings.fall, rise: settings.rise });
    // New clamps apply at once; a lower `fall` may convict what is already suspect.
    const t = settings.timeout;
    this.rtt = { ...this.rtt, rto: Math.min(t.max, Math.max(t.min, this.rtt.rto)) };
    this.detector.evaluate(this.patient === undefined);
    if (intervalChanged && this.running && this.timer) {
      this.timer.cancel();
      this.schedule(this.deps.random() * settings.interval);
    }
  }

  /** Starts the check's own timer loop; the first attempt comes after `delay` ms. */
  start(delay: number): void {
    if (this.running) return;
    this.running = true;
    this.schedule(delay);
  }

  /** Stops the runner's own timer loop; attempts in flight finish, state is kept. The
   *  runner can still be driven by `runOnce` (sequential scheduling) or started again. */
  halt(): void {
    this.running = false;
    this.timer?.cancel();
    this.timer = undefined;
  }

  /** Stops for good: the loop ends, attempts in flight are abandoned, the probe closed. */
  stop(): void {
    this.running = false;
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    for (const a of this.attempts) this.abandon(a);
    this.patient = undefined;
    this.probe.close?.();
  }

  /** Passes a report to a passive check (ttl). */
  report(status: "pass" | "warn" | "fail", message?: string): boolean {
    if (!this.probe.report) return false;
    this.probe.report(status, message);
    return true;
  }

  private schedule(delay: number): void {
    this.timer = this.deps.clock.timeout(delay, () => {
      this.timer = undefined;
      void this.tick();
    });
  }

  private async tick(): Promise<void> {
    const started = this.deps.clock.now();
    await this.runOnce();
    if (!this.running || this.timer) return;
    const verdict = this.detector.verdict;
    let delay: number;
    if (this.lastSpoiled) {
      delay = Math.min(this.settings.interval, RETRY_AFTER_SPOIL * 2 ** Math.min(16, this.spoiledStreak - 1));
    } else if (this.passive) {
      // Passive attempts run back to back, as they wait on the target; one that fails at
      // once, again and again, has nothing to wait on and must not spin.
      const instant = this.last?.status === "fail" && this.deps.clock.now() - started < 5;
      this.instantFailures = instant ? this.instantFailures + 1 : 0;
      delay = instant
        ? Math.min(this.settings.interval, 10 * 2 ** Math.min(10, this.instantFailures - 1))
        : 0;
    } else {
      delay = nextDelay(verdict, this.settings, this.downAttempts, this.deps.random);
      delay = Math.max(0, started + delay - this.deps.clock.now());
    }
    this.downAttempts = verdict === "down" ? this.downAttempts + 1 : 0;
    this.schedule(delay);
  }

  /**
   * Makes one attempt. Resolves once it has been counted — when the probe answered, or at
   * its timeout — even if a patient attempt stays open after that.
   */
  async runOnce(): Promise<void> {
    const release = this.passive ? () => {} : await this.deps.limiter.acquire();
    if (this.closed) {
      release();
      return;
    }
    const { clock, local } = this.deps;
    const base = this.nextTimeout();
    const soft = this.passive ? base : local.stretch(base);
    const patient =
      this.settings.patience &&
      !this.passive &&
      this.patient === undefined &&
      this.detector.verdict !== "down" &&
      this.settings.timeout.max > base;
    const hard = patient ? local.stretch(this.settings.timeout.max) : soft;
    this.lastSpoiled = false;

    await new Promise<void>((resolve) => {
      const a: Attempt = {
        start: clock.now(),
        soft,
        hard,
        epoch: this.epoch,
        controller: new AbortController(),
        timers: [],
        release,
        settled: false,
        counted: false,
        onCounted: resolve,
        compensated: { soft: 0, hard: 0 },
        aborting: false,
      };
      this.attempts.add(a);
      if (patient) this.patient = a;
      a.timers.push(clock.timeout(soft, () => this.deadline(a, "soft", a.start + soft)));
      if (hard > soft) a.timers.push(clock.timeout(hard, () => this.deadline(a, "hard", a.start + hard)));
      let pending: Promise<ProbeOutcome>;
      try {
        pending = this.probe.run({ signal: a.controller.signal, deadline: hard, clock });
      } catch (err) {
        pending = Promise.reject(err);
      }
      pending.then(
        (outcome) => this.answer(a, outcome),
        // A probe that throws is a failed result; it never stops the monitor.
        (err: unknown) => this.answer(a, errorOutcome(err, undefined, "probe error: ")),
      );
    });
  }

  private count(a: Attempt): void {
    if (a.counted) return;
    a.counted = true;
    a.onCounted();
  }

  private finish(a: Attempt): void {
    a.settled = true;
    for (const t of a.timers) t.cancel();
    a.release();
    this.attempts.delete(a);
    if (this.patient === a) this.patient = undefined;
  }

  private abandon(a: Attempt): void {
    if (a.settled) return;
    a.controller.abort();
    this.finish(a);
    this.count(a);
  }

  private deadline(a: Attempt, which: "soft" | "hard", due: number): void {
    const { clock, local } = this.deps;
    local.observe(due, clock.now());
    // Judge after pending I/O: an answer that arrived while the loop was blocked is
    // processed before this runs.
    clock.immediate(() => {
      if (a.settled || this.closed) return;
      // Time the monitor itself was stalled during the attempt is given back to it.
      const stalled = local.stalledDuring(a.start, clock.now());
      const owed = stalled - a.compensated[which];
      if (owed > 0) {
        a.compensated[which] = stalled;
        if (stalled > a.soft * MAX_COMPENSATION) {
          this.spoil(a, `monitor stalled for ${Math.round(stalled)} ms during the attempt`);
          return;
        }
        const next = due + owed;
        a.timers.push(clock.timeout(Math.max(0, next - clock.now()), () => this.deadline(a, which, next)));
        return;
      }
      if (a.epoch !== this.epoch) {
        this.spoil(a, "timeout taken with an outdated estimate");
        return;
      }
      if (which === "soft" && a.hard > a.soft) {
        // Provisional: suspect now, convict only if the patient wait fails too.
        this.rtt = rttTimeout(this.rtt, this.settings.timeout);
        this.detector.failure(false);
        this.count(a);
        this.record(a, timeoutOutcome(a.soft), { provisional: true, timeout: a.soft });
        this.deps.onChange();
        return;
      }
      a.aborting = true;
      a.controller.abort();
      // Let the probe say what it was waiting for, then record the timeout.
      clock.immediate(() => this.timedOut(a));
    });
  }

  private timedOut(a: Attempt): void {
    if (a.settled || this.closed) return;
    this.finish(a);
    const own = a.abortAnswer?.kind === "timeout" ? a.abortAnswer : undefined;
    const limit = a.counted ? a.hard : a.soft;
    const outcome: ProbeOutcome = { ...timeoutOutcome(limit) };
    if (own) {
      outcome.message = own.message;
      if (own.detail) outcome.detail = own.detail;
    }
    if (a.counted) {
      // The patient wait is over and nothing came: the provisional failure stands.
      this.record(a, outcome, { timeout: a.hard });
      this.detector.evaluate(this.patient === undefined);
    } else {
      this.rtt = rttTimeout(this.rtt, this.settings.timeout);
      this.detector.failure(this.patient === undefined);
      this.count(a);
      this.record(a, outcome, { timeout: a.soft });
    }
    this.deps.onChange();
  }

  private spoil(a: Attempt, why: string): void {
    a.controller.abort();
    const wasPatient = this.patient === a;
    const counted = a.counted;
    this.finish(a);
    if (wasPatient) this.detector.evaluate(false);
    if (!counted) this.markSpoiled();
    this.count(a);
    this.record(a, timeoutOutcome(a.hard), { spoiled: why, timeout: counted ? a.hard : a.soft });
    this.deps.onChange();
  }

  private markSpoiled(): void {
    this.lastSpoiled = true;
    this.spoiledStreak++;
  }

  /** Drops the patient attempt without a verdict: other evidence has made it moot. */
  private dropPatient(): void {
    const p = this.patient;
    if (!p) return;
    p.aborting = true;
    p.controller.abort();
    this.finish(p);
  }

  private answer(a: Attempt, outcome: ProbeOutcome): void {
    if (a.settled) return;
    if (a.aborting) {
      a.abortAnswer = outcome;
      return;
    }
    const { clock, local } = this.deps;
    const now = clock.now();
    const late = a.counted;
    this.finish(a);
    const latency = outcome.latency ?? now - a.start;
    if (outcome.local) {
      if (!late) this.markSpoiled();
      this.count(a);
      const result = this.record(a, outcome, {
        spoiled: `monitor-side failure${outcome.errno ? ` (${outcome.errno})` : ""}`,
      });
      this.deps.onLocalFailure(result, this.spoiledStreak);
      return;
    }
    this.spoiledStreak = 0;
    const stalled = local.overlapsStall(a.start, now);
    if (outcome.status !== "fail") {
      // A passive check's wait says nothing about latency.
      if (!stalled && !this.passive) {
        if (late || a.epoch !== this.epoch) {
          // The estimate was wrong (the target became slow): start again from this answer,
          // and stop counting timeouts of attempts that used the old one.
          this.rtt = rttSample(rttInit(this.settings.timeout), latency, this.settings.timeout);
          this.epoch++;
        } else {
          this.rtt = rttSample(this.rtt, latency, this.settings.timeout);
        }
      }
      this.slow = nextSlow(this.slow, this.rtt.srtt, this.settings.slowThreshold);
      this.warning = outcome.status === "warn";
      this.detector.success();
    } else if (late) {
      // Counted already at its deadline; only the patient wait ends here.
      this.detector.evaluate(this.patient === undefined);
    } else if (outcome.kind === "timeout") {
      this.rtt = rttTimeout(this.rtt, this.settings.timeout);
      this.warning = false;
      this.detector.failure(this.patient === undefined);
    } else {
      // An answer (refused, reset, a wrong status...) is not silence: no need to wait for
      // the patient attempt, which could only have told slow from dead.
      this.dropPatient();
      this.warning = false;
      this.detector.failure(true, outcome.conclusive === true);
    }
    this.count(a);
    const extra: Partial<CheckResult> = {};
    if (late && outcome.status !== "fail") extra.late = true;
    if (outcome.kind === "timeout" && !late) extra.selfTimed = true;
    this.record(a, { ...outcome, latency }, extra);
    this.deps.onChange();
  }

  private record(a: Attempt, outcome: ProbeOutcome, extra: Partial<CheckResult>): CheckResult {
    const { clock } = this.deps;
    const result: CheckResult = {
      ...outcome,
      target: this.target,
      check: this.name,
      at: clock.wall(),
      latency: outcome.latency ?? clock.now() - a.start,
      timeout: a.soft,
      ...extra,
    };
    if (this.passive) result.passive = true;
    if (!result.spoiled) this.last = result;
    this.deps.onResult(result);
    return result;
  }
}

function timeoutOutcome(after: number): ProbeOutcome {
  return { status: "fail", kind: "timeout", message: `no answer within ${Math.round(after)} ms` };
}
