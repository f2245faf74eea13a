import net from "node:net";
import { parseArgs } from "node:util";

/**
 * What the benchmark servers that listen on many loopback ports (bench/lib/target-server.ts,
 * bench/lib/heartbeat-server.ts) share: the count flag, listening, the `ports`, `tick` and
 * `stopped` lines, and the exit on SIGTERM/SIGINT or when stdin closes (the parent has gone).
 */

const write = (obj: unknown) => process.stdout.write(`${JSON.stringify(obj)}\n`);

/** The integer flag `--FLAG` (>= 1; `fallback` when absent); exits 2 when it is bad. The
 *  parsing is not strict: the parent's run marker is passed too. */
export function countFlag(server: string, flag: string, fallback: number): number {
  const { values } = parseArgs({
    options: { [flag]: { type: "string", default: String(fallback) } },
    strict: false,
  });
  const count = Number(values[flag]);
  if (!Number.isInteger(count) || count < 1) {
    process.stderr.write(`${server}: bad --${flag} ${String(values[flag])}\n`);
    process.exit(2);
  }
  return count;
}

/** Connections accepted so far, and those still open (destroyed on stop). */
export const connections = { accepted: 0, open: new Set<net.Socket>() };

export interface PortServerSpec {
  /** For messages. */
  name: string;
  /** Ports to listen on (port 0 each, 127.0.0.1). */
  count: number;
  /** Each new connection (already counted in `connections`). */
  onConnection: (socket: net.Socket) => void;
  /** A server's error. */
  onServerError?: () => void;
  /** The counters of the `tick` line, written every second. */
  tick: () => Record<string, unknown>;
  /** The counters of the `stopped` line, written on stop. */
  stopped: () => Record<string, unknown>;
}

/**
 * Listens on `count` ports and prints `{"type":"ports","pid","ports":[...]}`, then a `tick`
 * line every second; on SIGTERM/SIGINT or when stdin closes, destroys the connections, closes
 * the servers, prints the `stopped` line and exits 0 (1 if it could not listen).
 */
export async function servePorts(spec: PortServerSpec): Promise<void> {
  const servers: net.Server[] = [];
  let ticker: NodeJS.Timeout | undefined;
  let stopping = false;
  const stop = (code = 0): void => {
    if (stopping) return;
    stopping = true;
    clearInterval(ticker);
    for (const s of connections.open) s.destroy();
    for (const s of servers) s.close();
    write({ type: "stopped", ...spec.stopped() });
    process.exit(code);
  };
  process.on("SIGTERM", () => stop(0));
  process.on("SIGINT", () => stop(0));
  process.stdin.on("end", () => stop(0));
  process.stdin.on("error", () => stop(0));
  process.stdin.resume();

  try {
    const ports: number[] = [];
    for (let i = 0; i < spec.count; i++) {
      const server = net.createServer((socket) => {
        connections.accepted++;
        connections.open.add(socket);
        socket.on("close", () => connections.open.delete(socket));
        spec.onConnection(socket);
      });
      server.on("error", () => spec.onServerError?.());
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen({ port: 0, host: "127.0.0.1", backlog: 511 }, () => {
          server.off("error", reject);
          resolve();
        });
      });
      servers.push(server);
      ports.push((server.address() as net.AddressInfo).port);
    }
    write({ type: "ports", pid: process.pid, ports });
    ticker = setInterval(() => write({ type: "tick", ...spec.tick() }), 1000);
  } catch (err) {
    process.stderr.write(`${spec.name}: ${String(err)}\n`);
    stop(1);
  }
}
