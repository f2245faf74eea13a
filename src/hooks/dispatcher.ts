import ms from "ms";
import { ConfigError } from "../errors.ts";
import type { Transition } from "../health/types.ts";
import { type Clock, type Random, systemClock, type Timer } from "../util/clock.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import { CommandHookError, runCommand, type SpawnFn } from "./command.ts";
import { HookError } from "./errors.ts";
import { compileFilter, type HookFilter } from "./filter.ts";
import { FlapDamper, type StableNotice } from "./flap.ts";
import { type Notification, notificationOf } from "./notification.ts";
import { SerialQueue } from "./queue.ts";
import type { FlapOptions, HookConfig } from "./schema.ts";
import { type FetchFn, redactUrl, sendWebhook } from "./webhook.ts";

/**
 * Sends state changes to the configured hooks:
 *
 *   engine.on("state", (t) => dispatcher.notify(t));
 *
 * For each hook, a transition goes through the hook's filters (targets, `to`, initial
 * changes), then its flap damper (see `flap.ts`), and what comes out is queued: each hook has
 * its own bounded queue, delivered one notification at a time, in order — a slow or dead
 * receiver delays only its own hook, and never reorders its notifications. `notify` never
 * blocks and never throws.
 */

/** Counters for metrics; they only grow (over reloads too). */
export interface HookStats {
  /** Notifications delivered (exit 0, or a 2xx answer). */
  sent: number;
  /** Notifications tried and given up: non-zero exit, timeout, spawn error, attempts exhausted,
   *  a final HTTP status, or aborted in flight by `stop`. */
  failed: number;
  /** Webhook attempts beyond each notification's first. */
  retries: number;
  /** Notifications never tried: pushed out of a full queue, or still queued when `stop` ended. */
  dropped: number;
  /** Changes not notified because their target was flapping. */
  suppressed: number;
}

export interface HookDispatcherOptions {
  logger?: Logger;
  clock?: Clock;
  /** Jitter of webhook retries. Default Math.random. */
  random?: Random;
  /** Default the global fetch. */
  fetch?: FetchFn;
  /** Default child_process.spawn. */
  spawn?: SpawnFn;
  /** This monitor's name, sent as `monitor` in every notification. Default none. */
  monitor?: string;
}

interface HookRuntime {
  config: HookConfig;
  filter: HookFilter;
  damper: FlapDamper;
  queue: SerialQueue<Notification>;
  stats: HookStats;
  timer: Timer | undefined;
  timerAt: number | undefined;
}

const zeroStats = (): HookStats => ({ sent: 0, failed: 0, retries: 0, dropped: 0, suppressed: 0 });

function sameFlap(a: FlapOptions, b: FlapOptions): boolean {
  return (
    a.enabled === b.enabled && a.window === b.window && a.threshold === b.threshold && a.quiet === b.quiet
  );
}

function checkNames(hooks: readonly HookConfig[]): void {
  const seen = new Set<string>();
  hooks.forEach((h, i) => {
    if (seen.has(h.name)) {
      throw new ConfigError([
        { path: `hooks[${i}].name`, message: `duplicate hook name ${JSON.stringify(h.name)}` },
      ]);
    }
    seen.add(h.name);
  });
}

const long = (n: number) => ms(n, { long: true });

export class HookDispatcher {
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly fetch: FetchFn | undefined;
  private readonly spawn: SpawnFn | undefined;
  private readonly monitor: string | undefined;
  private readonly runtimes = new Map<string, HookRuntime>();
  /** Hooks removed by `replace` that still have deliveries to finish. */
  private readonly retiring = new Set<HookRuntime>();
  private readonly statsByName = new Map<string, HookStats>();
  private stopping: Promise<{ unfinished: number }> | undefined;

  constructor(hooks: readonly HookConfig[], options: HookDispatcherOptions = {}) {
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.fetch = options.fetch;
    this.spawn = options.spawn;
    this.monitor = options.monitor;
    checkNames(hooks);
    for (const h of hooks) this.runtimes.set(h.name, this.create(h));
  }

  /** Hands one state change to every hook. Never blocks, never throws. */
  notify(t: Transition): void {
    if (this.stopping) return;
    const now = this.clock.now();
    for (const rt of this.runtimes.values()) {
      try {
        this.route(rt, t, now);
      } catch (err) {
        this.logger.error(
          { hook: rt.config.name, target: t.target, err },
          "hook: cannot route a state change",
        );
      }
    }
  }

  /**
   * Applies a new hook list (configuration reload). A hook keeps its queue, counters and
   * flap state when its name stays (queued notifications are delivered with the new
   * settings; its flap state is reset only if its `flap` options changed). A removed hook
   * takes no more notifications but finishes those already queued (`stop` waits for them too).
   */
  replace(hooks: readonly HookConfig[]): void {
    if (this.stopping) return;
    checkNames(hooks);
    const names = new Set(hooks.map((h) => h.name));
    for (const [name, rt] of this.runtimes) {
      if (names.has(name)) continue;
      this.runtimes.delete(name);
      this.cancelTimer(rt);
      this.retiring.add(rt);
      void rt.queue.whenIdle().then(() => this.retiring.delete(rt));
    }
    for (const h of hooks) {
      const rt = this.runtimes.get(h.name);
      if (!rt) {
        this.runtimes.set(h.name, this.create(h));
        continue;
      }
      if (!sameFlap(rt.config.flap, h.flap)) {
        this.cancelTimer(rt);
        rt.damper = new FlapDamper(h.flap);
      }
      rt.config = h;
      rt.filter = compileFilter(h);
      rt.queue.capacity = h.queue;
    }
  }

  /**
   * Stops taking notifications, lets the queued ones finish for up to `timeoutMs`, then
   * aborts what is left (a running command is killed, a request or a retry wait is abandoned)
   * and counts it. Resolves with how many notifications were not delivered for that reason.
   * Flapping targets get no `stable` notification after this.
   */
  stop(timeoutMs = 5000): Promise<{ unfinished: number }> {
    this.stopping ??= this.shutdown(timeoutMs);
    return this.stopping;
  }

  /** Totals over every hook, present and removed. */
  stats(): HookStats {
    const total = zeroStats();
    for (const s of this.statsByName.values()) {
      total.sent += s.sent;
      total.failed += s.failed;
      total.retries += s.retries;
      total.dropped += s.dropped;
      total.suppressed += s.suppressed;
    }
    return total;
  }

  /** Counters per hook name (hooks since removed included). */
  statsByHook(): Record<string, HookStats> {
    return Object.fromEntries([...this.statsByName].map(([name, s]) => [name, { ...s }]));
  }

  /** Notifications queued or being delivered, over all hooks. */
  pending(): number {
    let n = 0;
    for (const rt of [...this.runtimes.values(), ...this.retiring])
      n += rt.queue.waiting + (rt.queue.idle ? 0 : 1);
    return n;
  }

  /** Targets a hook considers flapping now (for status pages and tests). */
  flapping(hook: string): string[] {
    return this.runtimes.get(hook)?.damper.flapping() ?? [];
  }

  // -------------------------------------------------------------------------------------

  private create(config: HookConfig): HookRuntime {
    let stats = this.statsByName.get(config.name);
    if (!stats) {
      stats = zeroStats();
      this.statsByName.set(config.name, stats);
    }
    const rt: HookRuntime = {
      config,
      filter: compileFilter(config),
      damper: new FlapDamper(config.flap),
      stats,
      timer: undefined,
      timerAt: undefined,
      queue: new SerialQueue<Notification>(
        config.queue,
        (n, signal) => this.deliver(rt, n, signal),
        (n, why) => {
          rt.stats.dropped++;
          if (why === "overflow") {
            this.logger.warn(
              { hook: rt.config.name, target: n.target, event: n.event, to: n.to, queue: rt.queue.capacity },
              "hook: queue full, oldest notification dropped",
            );
          }
        },
      ),
    };
    return rt;
  }

  private route(rt: HookRuntime, t: Transition, now: number): void {
    const { config } = rt;
    if (!rt.filter.target(t.target)) return;
    const decision = rt.damper.observe(t, rt.filter.change(t), now);
    switch (decision) {
      case "deliver":
        if (config.events.includes("state"))
          rt.queue.push(notificationOf("state", t, t.at, t.reason, this.monitor));
        break;
      case "flapping": {
        const { threshold, window, quiet } = config.flap;
        this.logger.info(
          { hook: config.name, target: t.target, changes: threshold, window },
          "hook: target flapping, its changes are not notified until it is stable",
        );
        if (config.events.includes("flapping")) {
          const reason =
            `flapping: ${threshold} changes within ${long(window)}; changes are not notified until it ` +
            `holds one state for ${long(quiet)} (last: ${t.reason})`;
          rt.queue.push(notificationOf("flapping", t, t.at, reason, this.monitor));
        } else {
          rt.stats.suppressed++;
        }
        break;
      }
      case "suppress":
        rt.stats.suppressed++;
        this.logger.debug(
          { hook: config.name, target: t.target, to: t.to },
          "hook: flapping, change not notified",
        );
        break;
      case "ignore":
        break;
    }
    this.schedule(rt);
  }

  /** Keeps one timer per hook, at its damper's next deadline. */
  private schedule(rt: HookRuntime): void {
    const at = rt.damper.nextDeadline();
    if (at === rt.timerAt) return;
    this.cancelTimer(rt);
    if (at === undefined || this.stopping) return;
    rt.timerAt = at;
    rt.timer = this.clock.timeout(Math.max(0, at - this.clock.now()), () => {
      rt.timer = undefined;
      rt.timerAt = undefined;
      for (const notice of rt.damper.settle(this.clock.now())) this.stable(rt, notice);
      this.schedule(rt);
    });
  }

  private cancelTimer(rt: HookRuntime): void {
    rt.timer?.cancel();
    rt.timer = undefined;
    rt.timerAt = undefined;
  }

  private stable(rt: HookRuntime, notice: StableNotice): void {
    const { config } = rt;
    this.logger.info(
      { hook: config.name, target: notice.target, state: notice.to, suppressed: notice.suppressed },
      "hook: target stable again, its changes are notified",
    );
    if (!config.events.includes("stable")) return;
    const reason =
      `stable: ${notice.to} for ${long(config.flap.quiet)} after flapping ` +
      `(${notice.changes} changes, ${notice.suppressed} not notified)`;
    const t = {
      target: notice.target,
      from: notice.from,
      to: notice.to,
      kind: notice.last.kind,
      errno: notice.last.errno,
    };
    rt.queue.push(notificationOf("stable", t, this.clock.wall(), reason, this.monitor));
  }

  /** The queue's worker: one delivery; outcomes are counted and logged here, never thrown. */
  private async deliver(rt: HookRuntime, n: Notification, signal: AbortSignal): Promise<void> {
    const config = rt.config;
    const fields = { hook: config.name, target: n.target, event: n.event, to: n.to };
    try {
      if (config.type === "command") {
        const r = await runCommand(
          config,
          n,
          { clock: this.clock, ...(this.spawn ? { spawn: this.spawn } : {}) },
          signal,
        );
        rt.stats.sent++;
        this.logger.debug(
          { ...fields, exitCode: r.code, ms: Math.round(r.duration), stdout: r.stdout, stderr: r.stderr },
          "hook: command ran",
        );
      } else {
        const r = await sendWebhook(
          config,
          n,
          {
            clock: this.clock,
            random: this.random,
            ...(this.fetch ? { fetch: this.fetch } : {}),
            onRetry: (attempt, err, delay) => {
              rt.stats.retries++;
              this.logger.debug(
                { ...fields, attempt, code: err.code, status: err.status, delay: Math.round(delay) },
                `hook: ${err.message}; retrying`,
              );
            },
          },
          signal,
        );
        rt.stats.sent++;
        this.logger.debug(
          { ...fields, url: redactUrl(config.url), status: r.status, attempts: r.attempts },
          "hook: sent",
        );
      }
    } catch (e) {
      rt.stats.failed++;
      const err =
        e instanceof HookError
          ? e
          : new HookError(config.type === "command" ? "LL_HOOK_SPAWN" : "LL_HOOK_NETWORK", String(e), {
              cause: e,
            });
      if (err instanceof CommandHookError) {
        this.logger.debug(
          {
            ...fields,
            exitCode: err.result.code,
            signal: err.result.signal,
            stdout: err.result.stdout,
            stderr: err.result.stderr,
          },
          "hook: command output",
        );
      }
      this.logger.warn(
        { ...fields, code: err.code, ...(err.status ? { status: err.status } : {}) },
        err.message,
      );
    }
  }

  private async shutdown(timeoutMs: number): Promise<{ unfinished: number }> {
    const all = [...this.runtimes.values(), ...this.retiring];
    for (const rt of all) this.cancelTimer(rt);
    const idle = Promise.all(all.map((rt) => rt.queue.whenIdle()));
    const unfinished = all.reduce((n, rt) => n + rt.queue.waiting + (rt.queue.idle ? 0 : 1), 0);
    if (unfinished === 0) return { unfinished: 0 };
    let timer: Timer | undefined;
    const timedOut = await Promise.race([
      idle.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = this.clock.timeout(timeoutMs, () => resolve(true));
      }),
    ]);
    timer?.cancel();
    if (!timedOut) return { unfinished: 0 };
    let left = 0;
    for (const rt of all) {
      left += rt.queue.waiting + (rt.queue.idle ? 0 : 1);
      rt.queue.abort();
    }
    this.logger.warn({ unfinished: left, timeoutMs }, "hooks: stopped with notifications undelivered");
    // Aborted deliveries end at once (the child is killed, the request abandoned); bounded anyway.
    await Promise.race([
      idle,
      new Promise<void>((resolve) => {
        timer = this.clock.timeout(1000, resolve);
      }),
    ]);
    timer?.cancel();
    return { unfinished: left };
  }
}
