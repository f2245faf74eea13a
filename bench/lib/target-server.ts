/**
 * Benchmark target server (a child of bench/probe-cost.ts): listens on COUNT loopback
 * ports (port 0 each), prints `{"type":"ports","ports":[...]}` on stdout, then accepts
 * connections and ignores them — the peer's close or reset just destroys the socket.
 *
 *   node --import tsx bench/lib/target-server.ts --count 1000
 *
 * Prints a `tick` line every second (connections accepted, resets seen) and exits on
 * SIGTERM/SIGINT or when stdin closes (the parent has gone).
 */
import type net from "node:net";
import { connections, countFlag, servePorts } from "./port-server.ts";

let resets = 0;
let serverErrors = 0;

await servePorts({
  name: "target-server",
  count: countFlag("target-server", "count", 1000),
  onConnection: (socket: net.Socket) => {
    socket.on("error", () => {
      resets++; // ECONNRESET from a connect-only check closing with RST: expected
      socket.destroy();
    });
    socket.on("close", () => socket.destroy());
  },
  onServerError: () => {
    serverErrors++;
  },
  tick: () => ({ accepted: connections.accepted, resets, open: connections.open.size }),
  stopped: () => ({ accepted: connections.accepted, resets, serverErrors }),
});
