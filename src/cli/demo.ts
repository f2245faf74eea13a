import net from "node:net";
import type { CliIO } from "./io.ts";
import { startMonitor } from "./monitor.ts";
import { untilShutdown } from "./signals.ts";

/**
 * `lifeline demo`: three small PING/PONG servers on loopback, a monitor on them with a
 * send/expect check, and a script of faults so the health model can be watched at work:
 * a crash (refused → suspect → down → recovering → healthy), a slow server (degraded, not
 * down), and a frozen one (accepts connections but never answers → timeout → down).
 */
type Mode = "ok" | "slow" | "frozen";

class DemoServer {
  mode: Mode = "ok";
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  async start(port = 0): Promise<void> {
    const server = net.createServer((socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
      socket.on("error", () => {});
      socket.on("data", (chunk) => {
        if (!chunk.toString("latin1").includes("PING")) return;
        if (this.mode === "frozen") return;
        const delay = this.mode === "slow" ? 1500 : 0;
        setTimeout(() => socket.writable && socket.write("+PONG\r\n"), delay).unref();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    this.server = server;
    this.port = (server.address() as net.AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  get running(): boolean {
    return this.server !== undefined;
  }
}

function setMode(server: DemoServer, mode: Mode): void {
  server.mode = mode;
}

interface Step {
  after: number;
  say: string;
  act: (servers: DemoServer[]) => Promise<void> | void;
}

const SCRIPT: Step[] = [
  { after: 8_000, say: "demo: crashing node-2 (its port now refuses)", act: (s) => s[1]!.stop() },
  { after: 10_000, say: "demo: restarting node-2", act: (s) => s[1]!.start(s[1]!.port) },
  {
    after: 10_000,
    say: "demo: node-3 answers in 1.5 s (slow, not dead)",
    act: (s) => setMode(s[2]!, "slow"),
  },
  { after: 14_000, say: "demo: node-3 is fast again", act: (s) => setMode(s[2]!, "ok") },
  {
    after: 8_000,
    say: "demo: node-1 freezes (accepts, never answers)",
    act: (s) => setMode(s[0]!, "frozen"),
  },
  { after: 16_000, say: "demo: node-1 thaws", act: (s) => setMode(s[0]!, "ok") },
];

export async function runDemo(flags: { duration?: string }, io: CliIO): Promise<number> {
  const servers = [new DemoServer(), new DemoServer(), new DemoServer()];
  for (const s of servers) await s.start();
  const dir = servers.map((s, i) => ({
    id: `node-${i + 1}`,
    checks: [{ type: "tcp", address: `127.0.0.1:${s.port}`, send: "PING\r\n", expect: "+PONG" }],
  }));
  const { writeFileSync, mkdtempSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const tmp = mkdtempSync(join(tmpdir(), "lifeline-demo-"));
  const file = join(tmp, "demo.json");
  writeFileSync(
    file,
    JSON.stringify({ profile: "lan", defaults: { interval: "1s" }, targets: dir }, null, 2),
  );
  const monitor = await startMonitor([], { config: file, watch: false }, io);
  const say = (text: string) => monitor.note(text);

  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let step = 0;
  const next = () => {
    if (stopped) return;
    const s = SCRIPT[step % SCRIPT.length]!;
    timer = setTimeout(async () => {
      say(s.say);
      try {
        await s.act(servers);
      } catch (err) {
        say(`demo step failed: ${String(err)}`);
      }
      step++;
      next();
    }, s.after);
  };
  next();

  await untilShutdown(flags.duration === undefined ? undefined : Number(flags.duration) * 1000);
  stopped = true;
  clearTimeout(timer);
  await monitor.stop();
  for (const s of servers) await s.stop();
  rmSync(tmp, { recursive: true, force: true });
  return 0;
}
