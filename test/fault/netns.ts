import { execFile, spawnSync } from "node:child_process";
import { type ChildHandle, onExitCleanup, type StartOptions, signalGroup, startProcess } from "./process.ts";

/**
 * Network namespaces for fault tests: each test gets its own loopback, its own ports and its
 * own iptables rules, so faults never touch the host or another test. Deleting a namespace
 * removes its rules; the processes started in it are killed first (by pid or process group).
 * An interrupted run cleans up in its exit handlers; a crashed one is cleaned up by the next
 * run (`cleanupLeftovers`), which recognises its namespaces by the dead pid in their names.
 */

export const DEFAULT_PREFIX = "ll-";
const COMMAND_TIMEOUT = 30_000;

export interface ExecResult {
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; rejects with its stderr when it fails. */
export function run(cmd: string, args: readonly string[]): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: COMMAND_TIMEOUT, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${[cmd, ...args].join(" ")} failed: ${stderr.trim() || err.message}`));
      else resolve({ stdout, stderr });
    });
  });
}

function runSync(cmd: string, args: readonly string[]): string | undefined {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: COMMAND_TIMEOUT });
  return r.status === 0 ? r.stdout : undefined;
}

const live = new Set<Namespace>();
let counter = 0;

export class Namespace {
  private readonly children = new Set<ChildHandle>();
  private destroyed = false;

  constructor(readonly name: string) {}

  get alive(): boolean {
    return !this.destroyed;
  }

  /** Runs a command inside the namespace to completion. */
  exec(cmd: string, args: readonly string[] = []): Promise<ExecResult> {
    return run("ip", ["netns", "exec", this.name, cmd, ...args]);
  }

  /** Starts a long-running command inside the namespace; it is killed by `destroy()`. */
  spawn(cmd: string, args: readonly string[] = [], opts: StartOptions = {}): ChildHandle {
    if (this.destroyed) throw new Error(`namespace ${this.name} is destroyed`);
    // `ip netns exec` execs the command in place: the child's pid is the command's.
    const child = startProcess("ip", ["netns", "exec", this.name, cmd, ...args], {
      ...opts,
      name: opts.name ?? cmd,
    });
    this.children.add(child);
    return child;
  }

  /** `iptables -w ARGS` inside the namespace; resolves with its stdout. */
  async iptables(...args: string[]): Promise<string> {
    return (await this.exec("iptables", ["-w", ...args])).stdout;
  }

  /** Kills what runs inside, then deletes the namespace (and with it, its rules). Idempotent. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    await Promise.all(
      [...this.children].map(async (c) => {
        c.kill();
        await Promise.race([c.exited, sleep(2000)]);
        await c.stop(0);
      }),
    );
    this.children.clear();
    await killInside(this.name);
    await run("ip", ["netns", "delete", this.name]);
  }

  /** The same, synchronously, for exit handlers. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    for (const c of this.children) signalGroup(c.pid, "SIGKILL");
    killInsideSync(this.name);
    runSync("ip", ["netns", "delete", this.name]);
  }
}

/**
 * Creates a namespace named `${prefix}${pid}-${n}` with `lo` up and the SYN retransmission
 * schedule pinned (net.ipv4.tcp_syn_linear_timeouts=4), so connect timings are deterministic.
 */
export async function createNamespace(prefix = DEFAULT_PREFIX): Promise<Namespace> {
  let name = "";
  for (let tries = 0; ; tries++) {
    name = `${prefix}${process.pid}-${counter++}`;
    try {
      await run("ip", ["netns", "add", name]);
      break;
    } catch (err) {
      // A namespace of an earlier process that had our pid: take the next number.
      if (tries >= 5 || !listNamespaces().includes(name)) throw err;
    }
  }
  const ns = new Namespace(name);
  live.add(ns);
  try {
    await ns.exec("ip", ["link", "set", "lo", "up"]);
    await ns.exec("sysctl", ["-q", "-w", "net.ipv4.tcp_syn_linear_timeouts=4"]);
  } catch (err) {
    await ns.destroy();
    throw err;
  }
  return ns;
}

/** Names of all network namespaces (`ip netns list`). */
export function listNamespaces(): string[] {
  const out = runSync("ip", ["netns", "list"]) ?? "";
  return out
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .filter((n) => n !== "");
}

/** Destroys every namespace this process created and has not destroyed yet. */
export async function destroyAll(): Promise<void> {
  await Promise.all([...live].map((ns) => ns.destroy()));
}

/**
 * Deletes namespaces named with `prefix` whose creating process no longer exists (a crashed
 * earlier run), killing whatever still runs inside them. Returns the names deleted.
 */
export async function cleanupLeftovers(prefix = DEFAULT_PREFIX): Promise<string[]> {
  const pattern = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(\\d+)-\\d+$`);
  const deleted: string[] = [];
  for (const name of listNamespaces()) {
    const pid = Number(pattern.exec(name)?.[1] ?? Number.NaN);
    if (!Number.isInteger(pid) || pid === process.pid || pidAlive(pid)) continue;
    await killInside(name);
    await run("ip", ["netns", "delete", name]);
    deleted.push(name);
  }
  return deleted;
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

let usable: string | undefined | null = null;

/**
 * Why namespace tests cannot run here (not root, `ip` or `iptables` missing or not working),
 * or undefined when they can. Tries a throw-away namespace once and caches the answer.
 */
export function canUseNamespaces(): string | undefined {
  if (usable !== null) return usable;
  usable = whyNot();
  return usable;
}

function whyNot(): string | undefined {
  if (process.platform !== "linux") return `network namespaces need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return "network namespace tests need root (run as root to include them)";
  if (runSync("ip", ["-V"]) === undefined) return "`ip` (iproute2) is not installed";
  if (runSync("iptables", ["--version"]) === undefined) return "`iptables` is not installed";
  const name = `${DEFAULT_PREFIX}${process.pid}-${counter++}`; // a crash here leaves a name cleanupLeftovers knows
  const added = spawnSync("ip", ["netns", "add", name], { encoding: "utf8" });
  if (added.status !== 0) return `cannot create a network namespace: ${added.stderr.trim()}`;
  const rules = spawnSync("ip", ["netns", "exec", name, "iptables", "-w", "-S"], { encoding: "utf8" });
  runSync("ip", ["netns", "delete", name]);
  if (rules.status !== 0) return `iptables does not work in a namespace: ${rules.stderr.trim()}`;
  return undefined;
}

function pidsInside(out: string | undefined): number[] {
  return (out ?? "")
    .split("\n")
    .map(Number)
    .filter((p) => Number.isInteger(p) && p > 0 && p !== process.pid);
}

async function killInside(name: string): Promise<void> {
  const pids = pidsInside(
    await run("ip", ["netns", "pids", name]).then(
      (r) => r.stdout,
      () => "",
    ),
  );
  for (const pid of pids) killPid(pid);
  // Give the kernel a moment to reap them, so the namespace is really gone after delete.
  for (let i = 0; i < 20 && pids.some(pidAlive); i++) await sleep(50);
}

function killInsideSync(name: string): void {
  for (const pid of pidsInside(runSync("ip", ["netns", "pids", name]))) killPid(pid);
}

function killPid(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

onExitCleanup(() => {
  for (const ns of [...live]) ns.destroySync();
});
