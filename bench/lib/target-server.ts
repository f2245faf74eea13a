/**
 * Benchmark target server (a child of bench/monitor-scale.ts): listens on COUNT loopback
 * ports (port 0 each), prints `{"type":"ports","ports":[...]}` on stdout, then accepts
 * connections and ignores them — the peer's close or reset just destroys the socket.
 *
 *   node --import tsx bench/lib/target-server.ts --count 1000
 *
 * Prints a `tick` line every second (connections accepted, resets seen) and exits on
 * SIGTERM/SIGINT or when stdin closes (the parent has gone).
 */
import net from "node:net";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { count: { type: "string", default: "1000" } },
  strict: false,
});
const count = Number(values.count);
if (!Number.isInteger(count) || count < 1) {
  process.stderr.write(`target-server: bad --count ${String(values.count)}\n`);
  process.exit(2);
}

const write = (obj: unknown) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const servers: net.Server[] = [];
const sockets = new Set<net.Socket>();
let accepted = 0;
let resets = 0;
let serverErrors = 0;

function onConnection(socket: net.Socket): void {
  accepted++;
  sockets.add(socket);
  socket.on("error", () => {
    resets++; // ECONNRESET from a connect-only check closing with RST: expected
    socket.destroy();
  });
  socket.on("close", () => {
    sockets.delete(socket);
    socket.destroy();
  });
}

async function listenAll(): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < count; i++) {
    const server = net.createServer(onConnection);
    server.on("error", () => {
      serverErrors++;
    });
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
  return ports;
}

let ticker: NodeJS.Timeout | undefined;
let stopping = false;
function stop(code = 0): void {
  if (stopping) return;
  stopping = true;
  clearInterval(ticker);
  for (const s of sockets) s.destroy();
  for (const s of servers) s.close();
  write({ type: "stopped", accepted, resets, serverErrors });
  process.exit(code);
}

process.on("SIGTERM", () => stop(0));
process.on("SIGINT", () => stop(0));
process.stdin.on("end", () => stop(0));
process.stdin.on("error", () => stop(0));
process.stdin.resume();

try {
  const ports = await listenAll();
  write({ type: "ports", pid: process.pid, ports });
  ticker = setInterval(() => write({ type: "tick", accepted, resets, open: sockets.size }), 1000);
} catch (err) {
  process.stderr.write(`target-server: ${String(err)}\n`);
  stop(1);
}
