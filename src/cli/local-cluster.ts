import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import net from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const BIN = fileURLToPath(new URL("../../bin/lifeline.js", import.meta.url));
/** Longest wait for a node's "listening" line before the attempt is killed and retried. */
const START_TIMEOUT = 20_000;

export type LocalNodeState = "running" | "frozen" | "killed" | "stopped";

export interface LocalNode {
  id: string;
  port: number;
  address: string;
  pid: number | undefined;
  state: LocalNodeState;
  /** Every pid this node has had (restarts get new ones). */
  pids: number[];
  /** Its admin server (healthz, metrics...), on a free loopback port; new on each restart. */
  admin: string | undefined;
}

export interface LocalClusterOptions {
  /** Nodes: n1, n2, ... Default 3. */
  size?: number;
  /** `--store` of every node (share a `sqlite:FILE` for sessions to move). */
  store: string;
  /** `--app`. Default echo. */
  app?: string;
  drainDeadline?: number;
  sessionTtl?: number;
  logLevel?: string;
  env?: NodeJS.ProcessEnv;
  /** Each node's stderr line (JSON logs). */
  onLog?: (id: string, line: string) => void;
  /** Every child process as soon as it is spawned (start attempts and restarts included). */
  onSpawn?: (id: string, pid: number) => void;
  /**
   * Start each node in its own process group: a terminal's Ctrl-C then reaches only this
   * process, which stops the nodes in its own order (instead of every node draining at once).
   */
  detached?: boolean;
}

/** The kernel's range for outgoing connections' local ports (Linux), else the IANA one. */
function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8")
      .trim()
      .split(/\s+/)
      .map(Number);
    if (lo && hi) return [lo, hi];
  } catch {
    // not Linux
  }
  return [49152, 65535];
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

/**
 * Free loopback ports for nodes that must keep their port across restarts. They are chosen
 * below the ephemeral range: a port from port 0 can be taken, while its node is down, by
 * some client's outgoing connection, and the restart would fail with EADDRINUSE.
 */
export async function freePorts(n: number): Promise<number[]> {
  const [lo] = ephemeralRange();
  const from = Math.max(1024, Math.min(20_000, lo - 10_000));
  const to = Math.max(from + 1000, lo - 1);
  const ports: number[] = [];
  for (let tries = 0; ports.length < n && tries < 1000; tries++) {
    const port = from + Math.floor(Math.random() * (to - from));
    if (!ports.includes(port) && (await canListen(port))) ports.push(port);
  }
  if (ports.length < n) throw new Error(`could not find ${n} free ports in ${from}-${to}`);
  return ports;
}

/**
 * A cluster of `lifeline node` child processes on loopback, for the demo, benchmarks and
 * end-to-end tests: each knows the others (`--peers`), all share one store, and each can be
 * killed (SIGKILL), frozen (SIGSTOP), thawed, stopped gracefully and restarted on its port.
 * Every child gets a stdin pipe and `--exit-with-stdin`: if this process dies, however it
 * dies, the nodes drain and exit; `close()` stops them on every normal path.
 */
export class LocalCluster {
  readonly nodes: LocalNode[] = [];
  private readonly children = new Map<string, ChildProcess>();
  private readonly onExit = () => {
    for (const c of this.children.values()) {
      if (c.pid && c.exitCode === null && c.signalCode === null) {
        try {
          process.kill(c.pid, "SIGCONT");
          process.kill(c.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }
  };

  constructor(private readonly opts: LocalClusterOptions) {}

  get addresses(): string[] {
    return this.nodes.map((n) => n.address);
  }

  node(id: string): LocalNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  async start(): Promise<void> {
    process.on("exit", this.onExit);
    const ports = await freePorts(this.opts.size ?? 3);
    ports.forEach((port, i) => {
      this.nodes.push({
        id: `n${i + 1}`,
        port,
        address: `127.0.0.1:${port}`,
        admin: undefined,
        pid: undefined,
        state: "stopped",
        pids: [],
      });
    });
    try {
      await Promise.all(this.nodes.map((n) => this.launch(n)));
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  private async launch(n: LocalNode): Promise<void> {
    const peers = this.nodes.filter((p) => p !== n).map((p) => p.address);
    const args = [BIN, "node", "--id", n.id, "--port", String(n.port), "--store", this.opts.store];
    args.push(
      "--app",
      this.opts.app ?? "echo",
      "--log-level",
      this.opts.logLevel ?? "warn",
      "--exit-with-stdin",
      "--admin",
      "127.0.0.1:0",
    );
    if (peers.length) args.push("--peers", peers.join(","));
    if (this.opts.drainDeadline !== undefined) args.push("--drain-deadline", String(this.opts.drainDeadline));
    if (this.opts.sessionTtl !== undefined) args.push("--session-ttl", String(this.opts.sessionTtl));
    // A restart right after a kill can race the old socket's release: retry a few times.
    for (let attempt = 0; ; attempt++) {
      const child = spawn(process.execPath, args, {
        stdio: ["pipe", "pipe", "pipe"],
        env: this.opts.env ?? process.env,
        detached: this.opts.detached === true,
      });
      this.children.set(n.id, child);
      if (child.pid) this.opts.onSpawn?.(n.id, child.pid);
      child.stdin?.on("error", () => {});
      const log = createInterface({ input: child.stderr! });
      log.on("line", (l) => this.opts.onLog?.(n.id, l));
      const listening = await new Promise<boolean>((resolve) => {
        const lines = createInterface({ input: child.stdout! });
        // A start that hangs (it should not) is a failed attempt, not a wait forever.
        const timer = setTimeout(() => child.kill("SIGKILL"), START_TIMEOUT);
        lines.once("line", (line) => {
          clearTimeout(timer);
          try {
            n.admin = (JSON.parse(line) as { admin?: string }).admin;
          } catch {
            n.admin = undefined;
          }
          resolve(true);
        });
        child.once("exit", () => {
          clearTimeout(timer);
          resolve(false);
        });
      });
      if (listening) {
        n.pid = child.pid;
        if (child.pid) n.pids.push(child.pid);
        n.state = "running";
        child.once("exit", () => {
          if (this.children.get(n.id) === child) {
            if (n.state === "running" || n.state === "frozen") n.state = "killed";
            n.pid = undefined;
          }
        });
        return;
      }
      if (attempt >= 50) throw new Error(`node ${n.id} did not start on port ${n.port}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private signal(id: string, sig: NodeJS.Signals): boolean {
    const n = this.node(id);
    if (!n.pid) return false;
    try {
      process.kill(n.pid, sig);
      return true;
    } catch {
      return false;
    }
  }

  /** SIGKILL: a crash. Resolves once the process is gone. */
  async kill(id: string): Promise<void> {
    const child = this.children.get(id);
    const n = this.node(id);
    if (!child || !n.pid) return;
    const gone = new Promise<void>((r) => (child.exitCode !== null ? r() : child.once("exit", () => r())));
    n.state = "killed";
    this.signal(id, "SIGKILL");
    await gone;
  }

  /** SIGSTOP: a frozen process (its port still accepts connections; nothing answers). */
  freeze(id: string): void {
    if (this.signal(id, "SIGSTOP")) this.node(id).state = "frozen";
  }

  thaw(id: string): void {
    if (this.signal(id, "SIGCONT")) this.node(id).state = "running";
  }

  /** SIGTERM: a graceful stop (GOAWAY, drain). Resolves once the process has exited. */
  async terminate(id: string, graceMs = 15_000): Promise<void> {
    const child = this.children.get(id);
    const n = this.node(id);
    if (!child || !n.pid) return;
    const gone = new Promise<void>((r) => (child.exitCode !== null ? r() : child.once("exit", () => r())));
    if (n.state === "frozen") this.signal(id, "SIGCONT");
    n.state = "stopped";
    this.signal(id, "SIGTERM");
    const timer = setTimeout(() => this.signal(id, "SIGKILL"), graceMs);
    await gone;
    clearTimeout(timer);
  }

  /** Starts a stopped or killed node again, on its port. */
  async restart(id: string): Promise<void> {
    const n = this.node(id);
    if (n.pid) await this.terminate(id);
    await this.launch(n);
  }

  /** Stops every node (graceful, then SIGKILL after `graceMs`). */
  async close(graceMs = 3000): Promise<void> {
    await Promise.all(this.nodes.filter((n) => n.pid).map((n) => this.terminate(n.id, graceMs)));
    process.off("exit", this.onExit);
  }

  /** Every pid ever started, for checks that nothing is left behind. */
  get allPids(): number[] {
    return this.nodes.flatMap((n) => n.pids);
  }
}
