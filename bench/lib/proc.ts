import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import os from "node:os";

/**
 * Process statistics from /proc (Linux), read from outside the process measured so the
 * measurement costs it nothing.
 */

let clockTicks: number | undefined;

/** Kernel clock ticks per second (USER_HZ) for /proc/PID/stat times; 100 on almost all systems. */
export function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

export interface ProcReading {
  /** performance.now() when read. */
  at: number;
  /** utime + stime of all the process's threads, clock ticks. */
  cpuTicks: number;
  /** Resident set, kB (VmRSS). */
  rssKb: number;
  /** Open descriptors (entries of /proc/PID/fd). */
  fds: number;
}

/** One reading, or undefined when the process has gone. */
export function readProc(pid: number): ProcReading | undefined {
  try {
    const at = performance.now();
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    const cpuTicks = Number(fields[11]) + Number(fields[12]);
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const rss = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    const fds = readdirSync(`/proc/${pid}/fd`).length;
    return { at, cpuTicks, rssKb: rss ? Number(rss[1]) : 0, fds };
  } catch {
    return undefined;
  }
}

export interface ProcSample {
  /** Seconds since the sampler started. */
  t: number;
  /** CPU over the last interval, % of one core. */
  cpu: number;
  rssMb: number;
  fds: number;
}

/** Samples a process: CPU % from utime+stime deltas over wall time, RSS, descriptors. */
export class ProcSampler {
  readonly samples: ProcSample[] = [];
  private readonly first: ProcReading | undefined;
  private last: ProcReading | undefined;

  constructor(readonly pid: number) {
    this.first = readProc(pid);
    this.last = this.first;
  }

  /** Takes a sample; undefined when the process has gone. */
  sample(): ProcSample | undefined {
    const r = readProc(this.pid);
    if (!r || !this.last || !this.first) return undefined;
    const wall = (r.at - this.last.at) / 1000;
    const cpu = wall > 0 ? ((r.cpuTicks - this.last.cpuTicks) / clockTicksPerSecond() / wall) * 100 : 0;
    this.last = r;
    const s: ProcSample = {
      t: (r.at - this.first.at) / 1000,
      cpu,
      rssMb: r.rssKb / 1024,
      fds: r.fds,
    };
    this.samples.push(s);
    return s;
  }

  /** Mean CPU % over the whole sampled window (total CPU time / wall time). */
  meanCpu(): number {
    if (!this.first || !this.last || this.last.at <= this.first.at) return 0;
    const wall = (this.last.at - this.first.at) / 1000;
    return ((this.last.cpuTicks - this.first.cpuTicks) / clockTicksPerSecond() / wall) * 100;
  }

  max(key: "cpu" | "rssMb" | "fds"): number {
    return this.samples.reduce((m, s) => Math.max(m, s[key]), 0);
  }
}

export interface MachineCpu {
  /** Jiffies spent busy (everything but idle and iowait), all CPUs together. */
  busy: number;
  /** All jiffies, all CPUs together. */
  total: number;
}

/** The machine's CPU counters from the first line of /proc/stat; undefined off Linux. */
export function readMachineCpu(): MachineCpu | undefined {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    const total = f.slice(0, 8).reduce((s, v) => s + v, 0);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

/** The machine's CPU use between two readings, % of one core (so 2 busy cores = 200 %). */
export function machineCpuPercent(
  a: MachineCpu | undefined,
  b: MachineCpu | undefined,
  cores: number,
): number {
  if (!a || !b || b.total <= a.total) return Number.NaN;
  return ((b.busy - a.busy) / (b.total - a.total)) * 100 * cores;
}

/** A run's length and the machine's CPU use over it (all processes, % of one core). */
export interface RunMeasured {
  elapsedS: number;
  machineCpu: number;
}

/** Starts measuring a run: the function returned says how long it has run, and the machine's
 *  CPU use meanwhile. */
export function measureRun(): () => RunMeasured {
  const t0 = performance.now();
  const machine0 = readMachineCpu();
  return () => ({
    elapsedS: (performance.now() - t0) / 1000,
    machineCpu: machineCpuPercent(machine0, readMachineCpu(), os.cpus().length),
  });
}
