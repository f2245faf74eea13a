/**
 * A real `redis-server` for tests and benchmarks: on a free loopback port, with a temporary directory, no
 * persistence (`--save "" --appendonly no`). Stopped (SIGTERM, then SIGKILL after 2 s) and its
 * directory removed by `stop()`, and in any case when the test process exits.
 *
 *   const redis = await startRedis();
 *   const store = new RedisStore(parseRedisUrl(redis.url), {});
 *   …
 *   await redis.stop();
 *
 * `startRedis({ master, name })` starts a Sentinel watching `master` instead.
 *
 * Tests that need it skip when redis-server is not installed (`redisSkipReason`); CI installs
 * the Debian package (.ci/run).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

function findRedisServer(): string | undefined {
  if (existsSync("/usr/bin/redis-server")) return "/usr/bin/redis-server";
  try {
    const found = execFileSync("sh", ["-c", "command -v redis-server"], { encoding: "utf8" }).trim();
    return found || undefined;
  } catch {
    return undefined;
  }
}

/** The redis-server binary, if installed. */
export const redisServerPath = findRedisServer();

/** Why Redis tests are skipped (undefined when they can run). Printed once when asked. */
export const redisSkipReason: string | undefined = redisServerPath
  ? undefined
  : "redis-server is not installed (apt-get install redis-server); skipping the Redis store tests";
if (redisSkipReason) console.warn(redisSkipReason);

export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:PORT/0`. */
  readonly url: string;
  readonly dir: string;
  /** The running process (undefined between `kill` and `restart`). */
  readonly process: ChildProcess | undefined;
  /** SIGSTOP: the server keeps its connections but answers nothing. */
  pause(): void;
  /** SIGCONT after `pause`. */
  resume(): void;
  /** SIGKILL, waiting for the process to be gone; the directory stays for `restart`. */
  kill(): Promise<void>;
  /** Starts the server again on the same port (after `kill`). */
  restart(): Promise<void>;
  /** Stops it (SIGTERM, SIGKILL after 2 s) and removes its directory. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
const dirs = new Set<string>();
process.on("exit", () => {
  for (const p of live) p.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A port that was free a moment ago (bound on port 0, then released). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Whether a server answers PING on the port. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(500, () => done(false));
    s.once("error", () => done(false));
    s.once("connect", () => s.write("PING\r\n"));
    s.once("data", (d) => done(d.toString().startsWith("+PONG")));
  });
}

function exited(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => p.once("exit", () => resolve()));
}

/** Spawns redis-server on `port`; resolves once it answers PING, rejects if it exits first.
 *  `first` goes before the options (a Sentinel's config file and `--sentinel`). */
async function spawnOn(port: number, dir: string, first: string[] = []): Promise<ChildProcess> {
  const args = [...first, "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
  args.push("--dir", dir, "--logfile", "", "--loglevel", "warning");
  const p = spawn(redisServerPath!, args, { stdio: ["ignore", "pipe", "pipe"] });
  live.add(p);
  let log = "";
  p.stdout?.on("data", (d) => {
    log += d;
  });
  p.stderr?.on("data", (d) => {
    log += d;
  });
  p.once("exit", () => live.delete(p));
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (p.exitCode !== null || p.signalCode !== null) {
      throw new Error(`redis-server on port ${port} exited: ${log.trim().split("\n").slice(-3).join(" | ")}`);
    }
    if (await ping(port)) return p;
    await new Promise((r) => setTimeout(r, 20));
  }
  p.kill("SIGKILL");
  throw new Error(`redis-server on port ${port} did not answer PING within 10 s`);
}

/**
 * Starts a redis-server on a free loopback port (retrying when another process takes it).
 * With `sentinelFor`, a Sentinel instead, monitoring that server as master group `name`.
 */
export async function startRedis(sentinelFor?: { master: RedisServer; name: string }): Promise<RedisServer> {
  if (!redisServerPath) throw new Error(redisSkipReason);
  const dir = mkdtempSync(join(tmpdir(), "lifeline-redis-"));
  dirs.add(dir);
  const first: string[] = [];
  if (sentinelFor) {
    const conf = join(dir, "sentinel.conf"); // Sentinel rewrites its config file: it must be writable
    const { master, name } = sentinelFor;
    writeFileSync(conf, `sentinel monitor ${name} 127.0.0.1 ${master.port} 1\n`);
    first.push(conf, "--sentinel");
  }
  let proc: ChildProcess | undefined;
  let port = 0;
  for (let attempt = 1; proc === undefined; attempt++) {
    port = await freePort();
    try {
      proc = await spawnOn(port, dir, first);
    } catch (err) {
      if (attempt >= 5) throw err;
    }
  }
  const signal = (sig: NodeJS.Signals) => {
    if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill(sig);
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    dir,
    get process() {
      return proc;
    },
    pause: () => signal("SIGSTOP"),
    resume: () => signal("SIGCONT"),
    async kill() {
      if (!proc) return;
      signal("SIGKILL");
      await exited(proc);
      proc = undefined;
    },
    async restart() {
      if (proc) throw new Error("redis-server is still running");
      proc = await spawnOn(port, dir, first);
    },
    async stop() {
      const p = proc;
      proc = undefined;
      if (p) {
        if (p.signalCode === null && p.exitCode === null) {
          p.kill("SIGCONT"); // a paused server cannot act on SIGTERM
          p.kill("SIGTERM");
        }
        const timer = setTimeout(() => p.kill("SIGKILL"), 2000);
        await exited(p);
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
      dirs.delete(dir);
    },
  };
}
