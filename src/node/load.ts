import { type IntervalHistogram, monitorEventLoopDelay } from "node:perf_hooks";

/**
 * The node's own load, reported in every HEARTBEAT and TOPOLOGY entry so that clients and
 * monitors can prefer lightly loaded nodes and tell an overloaded node from a dead one:
 * event-loop lag (p99 of the last second, from perf_hooks) and CPU use (process time per
 * wall time over the last second, as a fraction of one core).
 */
const WINDOW = 1000;

export class LoadMonitor {
  private histogram: IntervalHistogram | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastCpu = process.cpuUsage();
  private lastAt = performance.now();
  private current = { lag: 0, cpu: 0 };

  start(): void {
    if (this.timer) return;
    this.histogram = monitorEventLoopDelay({ resolution: 10 });
    this.histogram.enable();
    this.lastCpu = process.cpuUsage();
    this.lastAt = performance.now();
    this.timer = setInterval(() => this.sample(), WINDOW);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.histogram?.disable();
  }

  private sample(): void {
    const now = performance.now();
    const cpu = process.cpuUsage(this.lastCpu);
    const wall = Math.max(1, now - this.lastAt);
    this.lastCpu = process.cpuUsage();
    this.lastAt = now;
    const h = this.histogram;
    // The histogram counts from its resolution up: subtract it to report lag, not delay.
    const lag = h && h.count > 0 ? Math.max(0, h.percentile(99) / 1e6 - 10) : 0;
    h?.reset();
    this.current = { lag, cpu: (cpu.user + cpu.system) / 1000 / wall };
  }

  /** Event-loop lag (ms, p99 of the last second) and CPU (fraction of one core). */
  get value(): { lag: number; cpu: number } {
    return this.current;
  }
}
