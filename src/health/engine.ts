import { type Clock, type Random, systemClock, type Timer } from "../util/clock.ts";
import { EventStream } from "../util/event-stream.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import { TypedEmitter } from "../util/typed-emitter.ts";
import { CheckRunner } from "./check-runner.ts";
import { type HistoryOptions, HistoryStore } from "./history-store.ts";
import { Limiter } from "./limiter.ts";
import { LocalHealth } from "./local-health.ts";
import type { ProbeRegistry } from "./probes/registry.ts";
import { initialPhase } from "./schedule.ts";
import type { CheckSettings, MonitorSettings } from "./settings.ts";
import { TargetRuntime, type TargetSnapshot } from "./target.ts";
import type { CheckResult, CheckStatus, Transition } from "./types.ts";

/** One check of a target, fully resolved from configuration. */
export interface CheckConfig {
  /** Unique within the target. */
  name: string;
  /** Probe type in the registry: tcp, http, tls, exec, ttl, ... */
  type: string;
  /** The probe's own fields (address, url, command...), validated by its schema. */
  spec: Record<string, unknown>;
  settings: CheckSettings;
}

export interface TargetConfig {
  id: string;
  tags: string[];
  /** Start disabled (an operator's choice, shown as `disabled`). */
  disabled: boolean;
  checks: CheckConfig[];
}

export interface EngineConfig {
  monitor: MonitorSettings;
  targets: TargetConfig[];
}

export interface ConfigChange {
  added: string[];
  removed: string[];
  changed: string[];
}

export type EngineEvent =
  | { type: "state"; transition: Transition }
  | { type: "result"; result: CheckResult }
  | { type: "config"; change: ConfigChange };

export type EngineEvents = {
  state: [Transition];
  result: [CheckResult];
  config: [ConfigChange];
};

export interface EngineOptions {
  registry: ProbeRegistry;
  clock?: Clock;
  random?: Random;
  logger?: Logger;
  /**
   * Lasting history (src/health/history-store.ts). Every result and transition is also
   * written there, and each target added (at construction and by `apply`) starts with the
   * history an earlier run left within retention, so its trends continue across a restart.
   * Options: the engine opens the file at construction (throwing LL_HISTORY_OPEN if it
   * cannot), closes it in `stop()` and reopens it in a later `start()`. A `HistoryStore`:
   * the caller owns it; `stop()` only flushes it. Default: none (history lasts as long as
   * the process).
   */
  history?: HistoryStore | HistoryOptions;
}

/**
 * The health engine: probes targets, turns results into states with detectors, keeps
 * history and emits typed events. Used by `lifeline monitor` and `lifeline check`, and by
 * other components as a library.
 */
export class HealthEngine extends TypedEmitter<EngineEvents> {
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly logger: Logger;
  private readonly registry: ProbeRegistry;
  private readonly targetsById = new Map<string, TargetRuntime>();
  private readonly configs = new Map<string, TargetConfig>();
  private settings: MonitorSettings;
  private readonly limiter: Limiter;
  readonly local: LocalHealth;
  private started = false;
  /** Runners were stopped for good by `stop()`; `start()` builds fresh ones. */
  private spent = false;
  private sequentialTimer: Timer | undefined;
  private sequentialRun = 0;
  private readonly streams = new Set<EventStream<EngineEvent>>();
  private store: HistoryStore | undefined;
  /** Set when the engine opened the store itself (and closes it in `stop`). */
  private readonly storeOptions: HistoryOptions | undefined;

  constructor(config: EngineConfig, options: EngineOptions) {
    super();
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.logger = options.logger ?? silentLogger;
    this.registry = options.registry;
    if (options.history instanceof HistoryStore) this.store = options.history;
    else if (options.history) {
      this.storeOptions = options.history;
      this.store = this.openStore();
    }
    this.settings = config.monitor;
    this.limiter = new Limiter(config.monitor.maxInFlight);
    this.local = new LocalHealth(this.clock, config.monitor.localHealth);
    for (const t of config.targets) this.addTarget(t);
  }

  /** The lasting history, when there is one (closed between `stop()` and `start()` if the
   *  engine opened it). */
  get historyStore(): HistoryStore | undefined {
    return this.store;
  }

  get monitorSettings(): MonitorSettings {
    return this.settings;
  }

  /** Probes in flight and waiting for a slot. */
  load(): { inFlight: number; queued: number; lag: number } {
    return { inFlight: this.limiter.inFlight, queued: this.limiter.queued, lag: this.local.lag() };
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    if (this.storeOptions && this.store?.closed) this.store = this.openStore();
    if (this.spent) {
      // Restarting after stop(): the old runners are closed; their targets keep history.
      for (const t of this.targetsById.values()) this.rebuildRunners(t, this.configs.get(t.id)!);
      this.spent = false;
    }
    this.local.start();
    for (const t of this.targetsById.values()) this.startTarget(t);
    if (this.settings.scheduling === "sequential") this.scheduleSequential(0);
  }

  /** Stops every check and ends every `events()` stream. */
  async stop(): Promise<void> {
    this.started = false;
    this.spent = true;
    this.sequentialRun++;
    this.sequentialTimer?.cancel();
    this.local.stop();
    for (const t of this.targetsById.values()) for (const r of t.runners.values()) r.stop();
    for (const s of [...this.streams]) s.close();
    if (this.storeOptions) this.store?.close();
    else this.store?.flush();
  }

  /** Ids of the targets, in configuration order. */
  ids(): string[] {
    return [...this.targetsById.keys()];
  }

  snapshot(): TargetSnapshot[] {
    return [...this.targetsById.values()].map((t) => t.snapshot());
  }

  target(id: string): TargetSnapshot | undefined {
    return this.targetsById.get(id)?.snapshot();
  }

  history(id: string): { results: CheckResult[]; transitions: Transition[] } | undefined {
    const t = this.targetsById.get(id);
    if (!t) return undefined;
    return { results: t.history.recentResults(), transitions: t.history.recentTransitions() };
  }

  /**
   * Runs every active check of every enabled target once, concurrently within the in-flight
   * limit, and resolves when all have been counted (the one-shot `lifeline check`).
   */
  async checkOnce(): Promise<void> {
    const attempts: Array<Promise<void>> = [];
    for (const t of this.targetsById.values()) {
      if (t.disabled) continue;
      for (const r of t.runners.values()) if (r.canRunOnce) attempts.push(r.runOnce());
    }
    await Promise.all(attempts);
  }

  /** A report from a service for a passive (ttl) check. Returns false if there is none. */
  report(targetId: string, check: string, status: CheckStatus, message?: string): boolean {
    return this.targetsById.get(targetId)?.runners.get(check)?.report(status, message) ?? false;
  }

  /** Takes a target out of service by an operator's decision; its checks pause. */
  disable(id: string, reason = ""): boolean {
    const t = this.targetsById.get(id);
    if (!t) return false;
    // Stopped runners are spent; fresh ones (not started) wait for `enable`.
    for (const r of t.runners.values()) r.stop();
    this.rebuildRunners(t, this.configs.get(id)!);
    t.setDisabled(reason);
    return true;
  }

  enable(id: string): boolean {
    const t = this.targetsById.get(id);
    if (!t?.disabled) return false;
    t.setDisabled(undefined);
    if (this.started) this.startTarget(t);
    return true;
  }

  /** Marks a target as draining (announced shutdown); checks continue. */
  drain(id: string, reason = ""): boolean {
    const t = this.targetsById.get(id);
    if (!t) return false;
    t.setDraining(reason);
    return true;
  }

  undrain(id: string): boolean {
    const t = this.targetsById.get(id);
    if (!t) return false;
    t.setDraining(undefined);
    return true;
  }

  /**
   * Applies a new configuration: adds and removes targets, and updates changed ones while
   * keeping their history, state and what their checks learned (a check whose probe spec is
   * unchanged keeps its estimator and detector).
   */
  apply(config: EngineConfig): ConfigChange {
    const change: ConfigChange = { added: [], removed: [], changed: [] };
    const previous = this.settings;
    this.settings = config.monitor;
    this.limiter.resize(config.monitor.maxInFlight);
    this.local.reconfigure(config.monitor.localHealth);
    const next = new Set(config.targets.map((t) => t.id));
    for (const id of [...this.targetsById.keys()]) {
      if (next.has(id)) continue;
      for (const r of this.targetsById.get(id)!.runners.values()) r.stop();
      this.targetsById.delete(id);
      this.configs.delete(id);
      change.removed.push(id);
    }
    for (const t of config.targets) {
      const existing = this.targetsById.get(t.id);
      if (!existing) {
        this.addTarget(t);
        if (this.started) this.startTarget(this.targetsById.get(t.id)!);
        change.added.push(t.id);
        continue;
      }
      existing.history.resize(config.monitor.historyResults, config.monitor.historyTransitions);
      if (JSON.stringify(this.configs.get(t.id)) === JSON.stringify(t)) continue;
      this.updateTarget(existing, t);
      change.changed.push(t.id);
    }
    if (previous.scheduling !== config.monitor.scheduling && this.started) {
      // Hand the checks from one loop to the other; what they learned stays.
      this.sequentialRun++;
      this.sequentialTimer?.cancel();
      for (const t of this.targetsById.values())
        for (const r of t.runners.values()) if (!r.isPassive) r.halt();
      for (const t of this.targetsById.values()) this.startTarget(t);
      if (config.monitor.scheduling === "sequential") this.scheduleSequential(0);
    }
    this.publish("config", change);
    return change;
  }

  /** An async iterator over engine events; `return()` (or `break`) unsubscribes. */
  events(types: ReadonlyArray<EngineEvent["type"]> = ["state", "result", "config"], capacity = 10_000) {
    const onState = (transition: Transition) => stream.push({ type: "state", transition });
    const onResult = (result: CheckResult) => stream.push({ type: "result", result });
    const onConfig = (change: ConfigChange) => stream.push({ type: "config", change });
    const stream: EventStream<EngineEvent> = new EventStream<EngineEvent>(capacity, () => {
      this.off("state", onState);
      this.off("result", onResult);
      this.off("config", onConfig);
      this.streams.delete(stream);
    });
    this.streams.add(stream);
    if (types.includes("state")) this.on("state", onState);
    if (types.includes("result")) this.on("result", onResult);
    if (types.includes("config")) this.on("config", onConfig);
    return stream;
  }

  private addTarget(config: TargetConfig): void {
    if (this.targetsById.has(config.id)) throw new Error(`duplicate target id ${config.id}`);
    const t = new TargetRuntime(
      config.id,
      { clock: this.clock, onTransition: (tr) => this.onTransition(tr) },
      this.settings.historyResults,
      this.settings.historyTransitions,
    );
    t.tags = config.tags;
    this.restoreHistory(t);
    this.targetsById.set(config.id, t);
    this.configs.set(config.id, config);
    this.rebuildRunners(t, config);
    if (config.disabled) t.setDisabled("disabled in configuration");
  }

  private updateTarget(t: TargetRuntime, config: TargetConfig): void {
    const old = this.configs.get(config.id)!;
    this.configs.set(config.id, config);
    t.tags = config.tags;
    const oldChecks = new Map(old.checks.map((c) => [c.name, c]));
    const keep = new Set<string>();
    for (const c of config.checks) {
      const prev = oldChecks.get(c.name);
      const runner = t.runners.get(c.name);
      if (prev && runner && prev.type === c.type && JSON.stringify(prev.spec) === JSON.stringify(c.spec)) {
        runner.reconfigure(c.settings);
        keep.add(c.name);
      }
    }
    for (const [name, runner] of t.runners) {
      if (!keep.has(name)) {
        runner.stop();
        t.runners.delete(name);
        t.descriptions.delete(name);
      }
    }
    for (const c of config.checks) {
      if (keep.has(c.name)) continue;
      const runner = this.createRunner(t, c);
      if (!this.started || t.disabled) continue;
      if (runner.isPassive) runner.start(0);
      else if (this.settings.scheduling === "spread") runner.start(initialPhase(c.settings, this.random));
    }
    // Only a change of the configured flag acts; an operator's disable survives a reload.
    if (config.disabled && !old.disabled) this.disable(config.id, "disabled in configuration");
    else if (!config.disabled && old.disabled) this.enable(config.id);
    t.recompute();
  }

  private rebuildRunners(t: TargetRuntime, config: TargetConfig): void {
    t.runners.clear();
    t.descriptions.clear();
    for (const c of config.checks) this.createRunner(t, c);
  }

  private createRunner(t: TargetRuntime, c: CheckConfig): CheckRunner {
    const made = this.registry.create(c.type, c.spec, {
      clock: this.clock,
      stalledDuring: (start, end) => this.local.stalledDuring(start, end),
    });
    const runner = new CheckRunner(
      {
        target: t.id,
        name: c.name,
        type: c.type,
        settings: c.settings,
        probe: made.probe,
        passive: made.passive,
        oneShot: made.oneShot,
      },
      {
        clock: this.clock,
        random: this.random,
        limiter: this.limiter,
        local: this.local,
        onResult: (r) => {
          t.recordResult(r);
          this.store?.recordResult(r);
          this.publish("result", r);
          if (r.status === "fail" && !r.spoiled && !r.provisional) {
            this.logger.debug(
              { event: "result", target: r.target, check: r.check, kind: r.kind, errno: r.errno },
              `${r.target}/${r.check}: ${r.message}`,
            );
          }
        },
        onChange: () => t.recompute(),
        onLocalFailure: (r, streak) => {
          // Logged at 1, 10, 100... in a row: visible, without a line per attempt.
          if (Number.isInteger(Math.log10(streak))) {
            this.logger.warn(
              { event: "local-failure", target: r.target, check: r.check, errno: r.errno, streak },
              `${r.target}/${r.check}: the monitor cannot probe (${r.errno ?? r.message}); ${streak} attempt(s) discarded, not counted against the target`,
            );
          }
        },
      },
    );
    t.runners.set(c.name, runner);
    t.descriptions.set(c.name, made.description);
    return runner;
  }

  private startTarget(t: TargetRuntime): void {
    if (t.disabled) return;
    for (const r of t.runners.values()) {
      if (r.isPassive) r.start(0);
      else if (this.settings.scheduling === "spread") r.start(initialPhase(r.currentSettings, this.random));
    }
  }

  private openStore(): HistoryStore {
    return new HistoryStore(this.storeOptions!, { clock: this.clock, logger: this.logger });
  }

  /**
   * Pre-fills a new target's history from the store. The target still starts `unknown`;
   * the time since the store last saw it is marked unobserved (`TargetHistory.restore`).
   * A store that cannot be read costs the history, never the target.
   */
  private restoreHistory(t: TargetRuntime): void {
    if (!this.store || this.store.closed) return;
    try {
      const saved = this.store.restore(t.id, {
        results: this.settings.historyResults,
        transitions: this.settings.historyTransitions,
      });
      const gap = t.history.restore(saved);
      if (gap) this.store.recordTransition(gap);
    } catch (err) {
      this.logger.warn(
        { event: "history-restore-failed", target: t.id, err: (err as Error).message },
        `${t.id}: could not restore its history: ${(err as Error).message}`,
      );
    }
  }

  private onTransition(t: Transition): void {
    this.store?.recordTransition(t);
    const fields = {
      event: "state",
      target: t.target,
      from: t.from,
      to: t.to,
      reason: t.reason,
      kind: t.kind,
      errno: t.errno,
    };
    const line = `${t.target} ${t.from} -> ${t.to}: ${t.reason}`;
    if (t.to === "down") this.logger.warn(fields, line);
    else this.logger.info(fields, line);
    this.publish("state", t);
  }

  /** Emits to listeners; a listener that throws is logged and never breaks a check. */
  private publish<K extends keyof EngineEvents & string>(name: K, ...args: EngineEvents[K]): void {
    try {
      this.emit(name, ...args);
    } catch (err) {
      this.logger.error(
        {
          event: "listener-error",
          on: name,
          err: err instanceof Error ? (err.stack ?? err.message) : String(err),
        },
        `a "${name}" listener threw; the engine carries on`,
      );
    }
  }

  /**
   * The seed's loop, for `classic`: check every target in order, one at a time, then sleep
   * the interval. Slow or dead targets delay the checks of all the others, as they did.
   */
  private scheduleSequential(delay: number): void {
    const run = this.sequentialRun;
    this.sequentialTimer = this.clock.timeout(delay, async () => {
      let interval = Number.POSITIVE_INFINITY;
      for (const t of [...this.targetsById.values()]) {
        if (t.disabled) continue;
        for (const r of [...t.runners.values()]) {
          if (r.isPassive) continue;
          interval = Math.min(interval, r.currentSettings.interval);
          if (run !== this.sequentialRun) return;
          await r.runOnce();
        }
      }
      if (run !== this.sequentialRun || !this.started) return;
      this.scheduleSequential(Number.isFinite(interval) ? interval : 1000);
    });
  }
}
